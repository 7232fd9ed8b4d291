//! A segment lane: one worker thread's share of segmented encoding, and what it keeps from one
//! segment to the next of the same output.
//!
//! A segment decodes its own stretch of the stored source and encodes it in a plugin instance
//! of its own. Opening the source again for every segment re-read and re-indexed the whole
//! container (an hour of MP4 is 277,000 index entries) and started a cold instance: about 7%
//! more CPU than a serial encode (issue 13). A lane keeps its decoder, restarted on the next
//! stretch ([`DecoderHandle::restart`], the same samples as a fresh decoder), and its plugin
//! instance, which starts the next segment encoder after the last one finished. Only segments
//! of the same output share them; a failed segment keeps nothing (its instance may be broken).
//! A lane that has to wait for a free segment slot lets go of what it keeps first, so lanes
//! queued behind other jobs hold no memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sandbox::{SegmentSandbox, StartError};
use super::registry::CodecRegistry;
use super::segmented::{SegmentJob, SegmentOutput, SegmentSpec};
use media::host::{DecoderHandle, block_frames};
use media::OutputRequest as NativeRequest;

/// What a lane keeps between two segments of one output.
struct Kept {
    job: Arc<SegmentJob>,
    decoder: DecoderHandle,
    sandbox: SegmentSandbox,
}

/// One lane; see the module docs.
#[derive(Default)]
pub(super) struct Lane {
    kept: Option<Kept>,
}

impl Lane {
    /// Decodes and encodes `spec` of `job` once a segment slot is free.
    pub async fn encode(&mut self, job: &Arc<SegmentJob>, spec: SegmentSpec) -> Result<SegmentOutput, String> {
        let mut kept = self.kept.take().filter(|kept| Arc::ptr_eq(&kept.job, job));
        let slots = job.registry.segment_slots.clone();
        let _slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                kept = None;
                slots.acquire_owned().await.map_err(|_| "the worker is stopping".to_string())?
            }
        };
        let request = segment_request(job, spec);
        let (mut decoder, mut sandbox) = match kept {
            Some(Kept { mut decoder, sandbox, .. }) => {
                let decoder = if decoder.restart(request.start_secs, request.end_secs).await? {
                    decoder
                } else {
                    DecoderHandle::open_restartable(job.chunks.clone(), job.layout, request).await?
                };
                (decoder, sandbox)
            }
            None => {
                let decoder = DecoderHandle::open_restartable(job.chunks.clone(), job.layout, request).await?;
                let sandbox = sandbox_when_there_is_room(&job.registry, &job.format, ROOM_PATIENCE).await?;
                (decoder, sandbox)
            }
        };
        let rate = job.config.input.sample_rate;
        let channels = u64::from(job.config.input.channels.max(1));
        sandbox.start_segment(&job.config, spec.first_frame, spec.lead_in).await?;
        let mut received = 0u64;
        // The encoded segment is kept here, not in the plugin's memory (see `segments.wit`).
        let mut blob = Vec::new();
        loop {
            let pcm = decoder.read::<i16>(block_frames(rate)).await?;
            if pcm.is_empty() {
                break;
            }
            received += pcm.len() as u64 / channels;
            blob.extend(sandbox.encode(&pcm).await?);
        }
        blob.extend(sandbox.finish_segment().await?);
        self.kept = Some(Kept { job: job.clone(), decoder, sandbox });
        let ended_early = spec.input_end.is_some_and(|end| spec.first_frame + received < end);
        Ok(SegmentOutput { blob, received, ended_early })
    }
}

/// Why a segment could not start a plugin instance: the worker's instance pool stayed full.
/// Not the job's fault, so the attempt that meets it is retried ([`is_no_room`]).
pub(super) const NO_ROOM: &str = "no room to start a codec plugin for a segment";

/// How long a lane waits for a free plugin instance before it gives up.
const ROOM_PATIENCE: Duration = Duration::from_secs(60);

/// Whether a segment's failure is [`NO_ROOM`]: the attempt is then retried, not failed.
pub(super) fn is_no_room(reason: &str) -> bool {
    reason.starts_with(NO_ROOM)
}

/// A plugin instance of `format` for segments, waiting (with growing pauses, up to
/// `patience`, [`ROOM_PATIENCE`] in a lane) while the instance pool is full: instances come
/// free as other segments and jobs end.
async fn sandbox_when_there_is_room(registry: &CodecRegistry, format: &str, patience: Duration) -> Result<SegmentSandbox, String> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match SegmentSandbox::new(registry, format).await {
            Ok(sandbox) => return Ok(sandbox),
            Err(StartError::Failed(reason)) => return Err(reason),
            Err(StartError::NoRoom) if started.elapsed() < patience => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(StartError::NoRoom) => return Err(format!("{NO_ROOM} (the worker's instances stayed busy for {:.1} s)", patience.as_secs_f64())),
        }
    }
}

/// The decoder request of one segment: the output's, trimmed to the segment's input.
fn segment_request(job: &SegmentJob, spec: SegmentSpec) -> NativeRequest {
    let rate = job.config.input.sample_rate;
    let secs = |frame: u64| frame as f64 / f64::from(rate);
    let base = job.request.start_secs.map_or(0, |s| (s * f64::from(rate)).round() as u64);
    NativeRequest {
        start_secs: Some(secs(base + spec.first_frame)),
        end_secs: spec.input_end.map(|end| secs(base + end)).or(job.request.end_secs),
        ..job.request.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{PluginLimits, SegmentPolicy};
    use spin_host::engine::{Limits, Runtime};

    /// A registry of the built mp3 plugin on an engine with room for `instances` instances.
    async fn registry(instances: u32) -> (Arc<CodecRegistry>, tempfile::TempDir) {
        let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2/release/codec_mp3_lame.wasm");
        assert!(plugin.is_file(), "{} is built by `make components`", plugin.display());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("codecs.toml"), format!("[formats.mp3]\nplugin = {:?}\n", plugin.canonicalize().unwrap())).unwrap();
        let runtime = Runtime::new(Limits { max_instances: instances, ..Limits::default() }).unwrap();
        let limits = PluginLimits { max_memory_bytes: 64 << 20, call_timeout: Duration::from_secs(60), segments: SegmentPolicy::default() };
        let registry = CodecRegistry::new(runtime, dir.path().to_path_buf(), limits).unwrap();
        registry.refresh().await.unwrap();
        (registry, dir)
    }

    #[tokio::test]
    async fn a_segment_waits_for_a_free_instance_and_then_gives_up_as_no_room() {
        let (registry, _dir) = registry(2).await;
        let first = SegmentSandbox::new(&registry, "mp3").await.map_err(|_| "first").unwrap();
        let _second = SegmentSandbox::new(&registry, "mp3").await.map_err(|_| "second").unwrap();
        // The pool is full: a segment waits, and starts once an instance is free.
        let waiting = {
            let registry = registry.clone();
            tokio::spawn(async move { sandbox_when_there_is_room(&registry, "mp3", Duration::from_secs(30)).await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "it waits while no instance is free");
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap().unwrap();
        // With none coming free, it gives up as no room: the attempt is retried, not failed.
        let _third = SegmentSandbox::new(&registry, "mp3").await.map_err(|_| "third").unwrap();
        let started = Instant::now();
        let reason = sandbox_when_there_is_room(&registry, "mp3", Duration::from_millis(500)).await.map(drop).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert!(is_no_room(&reason), "{reason}");
        assert!(!is_no_room("codec plugin \"mp3-lame\" failed: unreachable"));
    }
}
