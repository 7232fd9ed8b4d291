//! The per-instance state of a component (`Store<ComponentState>`): its WASI and HTTP contexts,
//! its grants from the manifest, the shared host services, and its memory accounting.
//!
//! A `Store` lives for one request (edge) or one job (worker) and is dropped with everything the
//! guest opened, so no state leaks between requests.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::interfaces::key_value::KeyValueStores;
use crate::outbound::OutboundPolicy;
use crate::interfaces::outbound_http::OutboundHttpHooks;
use crate::interfaces::redis::RedisClients;
use crate::interfaces::sqlite::SqliteDatabases;
use crate::interfaces::variables::ComponentVariables;

/// What the manifest grants one component.
#[derive(Debug)]
pub struct Grants {
    pub component: String,
    pub key_value_stores: HashSet<String>,
    pub sqlite_databases: HashSet<String>,
    pub outbound: OutboundPolicy,
    pub variables: ComponentVariables,
}

/// Backends shared by every component of the application.
pub struct Services {
    pub key_value: KeyValueStores,
    pub sqlite: SqliteDatabases,
    pub redis: RedisClients,
}

pub struct ComponentState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub http_hooks: OutboundHttpHooks,
    pub table: ResourceTable,
    pub memory: MemoryLimiter,
    pub grants: Arc<Grants>,
    pub services: Arc<Services>,
    /// Services an embedder adds for interfaces of its own (e.g. a worker's codec plugins).
    pub extensions: http::Extensions,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

/// Caps linear memory and table growth of one store and records the peak, so the memory a
/// request really used can be reported (and asserted in tests).
#[derive(Debug)]
pub struct MemoryLimiter {
    pub max_memory_bytes: usize,
    pub peak_memory_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(max_memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter { max_memory_bytes, peak_memory_bytes: 0 }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            tracing::warn!(desired, limit = self.max_memory_bytes, "guest memory growth refused");
            return Ok(false);
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
