//! One plugin instance in a store of its own: WASI with nothing granted, a memory cap and a
//! deadline per call. Any trap ends the session with a readable reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::registry::CodecRegistry;
use host_world::bitrate_rules::BitrateRulesExport;
use host_world::plugin::CodecPlugin;
use host_world::segmented_plugin::SegmentedCodecPlugin;
use host_world::segmented_plugin::exports::mp3edge::codec::segments::SegmentPlan;
use host_world::worker::mp3edge::codec::types::{CodecInfo, EncoderConfig, Finished};
use spin_host::engine::Runtime;
use spin_host::state::MemoryLimiter;

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimiter,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The export a plugin that encodes in segments has.
pub const SEGMENTS_EXPORT: &str = "mp3edge:codec/segments@0.1.0";
/// The export of a plugin whose bitrates depend on the sample rate.
pub const BITRATE_RULES_EXPORT: &str = "mp3edge:codec/bitrate-rules@0.1.0";

/// Plugins get WASI 0.2 only (so a Rust or C plugin links), with nothing behind it: no
/// preopened directories, no sockets, no environment; stderr is kept for panic messages.
pub fn linker(runtime: &Runtime) -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(&runtime.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// A fresh store whose deadline restarts at every call (`call_started`).
fn new_store(registry: &CodecRegistry) -> (Store<PluginState>, Arc<Mutex<Instant>>) {
    let state = PluginState {
        wasi: WasiCtx::builder().inherit_stderr().allow_tcp(false).allow_udp(false).build(),
        table: ResourceTable::new(),
        memory: MemoryLimiter::new(registry.limits.max_memory_bytes),
    };
    let mut store = Store::new(&registry.runtime.engine, state);
    store.limiter(|s| &mut s.memory);
    let call_started = Arc::new(Mutex::new(Instant::now()));
    let started = call_started.clone();
    let timeout = registry.limits.call_timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let elapsed = started.lock().map(|s| s.elapsed()).unwrap_or_default();
        if elapsed > timeout {
            return Err(wasmtime::Error::msg(format!("call exceeded its {:.1}s deadline", timeout.as_secs_f64())));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    (store, call_started)
}

/// Why an encoder could not start.
pub enum StartError {
    /// No room in the worker's instance pool right now: the attempt is retried.
    NoRoom,
    /// The plugin or its configuration is at fault: the job fails with this reason.
    Failed(String),
}

/// Instantiates a plugin once to ask what it is: its description, and for a plugin with
/// `bitrate-rules` the bitrates it takes at each rate it takes (for stereo, or mono when that
/// is all it takes).
pub async fn describe(registry: &CodecRegistry, component: &Component) -> Result<(CodecInfo, BTreeMap<u32, Vec<u32>>)> {
    let (mut store, _) = new_store(registry);
    let instance = registry.linker.instantiate_async(&mut store, component).await?;
    let plugin = CodecPlugin::new(&mut store, &instance)?;
    let info = plugin.mp3edge_codec_encoder().call_info(&mut store).await?;
    let mut by_rate = BTreeMap::new();
    if component.get_export_index(None, BITRATE_RULES_EXPORT).is_some() {
        let rules = BitrateRulesExport::new(&mut store, &instance)?;
        let rates = if info.sample_rates.is_empty() { job_model::options::STANDARD_RATES.to_vec() } else { info.sample_rates.clone() };
        for rate in rates {
            let channels = info.max_channels.clamp(1, 2);
            let mut bitrates = rules.mp3edge_codec_bitrate_rules().call_bitrates_at(&mut store, rate, channels).await?;
            bitrates.retain(|kbps| info.bitrates.contains(kbps));
            bitrates.sort_unstable();
            bitrates.dedup();
            by_rate.insert(rate, bitrates);
        }
    }
    Ok((info, by_rate))
}

/// What every call into a plugin instance goes through: its deadline restarts, a trap leaves
/// the instance unusable, and errors read as the plugin's.
struct CallGuard {
    name: String,
    call_started: Arc<Mutex<Instant>>,
    /// Set once a call trapped: the instance is unusable afterwards.
    broken: Option<String>,
}

impl CallGuard {
    /// Before a call: refused once the instance is broken, else the deadline restarts.
    fn begin(&self) -> Result<(), String> {
        match &self.broken {
            Some(reason) => Err(reason.clone()),
            None => {
                *self.call_started.lock().expect("deadline lock") = Instant::now();
                Ok(())
            }
        }
    }

    /// The outcome of a call: a trap breaks the instance; the plugin's own error is prefixed.
    fn outcome<T>(&mut self, called: wasmtime::Result<Result<T, String>>) -> Result<T, String> {
        match called {
            Ok(result) => result.map_err(|e| format!("codec plugin {:?}: {e}", self.name)),
            Err(e) => {
                tracing::warn!(plugin = %self.name, error = %format!("{e:?}"), "plugin trapped");
                let reason = format!("codec plugin {:?} failed: {}", self.name, spin_host::engine::short_reason(&e));
                self.broken = Some(reason.clone());
                Err(reason)
            }
        }
    }
}

/// Why plugin `name` could not be instantiated or started.
fn start_failed(name: &str, e: wasmtime::Error) -> StartError {
    if spin_host::engine::is_pool_exhausted(&e) {
        return StartError::NoRoom;
    }
    tracing::warn!(plugin = %name, error = %format!("{e:?}"), "plugin failed to start");
    StartError::Failed(format!("codec plugin {name:?} failed to start: {}", spin_host::engine::short_reason(&e)))
}

/// One encoding session in its own sandbox.
pub struct PluginSession {
    info: CodecInfo,
    store: Store<PluginState>,
    plugin: CodecPlugin,
    session: ResourceAny,
    guard: CallGuard,
}

impl PluginSession {
    pub async fn start(registry: &CodecRegistry, format: &str, config: EncoderConfig) -> Result<PluginSession, StartError> {
        let loaded = registry
            .plugin(format)
            .ok_or_else(|| StartError::Failed(format!("no codec plugin provides the format {format:?}")))?;
        let name = loaded.info.name.clone();
        let fail = |e| start_failed(&name, e);
        let (mut store, call_started) = new_store(registry);
        let plugin = CodecPlugin::instantiate_async(&mut store, &loaded.component, &registry.linker).await.map_err(fail)?;
        let session = plugin
            .mp3edge_codec_encoder()
            .session()
            .call_start(&mut store, &config)
            .await
            .map_err(fail)?
            .map_err(StartError::Failed)?;
        Ok(PluginSession { info: loaded.info, store, plugin, session, guard: CallGuard { name, call_started, broken: None } })
    }

    pub fn info(&self) -> &CodecInfo {
        &self.info
    }

    pub async fn encode(&mut self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_encoder().session().call_encode(&mut self.store, self.session, &pcm).await;
        self.guard.outcome(called)
    }

    pub async fn encode_wide(&mut self, pcm: Vec<i32>) -> Result<Vec<u8>, String> {
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_encoder().session().call_encode_wide(&mut self.store, self.session, &pcm).await;
        self.guard.outcome(called)
    }

    pub async fn finish(&mut self) -> Result<Finished, String> {
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_encoder().session().call_finish(&mut self.store, self.session).await;
        let result = self.guard.outcome(called);
        self.guard.broken.get_or_insert_with(|| "the encoder was already finished".into());
        result
    }
}

/// One instance of a plugin that exports `segments`, in its own sandbox, running either one
/// segment encoder or the joiner of one output.
pub struct SegmentSandbox {
    store: Store<PluginState>,
    plugin: SegmentedCodecPlugin,
    /// The segment encoder or joiner started in it.
    resource: Option<ResourceAny>,
    guard: CallGuard,
}

impl SegmentSandbox {
    /// A fresh instance of the plugin serving `format`.
    pub async fn new(registry: &CodecRegistry, format: &str) -> Result<SegmentSandbox, StartError> {
        let loaded = registry
            .plugin(format)
            .filter(|p| p.segments)
            .ok_or_else(|| StartError::Failed(format!("no codec plugin encodes {format:?} in segments")))?;
        let name = loaded.info.name.clone();
        let (mut store, call_started) = new_store(registry);
        let plugin =
            SegmentedCodecPlugin::instantiate_async(&mut store, &loaded.component, &registry.linker).await.map_err(|e| start_failed(&name, e))?;
        Ok(SegmentSandbox { store, plugin, resource: None, guard: CallGuard { name, call_started, broken: None } })
    }

    fn resource(&self) -> Result<ResourceAny, String> {
        self.resource.ok_or_else(|| "the segment encoder was not started".to_string())
    }

    pub async fn plan(&mut self, config: &EncoderConfig) -> Result<Option<SegmentPlan>, String> {
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_segments().call_plan(&mut self.store, config).await.map(Ok);
        self.guard.outcome(called)
    }

    /// Starts a segment encoder; one started before in this instance (a lane's previous
    /// segment, finished) is dropped first.
    pub async fn start_segment(&mut self, config: &EncoderConfig, first_frame: u64, lead_in: u32) -> Result<(), String> {
        if let Some(previous) = self.resource.take() {
            self.guard.begin()?;
            let dropped = previous.resource_drop_async(&mut self.store).await.map(Ok);
            self.guard.outcome(dropped)?;
        }
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_segments().segment_encoder().call_start(&mut self.store, config, first_frame, lead_in).await;
        self.resource = Some(self.guard.outcome(called)?);
        Ok(())
    }

    /// Encodes PCM of the segment; the encoded segment's next bytes.
    pub async fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        self.guard.begin()?;
        let this = self.resource()?;
        let called = self.plugin.mp3edge_codec_segments().segment_encoder().call_encode(&mut self.store, this, pcm).await;
        self.guard.outcome(called)
    }

    /// Flushes the segment encoder; the encoded segment's last bytes.
    pub async fn finish_segment(&mut self) -> Result<Vec<u8>, String> {
        self.guard.begin()?;
        let this = self.resource()?;
        let called = self.plugin.mp3edge_codec_segments().segment_encoder().call_finish(&mut self.store, this).await;
        self.guard.outcome(called)
    }

    pub async fn start_joiner(&mut self, config: &EncoderConfig) -> Result<(), String> {
        self.guard.begin()?;
        let called = self.plugin.mp3edge_codec_segments().joiner().call_start(&mut self.store, config).await;
        self.resource = Some(self.guard.outcome(called)?);
        Ok(())
    }

    pub async fn add(&mut self, segment: &[u8]) -> Result<Vec<u8>, String> {
        self.guard.begin()?;
        let this = self.resource()?;
        let called = self.plugin.mp3edge_codec_segments().joiner().call_add(&mut self.store, this, segment).await;
        self.guard.outcome(called)
    }

    pub async fn finish_joiner(&mut self) -> Result<Finished, String> {
        self.guard.begin()?;
        let this = self.resource()?;
        let called = self.plugin.mp3edge_codec_segments().joiner().call_finish(&mut self.store, this).await;
        self.guard.outcome(called)
    }
}
