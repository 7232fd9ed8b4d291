//! A Spin-compatible runtime: it runs any Spin application of a `spin.toml` (HTTP components
//! with key-value, SQLite, Redis, MQTT, PostgreSQL, variables, outbound HTTP and WASI sockets)
//! on a machine without Spin, and is held to Spin's conformance suite.
//!
//! It knows nothing of mp3edge. An embedder (the `mp3edge` command) chooses the runtime
//! configuration, the variable providers and the error style, and adds interfaces of its own to
//! a component's linker, with its services in the store's `extensions`.
//!
//! - `manifest`, `runtime_config`: what the application and the operator ask for;
//! - `engine`, `state`, `handles`, `module_cache`, `precompiled`: Wasmtime, one store per
//!   request or job, compiled components kept across starts and those the build precompiled;
//! - `app`: the application loaded, its components compiled and their grants;
//! - `http_trigger`, `router`, `admission`, `transfer`, `work_clock`, `host_errors`,
//!   `request_metrics`: serving HTTP;
//! - `interfaces`: Spin's interfaces, each a narrow backend trait with its implementations;
//! - `outbound`, `private_dir`: policies the interfaces share.

pub mod admission;
pub mod app;
pub mod engine;
pub mod handles;
pub mod host_errors;
pub mod http_trigger;
pub mod interfaces;
pub mod manifest;
pub mod module_cache;
pub mod outbound;
pub mod precompiled;
pub mod private_dir;
pub mod request_metrics;
pub mod router;
pub mod runtime_config;
pub mod state;
pub mod transfer;
pub mod work_clock;
