//! The Wasmtime engine and the recipe for running a component safely.
//!
//! Owns the engine configuration (component model, async, epoch interruption, pooling instance
//! allocator), the linker with WASI 0.2, `wasi:http` and the Spin interfaces, and the creation
//! of a fresh `Store` per request or job with its memory cap and deadline: a job's is wall-clock
//! time, a request's the work its component does (`work_clock`).
//! Components are loaded from the build's precompiled artifacts when they match (`precompiled`),
//! else compiled through the process's `ModuleCache` when it has one, and the
//! `MP3EDGE_PROFILE=perfmap` environment variable makes Wasmtime write `/tmp/perf-PID.map` so
//! `perf report` names the guest's functions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::module_cache::{ModuleCache, Origin};
use crate::precompiled;
use crate::interfaces::outbound_http::OutboundHttpHooks;
use crate::state::{ComponentState, Grants, MemoryLimiter, Services};
use crate::work_clock::WorkClock;

/// How often the epoch advances; the granularity of deadlines and of cooperative yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Linear memory kept resident per pooled slot between instances (see `Runtime::new`).
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Unused slots that keep their pages (and their module's image) for the next instance. Past
/// this many, a new instance takes a used slot over rather than a fresh one, so the resident
/// memory of idle slots stays within this many times `KEEP_RESIDENT_BYTES` (Wasmtime's
/// default of 100 let a burst of concurrent requests leave up to 100 MiB resident for good).
/// Enough for a busy edge's concurrent instances of the same few components to find their
/// own slot again.
const WARM_SLOTS: u32 = 16;

/// Resource bounds applied to every instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory cap per instance.
    pub max_memory_bytes: usize,
    /// Wall-clock deadline of one job's store (`new_store`); requests have a work budget instead
    /// (`new_request_store`).
    pub deadline: Duration,
    /// Instances that may exist at once (size of the pool).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_memory_bytes: 128 << 20, deadline: Duration::from_secs(600), max_instances: 256 }
    }
}

/// A configured engine plus the linker every component is instantiated with.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<ComponentState>,
    pub limits: Limits,
    /// Compiled components kept across starts; `None` compiles every time.
    pub module_cache: Option<ModuleCache>,
}

/// Environment variable choosing a Wasmtime profiling agent (`perfmap`), for `perf record`.
pub const PROFILE_ENV: &str = "MP3EDGE_PROFILE";

/// The profiler `MP3EDGE_PROFILE` asks for.
fn profiling_strategy() -> Result<wasmtime::ProfilingStrategy> {
    match std::env::var(PROFILE_ENV).as_deref() {
        Err(_) | Ok("") | Ok("none") => Ok(wasmtime::ProfilingStrategy::None),
        Ok("perfmap") => Ok(wasmtime::ProfilingStrategy::PerfMap),
        Ok(other) => anyhow::bail!("{PROFILE_ENV}={other}: the profilers are `perfmap` and `none`"),
    }
}

/// The engine every runtime of this host runs on (`mp3edge up`'s HTTP components, the worker's
/// and `mp3edge convert`'s converter and codec plugins), and that `mp3edge precompile` compiles
/// for. The limits only size the instance pool, which Wasmtime leaves out of the engine's
/// compatibility hash, so code compiled for one engine loads in the others.
pub fn new_engine(limits: &Limits) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * 8)
        .total_memories(limits.max_instances * 2)
        .total_tables(limits.max_instances * 4)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(32)
        .max_memory_size(limits.max_memory_bytes)
        // A trivial request's time went to giving memory back: every instance's pages were
        // `madvise`d away when it ended (TLB shootdowns across cores) and faulted in again by
        // the next one. Keeping the low pages resident and resetting only the dirty ones
        // (PAGEMAP_SCAN, Linux 6.7+; otherwise `memset`) reuses them. Bounded: at most this
        // much per warm slot. Decommits are not batched: a batch keeps whole memories (an
        // argon2id log-in's tens of MiB) resident until it fills.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .max_unused_warm_slots(WARM_SLOTS)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .profiler(profiling_strategy()?)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

impl Runtime {
    pub fn new(limits: Limits) -> Result<Arc<Runtime>> {
        let engine = new_engine(&limits)?;

        let ticker = engine.weak();
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        host_world::Host_::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        host_world::postgres::Host_::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        Ok(Arc::new(Runtime { engine, linker, limits, module_cache: ModuleCache::for_process() }))
    }

