//! Spin's interfaces as the runtime provides them to components: each module implements one
//! WIT interface of `host_world` over a narrow backend trait, and checks the component's grants
//! from the manifest before any backend is reached.

pub mod key_value;
pub mod mqtt;
pub mod outbound_http;
pub mod postgres;
pub mod redis;
pub mod sockets;
pub mod sqlite;
pub mod variables;
