//! Test harness for the end-to-end tests: real processes, started and stopped by the tests.
//!
//! * [`Platform`] (`platform`): the real `mp3edge up` binary serving the real `.wasm`
//!   components of the project's `spin.toml`, on a free port, with its own data directory and
//!   log file; [`Worker`] (`worker`): a separate `mp3edge worker` beside it.
//! * [`RedisServer`], [`SmtpServer`], [`TestDns`], [`serve_http`]: the real servers a test
//!   puts around the platform.
//! * [`Client`] (`client`): the HTTP conversations with the platform; [`error_body`].
//! * `process`: the binary under test, free ports, waiting and stopping; `observed`: the
//!   requests the suite's platforms answered, for the API description's check.
//! * [`api_spec`]: the served API description, and answers checked against it; [`procfs`]:
//!   processes' and threads' `/proc/.../stat` fields and children.
//! * [`fixtures`], [`probe`], [`audio`], [`suite`], [`options_suite`]: media made and read back
//!   by FFmpeg, and the suites every output format passes.
//!
//! Everything is re-exported here, so a test says `use e2e_tests::*`. Build first
//! (`make build`); the binary is `target/release/mp3edge` unless `MP3EDGE_BIN` says otherwise.

mod client;
mod dns;
mod http_server;
mod observed;
mod platform;
mod process;
mod redis_server;
mod smtp;
mod worker;

pub mod api_spec;
pub mod audio;
pub mod fixtures;
pub mod options_suite;
pub mod probe;
pub mod procfs;
pub mod suite;

pub use client::*;
pub use dns::*;
pub use http_server::*;
pub use observed::*;
pub use platform::*;
pub use process::*;
pub use redis_server::*;
pub use smtp::*;
pub use worker::*;

pub const JWT_SECRET: &str = "e2e-test-secret-0123456789abcdef";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
