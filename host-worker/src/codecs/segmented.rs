//! Segmented encoding: one long input encoded as segments at the same time, on every core the
//! worker has, and joined by the plugin into the output a serial encode would have made.
//!
//! Owns the plan (where the input is cut, from the plugin's granule and overlap), the segment
//! tasks (each decodes its own stretch of the stored source with a sample-accurate start and
//! end and encodes it in a plugin instance of its own: own sandbox, memory cap and deadline),
//! and the order in which their results reach the joiner (another instance of the plugin).
//! A process-wide semaphore (`SegmentPolicy::threads`) bounds the segments encoding at once
//! over all jobs, and each job keeps at most that many plus one segments ahead of its joiner,
//! so memory stays flat in the input's length. Dropping the handle (a cancelled or failed
//! job) aborts its segment tasks.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;
use wasmtime::component::Resource;

use super::registry::CodecRegistry;
use super::sandbox::{SegmentSandbox, StartError};
use crate::bindings::worker::mp3edge::codec::types::{EncoderConfig, Finished};
use crate::bindings::worker::mp3edge::worker::codecs::{self, EncodedPart};
use crate::bindings::worker::mp3edge::worker::demux::{Loudness, LoudnessTarget, OutputRequest, StoredSource};
use crate::demux::host::{DecoderHandle, native_request, to_wit_loudness};
use crate::demux::{ChunkSource, Decoder, OutputRequest as NativeRequest, SourceLayout, to_s16};
use crate::state::ComponentState;

/// Shortest and longest segment when the policy leaves the length to the input.
const AUTO_MIN_SECS: f64 = 30.0;
const AUTO_MAX_SECS: f64 = 120.0;

/// One segment: its stretch of the output's PCM frames (from the output's first frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Where its encoder's input starts (its own range minus the lead-in).
    pub first_frame: u64,
    pub lead_in: u32,
    /// Where its own range ends (the next segment's own start).
    pub own_end: u64,
    /// Where its encoder's input ends (own end plus the lead-out); `None` for the last.
    pub input_end: Option<u64>,
}

/// Cuts `total` frames into segments of about `segment` frames on multiples of `granule`,
/// the last taking the remainder (between half and one and a half segments). Fewer than two
/// segments: `None`.
pub fn plan_segments(total: u64, granule: u64, lead_in: u64, lead_out: u64, segment: u64) -> Option<Vec<SegmentSpec>> {
    let granule = granule.max(1);
    let segment = segment.div_ceil(granule).max(1) * granule;
    let count = (total as f64 / segment as f64).round() as u64;
    if count < 2 {
        return None;
    }
    Some(
        (0..count)
            .map(|k| {
                let start = k * segment;
                let first_frame = start.saturating_sub(lead_in.div_ceil(granule) * granule);
                let last = k + 1 == count;
                SegmentSpec {
                    first_frame,
                    lead_in: (start - first_frame) as u32,
                    own_end: if last { total } else { start + segment },
                    input_end: (!last).then_some(start + segment + lead_out),
                }
            })
            .collect(),
    )
}

/// What a segment task hands back.
struct SegmentOutput {
    /// The plugin's encoded segment.
    blob: Vec<u8>,
    /// PCM frames its encoder received.
    received: u64,
    /// The source ended inside it (before its planned input end): it is the last.
    ended_early: bool,
}

