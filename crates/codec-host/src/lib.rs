//! Codec plugins: which plugin serves which format, and running them in their own sandbox.
//!
//! A plugin directory holds `.wasm` codec components (world `mp3edge:codec/codec-plugin`) and a
//! `codecs.toml` that maps format names to plugin files. The registry re-reads the mapping and
//! recompiles a plugin whenever its file changes, checked before each job, so dropping in a new
//! plugin or editing the mapping needs no restart.
//!
//! Linking is host-mediated: the converter imports `mp3edge:worker/codecs`, and each `encoder`
//! it opens is a fresh plugin instance in a store of its own, with no filesystem, no network,
//! no environment, a memory cap and a per-call deadline. A plugin that traps, loops or
//! allocates without bound fails only that call (and so that job), with the reason.

mod registry;
mod sandbox;
mod segment_lane;
mod segment_queue;
mod segmented;

pub use registry::{CodecRegistry, PluginLimits, SegmentPolicy, mapped_plugin_files};
pub use sandbox::{PluginSession, StartError};
pub use segment_queue::{SegmentQueue, forget as forget_segments};
pub use segmented::SegmentedHandle;

use wasmtime::component::Resource;

use host_world::worker::mp3edge::codec::types::{CodecInfo, EncoderConfig, Finished};
use host_world::worker::mp3edge::worker::codecs::{self, FormatEntry};
use spin_host::handles::HandleTable;
use spin_host::state::ComponentState;

/// How the edge (and `mp3edge convert`) sees a format: its plugin's description, for the format
/// list and the checks of upload options.
pub fn format_info(format: String, info: CodecInfo, bitrates_by_rate: &std::collections::BTreeMap<u32, Vec<u32>>) -> job_model::FormatInfo {
    job_model::FormatInfo {
        bitrates_by_rate: (!bitrates_by_rate.is_empty()).then(|| bitrates_by_rate.clone()),
        format,
        codec: info.name,
        extension: info.extension,
        content_type: info.content_type,
        bitrates: Some(info.bitrates),
        vbr: Some(info.vbr),
        sample_rates: Some(info.sample_rates),
        max_channels: Some(info.max_channels),
        levels: Some(info.levels),
        cover: Some(info.cover),
    }
}

/// The converter's handle to an open encoder.
pub struct EncoderHandle {
    session: PluginSession,
}

/// The converter's store as the codecs interface sees it: the interface is implemented on this
/// type of the codec host (the store's type belongs to the runtime) and linked by
/// [`add_to_linker`]. The registry travels in the store's extensions ([`provide`]).
pub struct CodecsHost<'a>(pub &'a mut ComponentState);

struct HasCodecs;

impl wasmtime::component::HasData for HasCodecs {
    type Data<'a> = CodecsHost<'a>;
}

/// Adds the `mp3edge:worker/codecs` interface to a converter's linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<ComponentState>) -> wasmtime::Result<()> {
    codecs::add_to_linker::<ComponentState, HasCodecs>(linker, |state| CodecsHost(state))
}

/// Makes `registry`'s plugins available to the component of `state`.
pub fn provide(state: &mut ComponentState, registry: std::sync::Arc<CodecRegistry>) {
    state.extensions.insert(registry);
}

impl CodecsHost<'_> {
    fn registry(&self) -> wasmtime::Result<&std::sync::Arc<CodecRegistry>> {
        self.0
            .extensions
            .get::<std::sync::Arc<CodecRegistry>>()
            .ok_or_else(|| wasmtime::Error::msg("codec plugins are not available to this component"))
    }
}

impl codecs::Host for CodecsHost<'_> {
    async fn formats(&mut self) -> wasmtime::Result<Vec<FormatEntry>> {
        Ok(self.registry()?.formats().into_iter().map(|(format, codec)| FormatEntry { format, codec }).collect())
    }
}

impl codecs::HostEncoder for CodecsHost<'_> {
    async fn open(&mut self, format: String, config: EncoderConfig) -> wasmtime::Result<Result<Resource<codecs::Encoder>, String>> {
        let registry = self.registry()?.clone();
        match PluginSession::start(&registry, &format, config).await {
            Ok(session) => Ok(Ok(self.0.table.push_handle(EncoderHandle { session })?)),
            Err(StartError::Failed(reason)) => Ok(Err(reason)),
            // A trap of the converter: the attempt fails as transient and the job is retried.
            Err(StartError::NoRoom) => Err(wasmtime::Error::msg("no room to start a codec plugin right now")),
        }
    }

    async fn info(&mut self, this: Resource<codecs::Encoder>) -> wasmtime::Result<CodecInfo> {
        Ok(self.0.table.handle::<_, EncoderHandle>(&this)?.session.info().clone())
    }

    async fn encode(&mut self, this: Resource<codecs::Encoder>, pcm: Vec<i16>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.0.table.handle_mut::<_, EncoderHandle>(&this)?.session.encode(pcm).await)
    }

    async fn encode_wide(&mut self, this: Resource<codecs::Encoder>, pcm: Vec<i32>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.0.table.handle_mut::<_, EncoderHandle>(&this)?.session.encode_wide(pcm).await)
    }

    async fn finish(&mut self, this: Resource<codecs::Encoder>) -> wasmtime::Result<Result<Finished, String>> {
        Ok(self.0.table.handle_mut::<_, EncoderHandle>(&this)?.session.finish().await)
    }

    async fn drop(&mut self, this: Resource<codecs::Encoder>) -> wasmtime::Result<()> {
        self.0.table.delete_handle::<_, EncoderHandle>(this)?;
        Ok(())
    }
}