    /// Compiles a component once (or loads its compiled code: the build's precompiled artifact
    /// beside it, else the module cache's entry); instances are then made from its
    /// pre-instantiation.
    pub fn compile(&self, path: &std::path::Path) -> Result<Component> {
        let started = Instant::now();
        let loaded = std::fs::read(path).map_err(anyhow::Error::from).and_then(|wasm| {
            if let Some(component) = precompiled::load(&self.engine, path, &wasm) {
                return Ok((component, Origin::Precompiled));
            }
            match &self.module_cache {
                Some(cache) => cache.load_or_compile(&self.engine, path, &wasm),
                None => Component::new(&self.engine, &wasm).map(|c| (c, Origin::Compiled)).map_err(anyhow::Error::from),
            }
        });
        let (component, origin) = loaded.with_context(|| format!("loading component {} (run `make build` first?)", path.display()))?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match origin {
            Origin::Precompiled => tracing::info!(path = %path.display(), elapsed_ms, "loaded precompiled build artifact"),
            Origin::Cached => tracing::info!(path = %path.display(), elapsed_ms, "loaded compiled component from cache"),
            Origin::Compiled => tracing::info!(path = %path.display(), elapsed_ms, "compiled component"),
        }
        Ok(component)
    }

    /// A fresh store for one job of a component, stopped once it has existed for the deadline.
    pub fn new_store(&self, grants: Arc<Grants>, services: Arc<Services>, environment: &[(String, String)]) -> Store<ComponentState> {
        let mut store = self.store(grants, services, environment);
        let started = Instant::now();
        let deadline = self.limits.deadline;
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() > deadline {
                return Err(wasmtime::Error::msg(format!("deadline of {}s exceeded", deadline.as_secs())));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// A fresh store for one HTTP request of a component, stopped once its component's work,
    /// measured by `work` around each poll of its call, passes the clock's budget. The check
    /// runs at each epoch tick the guest executes, on the polling thread.
    pub fn new_request_store(
        &self,
        grants: Arc<Grants>,
        services: Arc<Services>,
        environment: &[(String, String)],
        work: Arc<WorkClock>,
    ) -> Store<ComponentState> {
        let mut store = self.store(grants, services, environment);
        store.epoch_deadline_callback(move |_| {
            work.check().map_err(wasmtime::Error::new)?;
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// A store with the component's state and memory cap, interrupted at every epoch tick (the
    /// caller sets what the tick checks).
    fn store(&self, grants: Arc<Grants>, services: Arc<Services>, environment: &[(String, String)]) -> Store<ComponentState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr().envs(environment);
        crate::interfaces::sockets::apply(&mut wasi, &grants.outbound);
        let state = ComponentState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            http_hooks: OutboundHttpHooks { policy: grants.outbound.clone() },
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(self.limits.max_memory_bytes),
            grants,
            services,
            extensions: http::Extensions::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store
    }
}

/// One sentence for users about a failed guest call: the trap, or the innermost cause, without
/// the wasm backtrace and the host's context (those go to the log).
pub fn short_reason(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return trap.to_string();
    }
    let root = e.root_cause().to_string();
    root.lines().next().map(str::trim).filter(|l| !l.is_empty()).unwrap_or("unknown error").to_string()
}

/// Whether an instantiation failed for lack of room in the instance pool (a transient state).
pub fn is_pool_exhausted(e: &wasmtime::Error) -> bool {
    e.chain().any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
        || format!("{e:#}").contains("maximum concurrent")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mp3edge precompile` writes one artifact per component for the engine of the default
    /// limits; `up`'s HTTP engine (its pool sized from the admission limits, `--max-memory-mib`)
    /// and the worker's load it only if their limits leave the compatibility hash alone.
    #[test]
    fn the_limits_do_not_change_what_compiled_code_an_engine_loads() {
        let key = |limits: Limits| {
            let engine = new_engine(&limits).unwrap();
            crate::module_cache::entry_key(&engine, &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00])
        };
        let default = key(Limits::default());
        let edge = key(Limits { max_memory_bytes: 512 << 20, deadline: Duration::from_secs_f64(0.5), max_instances: 300 });
        let small = key(Limits { max_memory_bytes: 16 << 20, deadline: Duration::from_secs(24 * 3600), max_instances: 2 });
        assert_eq!((&edge, &small), (&default, &default));
    }
}
