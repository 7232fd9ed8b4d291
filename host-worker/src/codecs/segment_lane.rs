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
use super::segmented::{SegmentJob, SegmentOutput, SegmentSpec};
use crate::demux::host::{DecoderHandle, block_frames};
use crate::demux::OutputRequest as NativeRequest;

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
                let sandbox = sandbox_when_there_is_room(job).await?;
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

/// A plugin instance for the job's segments, waiting (with growing pauses, up to
/// [`ROOM_PATIENCE`]) while the instance pool is full: instances come free as other segments
/// and jobs end.
async fn sandbox_when_there_is_room(job: &SegmentJob) -> Result<SegmentSandbox, String> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match SegmentSandbox::new(&job.registry, &job.format).await {
            Ok(sandbox) => return Ok(sandbox),
            Err(StartError::Failed(reason)) => return Err(reason),
            Err(StartError::NoRoom) if started.elapsed() < ROOM_PATIENCE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(StartError::NoRoom) => return Err(format!("{NO_ROOM} (the worker's instances stayed busy for {} s)", ROOM_PATIENCE.as_secs())),
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