/// A spawned segment task, aborted when dropped.
struct Task(JoinHandle<Result<SegmentOutput, String>>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every segment of one output shares.
struct Job {
    registry: Arc<CodecRegistry>,
    format: String,
    config: EncoderConfig,
    chunks: Arc<dyn ChunkSource>,
    layout: SourceLayout,
    /// The decoder request with the loudness gain applied, if any.
    request: NativeRequest,
}

/// The converter's handle to a segmented encode.
pub struct SegmentedHandle {
    job: Arc<Job>,
    joiner: SegmentSandbox,
    waiting: VecDeque<SegmentSpec>,
    running: VecDeque<(SegmentSpec, Task)>,
    /// Segments kept going ahead of the joiner.
    ahead: usize,
    loudness: Option<Loudness>,
    failed: Option<String>,
}

/// Why a segmented encode could not start.
enum OpenError {
    NoRoom,
    Failed(String),
}

impl SegmentedHandle {
    async fn open(
        registry: Arc<CodecRegistry>,
        format: String,
        config: EncoderConfig,
        chunks: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        mut request: NativeRequest,
        target: Option<LoudnessTarget>,
    ) -> Result<Option<SegmentedHandle>, OpenError> {
        let policy = registry.limits.segments;
        let rate = config.input.sample_rate;
        let (Some(total), true) = (config.total_frames, policy.threads >= 2 && rate > 0) else {
            return Ok(None);
        };
        if !registry.plugin(&format).is_some_and(|p| p.segments) {
            return Ok(None);
        }
        let segment_secs = policy
            .segment_secs
            .unwrap_or_else(|| (total as f64 / f64::from(rate) / (policy.threads * 4) as f64).clamp(AUTO_MIN_SECS, AUTO_MAX_SECS));
        if (total as f64) < 1.5 * segment_secs * f64::from(rate) {
            return Ok(None);
        }
        // Segments are never resampled: a resampler's start-up would differ from a serial
        // decode's at each seam. The probe also leaves a broken source to the serial path,
        // which reports it.
        let probe = {
            let (chunks, request) = (chunks.clone(), request.clone());
            tokio::task::spawn_blocking(move || Decoder::open(chunks, layout, request).map(|d| d.info().clone())).await
        };
        let Ok(Ok(info)) = probe else { return Ok(None) };
        let stream_rate = info.streams.get(info.track as usize).map_or(info.sample_rate, |s| s.sample_rate);
        if stream_rate != rate || request.sample_rate.is_some_and(|r| r != rate) {
            return Ok(None);
        }
        let mut joiner = SegmentSandbox::new(&registry, &format).await.map_err(|e| match e {
            StartError::NoRoom => OpenError::NoRoom,
            StartError::Failed(reason) => OpenError::Failed(reason),
        })?;
        let Some(plan) = joiner.plan(&config).await.map_err(OpenError::Failed)? else {
            return Ok(None);
        };
        let segment = (segment_secs * f64::from(rate)) as u64;
        let Some(specs) = plan_segments(total, plan.granule.into(), plan.lead_in.into(), plan.lead_out.into(), segment) else {
            return Ok(None);
        };
        joiner.start_joiner(&config).await.map_err(OpenError::Failed)?;
        let mut loudness = None;
        if let Some(t) = target {
            let (chunks, measured_request) = (chunks.clone(), request.clone());
            let measured = tokio::task::spawn_blocking(move || {
                crate::demux::loudness::measure(chunks, layout, measured_request, t.integrated_lufs, t.true_peak_dbtp)
            })
            .await
            .unwrap_or_else(|_| Err("the loudness measurement stopped unexpectedly".into()))
            .map_err(OpenError::Failed)?;
            request.gain_db = Some(measured.gain_db);
            loudness = Some(to_wit_loudness(measured));
        }
        tracing::info!(format = %format, segments = specs.len(), segment_secs, threads = policy.threads, "encoding in segments");
        let job = Arc::new(Job { registry, format, config, chunks, layout, request });
        Ok(Some(SegmentedHandle {
            job,
            joiner,
            waiting: specs.into(),
            running: VecDeque::new(),
            ahead: policy.threads + 1,
            loudness,
            failed: None,
        }))
    }

    /// Starts segments until `ahead` are under way.
    fn start_more(&mut self) {
        while self.running.len() < self.ahead {
            let Some(spec) = self.waiting.pop_front() else {
                break;
            };
            let task = tokio::spawn(encode_segment(self.job.clone(), spec));
            self.running.push_back((spec, Task(task)));
        }
    }

    async fn next(&mut self) -> Result<Option<EncodedPart>, String> {
        if let Some(reason) = &self.failed {
            return Err(reason.clone());
        }
        self.start_more();
        let Some((spec, mut task)) = self.running.pop_front() else {
            return Ok(None);
        };
        let output = (&mut task.0).await.unwrap_or_else(|_| Err("a segment's encoding stopped unexpectedly".into()));
        let added = match output {
            Ok(output) => self.joiner.add(&output.blob).await.map(|bytes| (bytes, output)),
            Err(reason) => Err(reason),
        };
        let (bytes, output) = added.inspect_err(|reason| {
            self.failed = Some(reason.clone());
            self.waiting.clear();
            self.running.clear();
        })?;
        if output.ended_early {
            // The source is shorter than its header said: this segment was the last.
            self.waiting.clear();
            self.running.clear();
        }
        let frames = if output.ended_early || spec.input_end.is_none() { spec.first_frame + output.received } else { spec.own_end };
        Ok(Some(EncodedPart { bytes, frames }))
    }
}

/// Decodes and encodes one segment once a slot is free.
async fn encode_segment(job: Arc<Job>, spec: SegmentSpec) -> Result<SegmentOutput, String> {
    let _slot = job.registry.segment_slots.clone().acquire_owned().await.map_err(|_| "the worker is stopping".to_string())?;
    let rate = job.config.input.sample_rate;
    let channels = u64::from(job.config.input.channels.max(1));
    let secs = |frame: u64| frame as f64 / f64::from(rate);
    let base = job.request.start_secs.map_or(0, |s| (s * f64::from(rate)).round() as u64);
    let request = NativeRequest {
        start_secs: Some(secs(base + spec.first_frame)),
        end_secs: spec.input_end.map(|end| secs(base + end)).or(job.request.end_secs),
        ..job.request.clone()
    };
    let mut decoder = DecoderHandle::open(job.chunks.clone(), job.layout, request, None).await?;
    let mut sandbox = SegmentSandbox::new(&job.registry, &job.format).await.map_err(|e| match e {
        StartError::NoRoom => "no room to start a codec plugin for a segment".to_string(),
        StartError::Failed(reason) => reason,
    })?;
    sandbox.start_segment(&job.config, spec.first_frame, spec.lead_in).await?;
    let mut received = 0u64;
    loop {
        let pcm = decoder.read(rate, to_s16).await?;
        if pcm.is_empty() {
            break;
        }
        received += pcm.len() as u64 / channels;
        sandbox.encode(&pcm).await?;
    }
    let blob = sandbox.finish_segment().await?;
    let ended_early = spec.input_end.is_some_and(|end| spec.first_frame + received < end);
    Ok(SegmentOutput { blob, received, ended_early })
}

impl codecs::HostSegmentedEncoder for ComponentState {
    async fn open(
        &mut self,
        format: String,
        config: EncoderConfig,
        source: StoredSource,
        request: OutputRequest,
    ) -> wasmtime::Result<Result<Option<Resource<SegmentedHandle>>, String>> {
        let registry = self.registry()?.clone();
        let (chunks, layout) = match self.stored_chunks(source) {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        let (request, target) = match native_request(request) {
            Ok(checked) => checked,
            Err(reason) => return Ok(Err(reason)),
        };
        match SegmentedHandle::open(registry, format, config, chunks, layout, request, target).await {
            Ok(Some(handle)) => Ok(Ok(Some(self.table.push(handle)?))),
            Ok(None) => Ok(Ok(None)),
            Err(OpenError::Failed(reason)) => Ok(Err(reason)),
            // A trap of the converter: the attempt fails as transient and the job is retried.
            Err(OpenError::NoRoom) => Err(wasmtime::Error::msg("no room to start a codec plugin right now")),
        }
    }

    async fn next(&mut self, this: Resource<SegmentedHandle>) -> wasmtime::Result<Result<Option<EncodedPart>, String>> {
        Ok(self.table.get_mut(&this)?.next().await)
    }

    async fn loudness(&mut self, this: Resource<SegmentedHandle>) -> wasmtime::Result<Option<Loudness>> {
        Ok(self.table.get(&this)?.loudness)
    }

    async fn finish(&mut self, this: Resource<SegmentedHandle>) -> wasmtime::Result<Result<Finished, String>> {
        let handle = self.table.get_mut(&this)?;
        if let Some(reason) = &handle.failed {
            return Ok(Err(reason.clone()));
        }
        if !handle.running.is_empty() || !handle.waiting.is_empty() {
            return Ok(Err("the segmented encode is not over yet".into()));
        }
        Ok(handle.joiner.finish_joiner().await)
    }

    async fn drop(&mut self, this: Resource<SegmentedHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_input_on_the_frame_grid() {
        let specs = plan_segments(44100 * 100, 1152, 1152 * 24, 1152 * 24, 44100 * 30).unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(
            specs[0],
            SegmentSpec {
                first_frame: 0,
                lead_in: 0,
                own_end: specs[1].first_frame + u64::from(specs[1].lead_in),
                input_end: Some(specs[0].own_end + 1152 * 24)
            }
        );
        for pair in specs.windows(2) {
            let next_start = pair[1].first_frame + u64::from(pair[1].lead_in);
            assert_eq!(pair[0].own_end, next_start, "no gap, no overlap of own ranges");
            assert_eq!(next_start % 1152, 0);
            assert_eq!(pair[1].lead_in, 1152 * 24);
        }
        assert_eq!(specs.last().unwrap().own_end, 44100 * 100);
        assert_eq!(specs.last().unwrap().input_end, None);
    }

    #[test]
    fn short_inputs_are_not_segmented() {
        assert_eq!(plan_segments(44100 * 40, 1152, 1152 * 24, 1152 * 24, 44100 * 30), None);
        assert_eq!(plan_segments(44100 * 50, 1152, 1152 * 24, 1152 * 24, 44100 * 30).map(|s| s.len()), Some(2));
    }
}
