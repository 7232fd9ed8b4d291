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

pub use registry::{CodecRegistry, PluginLimits, SegmentPolicy};
pub use sandbox::{PluginSession, StartError};
pub use segment_queue::{SegmentQueue, forget as forget_segments};
pub use segmented::SegmentedHandle;

use wasmtime::component::Resource;

use crate::bindings::worker::mp3edge::codec::types::{CodecInfo, EncoderConfig, Finished};
use crate::bindings::worker::mp3edge::worker::codecs::{self, FormatEntry};
use crate::state::ComponentState;

/// How the edge (and `mp3edge convert`) sees a format: its plugin's description, for the format
/// list and the checks of upload options.
pub fn format_info(format: String, info: CodecInfo) -> job_model::FormatInfo {
    job_model::FormatInfo {
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

impl ComponentState {
    fn registry(&self) -> wasmtime::Result<&std::sync::Arc<CodecRegistry>> {
        self.codecs.as_ref().ok_or_else(|| wasmtime::Error::msg("codec plugins are not available to this component"))
    }
}

impl codecs::Host for ComponentState {
    async fn formats(&mut self) -> wasmtime::Result<Vec<FormatEntry>> {
        Ok(self.registry()?.formats().into_iter().map(|(format, codec)| FormatEntry { format, codec }).collect())
    }
}

impl codecs::HostEncoder for ComponentState {
    async fn open(&mut self, format: String, config: EncoderConfig) -> wasmtime::Result<Result<Resource<EncoderHandle>, String>> {
        let registry = self.registry()?.clone();
        match PluginSession::start(&registry, &format, config).await {
            Ok(session) => Ok(Ok(self.table.push(EncoderHandle { session })?)),
            Err(StartError::Failed(reason)) => Ok(Err(reason)),
            // A trap of the converter: the attempt fails as transient and the job is retried.
            Err(StartError::NoRoom) => Err(wasmtime::Error::msg("no room to start a codec plugin right now")),
        }
    }

    async fn info(&mut self, this: Resource<EncoderHandle>) -> wasmtime::Result<CodecInfo> {
        Ok(self.table.get(&this)?.session.info().clone())
    }

    async fn encode(&mut self, this: Resource<EncoderHandle>, pcm: Vec<i16>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.table.get_mut(&this)?.session.encode(pcm).await)
    }

    async fn encode_wide(&mut self, this: Resource<EncoderHandle>, pcm: Vec<i32>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.table.get_mut(&this)?.session.encode_wide(pcm).await)
    }

    async fn finish(&mut self, this: Resource<EncoderHandle>) -> wasmtime::Result<Result<Finished, String>> {
        Ok(self.table.get_mut(&this)?.session.finish().await)
    }

    async fn drop(&mut self, this: Resource<EncoderHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
