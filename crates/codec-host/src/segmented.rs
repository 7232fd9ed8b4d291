//! Segmented encoding: one long input encoded as segments at the same time, on every core the
//! worker has, and joined by the plugin into the output a serial encode would have made.
//!
//! Owns the plan (where the input is cut, from the plugin's granule and overlap), the segment
//! tasks (each decodes its own stretch of the stored source with a sample-accurate start and
//! end and encodes it in a plugin instance of its own: own sandbox, memory cap and deadline),
//! and the order in which their results reach the joiner (another instance of the plugin).
//! A process-wide semaphore (`SegmentPolicy::threads`) bounds the segments encoding at once
//! over all jobs. In a worker, the segments after the first go through the shared queue
//! ([`super::segment_queue`]) so that every worker's cores take part; the first, which writes
//! the file's header with the job's tags and cover, is encoded by the job's own worker.
//! Without a queue (`mp3edge up` on its local store, `mp3edge convert`), the segments go to
//! that many lanes of this process ([`super::segment_lane`]), at most that many plus one ahead
//! of the joiner, so memory stays flat in the input's length. Dropping the handle (a cancelled
//! or failed job) aborts its lanes and removes its shared segments.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use wasmtime::component::Resource;

use super::registry::CodecRegistry;
use super::sandbox::{SegmentSandbox, StartError};
use super::segment_lane::Lane;
use super::segment_queue::{Outcome, SegmentQueue, SegmentTask};
use host_world::worker::mp3edge::codec::types::{EncoderConfig, Finished};
use host_world::worker::mp3edge::worker::codecs::{self, EncodedPart};
use host_world::worker::mp3edge::worker::demux::{Loudness, LoudnessTarget, OutputRequest, StoredSource};
use media::host::to_wit_loudness;
use media::sandbox::wire::Normalize;
use media::{ChunkSource, OutputRequest as NativeRequest, SourceLayout};
use spin_host::handles::HandleTable;

/// Shortest segment when the policy leaves the length to the input.
const AUTO_MIN_SECS: f64 = 30.0;
/// Longest segment then. Every seam is encoded twice (the overlap), so longer segments take
/// less CPU: two minutes instead of one took 4% less for an hour's conversion through the
/// shared queue (issue 13). But a lane holds its segment's whole output until it is handed
/// on. Through the shared queue it goes to the store at once, in pieces; in this process
/// (`Local`) up to `threads + 1` of them wait for the joiner, and at two minutes the peak of
/// `mp3edge up` converting an hour rose from 95 to 99 MiB, at the edge of its goal (100).
const AUTO_MAX_SECS_SHARED: f64 = 120.0;
const AUTO_MAX_SECS_LOCAL: f64 = 60.0;

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
pub(super) struct SegmentOutput {
    /// The plugin's encoded segment.
    pub blob: Vec<u8>,
    /// PCM frames its encoder received.
    pub received: u64,
    /// The source ended inside it (before its planned input end): it is the last.
    pub ended_early: bool,
}

type Encoded = Result<SegmentOutput, String>;

/// A segment whose task or lane ended without an outcome (aborted or panicked).
const STOPPED: &str = "a segment's encoding stopped unexpectedly";

/// A spawned task, aborted when dropped.
struct Task<T = Encoded>(JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Task {
    async fn output(&mut self) -> Encoded {
        (&mut self.0).await.unwrap_or_else(|_| Err(STOPPED.into()))
    }
}

/// A segment for a lane, and where its output goes.
type Work = (SegmentSpec, oneshot::Sender<Encoded>);

/// A lane of one output: takes its segments in order until the output's handle goes.
async fn run_lane(job: Arc<SegmentJob>, work: Arc<Mutex<mpsc::UnboundedReceiver<Work>>>) {
    let mut lane = Lane::default();
    loop {
        let next = work.lock().await.recv().await;
        let Some((spec, output)) = next else { return };
        if output.send(lane.encode(&job, spec).await).is_err() {
            return;
        }
    }
}

/// What every segment of one output shares.
pub(super) struct SegmentJob {
    pub registry: Arc<CodecRegistry>,
    pub format: String,
    pub config: EncoderConfig,
    pub chunks: Arc<dyn ChunkSource>,
    pub layout: SourceLayout,
    /// The decoder request with the loudness gain applied, if any.
    pub request: NativeRequest,
}

/// Where the segments are encoded.
enum Dispatch {
    /// Every segment on a lane of this process, at most `ahead` handed out.
    Local {
        waiting: VecDeque<SegmentSpec>,
        running: VecDeque<(SegmentSpec, oneshot::Receiver<Encoded>)>,
        work: mpsc::UnboundedSender<Work>,
        lanes: Vec<Task<()>>,
        ahead: usize,
    },
    /// The first segment in a task here, the others by any worker through the shared queue.
    Shared { queue: Arc<SegmentQueue>, job_id: String, specs: VecDeque<SegmentSpec>, first: Option<Task>, index: u32 },
}

/// The largest part handed to the converter at once. A joined segment (up to a minute of
/// output) is handed over in pieces: the converter's memory, which never shrinks, then holds
/// one piece and not the longest segment's output.
const PART_BYTES: usize = 256 << 10;

/// The joined output of the last segment, handed over a piece at a time: cut as it goes, so
/// that it is not held twice (whole and in pieces).
struct Joined {
    bytes: Vec<u8>,
    /// Where the next piece starts.
    at: usize,
    /// PCM frames covered once the last piece is handed over.
    frames: u64,
}

/// The converter's handle to a segmented encode.
pub struct SegmentedHandle {
    /// What of the last joined segment is not handed over yet.
    joined: Option<Joined>,
    /// PCM frames covered by the parts handed over so far.
    frames_out: u64,
    joiner: SegmentSandbox,
    dispatch: Dispatch,
    loudness: Option<Loudness>,
    failed: Option<String>,
}

impl Drop for SegmentedHandle {
    fn drop(&mut self) {
        if let Dispatch::Shared { queue, job_id, .. } = &self.dispatch
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (queue, job_id) = (queue.clone(), job_id.clone());
            runtime.spawn(async move {
                if let Err(e) = queue.forget(&job_id).await {
                    tracing::warn!(job = %job_id, error = %format!("{e:#}"), "could not remove the job's segments; the job's clean-up will");
                }
            });
        }
    }
}

/// Why a segmented encode could not start or go on.
enum OpenError {
    NoRoom,
    Failed(String),
    /// The shared queue or the store did not answer: the attempt is retried.
    Unavailable(String),
}

impl SegmentedHandle {
    fn new(joiner: SegmentSandbox, dispatch: Dispatch, loudness: Option<Loudness>) -> SegmentedHandle {
        SegmentedHandle { joined: None, frames_out: 0, joiner, dispatch, loudness, failed: None }
    }

    #[allow(clippy::too_many_arguments)]
    async fn open(
        registry: Arc<CodecRegistry>,
        format: String,
        config: EncoderConfig,
        chunks: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        mut request: NativeRequest,
        target: Option<LoudnessTarget>,
        shared: Option<(Arc<SegmentQueue>, String)>,
    ) -> Result<Option<SegmentedHandle>, OpenError> {
        let policy = registry.limits.segments;
        let rate = config.input.sample_rate;
        let (Some(total), true) = (config.total_frames, rate > 0) else {
            return Ok(None);
        };
        if !registry.plugin(&format).is_some_and(|p| p.segments) {
            return Ok(None);
        }
        // Cut when more than one core can encode: this worker's segment threads, or on the
        // shared queue another worker serving it (a one-CPU pod among others).
        let helped = match &shared {
            Some((queue, _)) if policy.threads < 2 => queue.others_serving().await.unwrap_or(false),
            _ => false,
        };
        if policy.threads < 2 && !helped {
            return Ok(None);
        }
        let lanes = policy.threads.max(2);
        let longest = if shared.is_some() { AUTO_MAX_SECS_SHARED } else { AUTO_MAX_SECS_LOCAL };
        let segment_secs = policy
            .segment_secs
            .unwrap_or_else(|| (total as f64 / f64::from(rate) / (lanes * 4) as f64).clamp(AUTO_MIN_SECS, longest));
        if (total as f64) < 1.5 * segment_secs * f64::from(rate) {
            return Ok(None);
        }
        // Segments are never resampled: a resampler's start-up would differ from a serial
        // decode's at each seam. The probe also leaves a broken source to the serial path,
        // which reports it.
        let probe = {
            let (chunks, request) = (chunks.clone(), request.clone());
            tokio::task::spawn_blocking(move || media::sandbox::probe(chunks, layout, request)).await
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
            let normalize = Normalize { target_lufs: t.integrated_lufs, ceiling_dbtp: t.true_peak_dbtp };
            let measured = tokio::task::spawn_blocking(move || media::sandbox::measure(chunks, layout, measured_request, normalize))
            .await
            .unwrap_or_else(|_| Err("the loudness measurement stopped unexpectedly".into()))
            .map_err(OpenError::Failed)?;
            request.gain_db = Some(measured.gain_db);
            loudness = Some(to_wit_loudness(measured));
        }
        tracing::info!(
            format = %format,
            segments = specs.len(),
            segment_secs,
            threads = policy.threads,
            shared = shared.is_some(),
            "encoding in segments"
        );
        let job = Arc::new(SegmentJob { registry, format, config, chunks, layout, request });
        let dispatch = match shared {
            Some((queue, job_id)) => {
                let tasks: Vec<SegmentTask> =
                    specs.iter().enumerate().skip(1).map(|(index, spec)| SegmentTask::new(&job_id, index as u32, &job, *spec)).collect();
                // Dropped on failure, the handle would remove a plan that may be half made.
                let (first_job, first_spec) = (job.clone(), specs[0]);
                let first = Task(tokio::spawn(async move { Lane::default().encode(&first_job, first_spec).await }));
                let dispatch =
                    Dispatch::Shared { queue: queue.clone(), job_id: job_id.clone(), specs: specs.into(), first: Some(first), index: 0 };
                let handle = SegmentedHandle::new(joiner, dispatch, loudness);
                queue.publish(&job_id, tasks.len() as u32 + 1, &tasks).await.map_err(|e| OpenError::Unavailable(format!("{e:#}")))?;
                return Ok(Some(handle));
            }
            None => {
                let (work, queued) = mpsc::unbounded_channel();
                let queued = Arc::new(Mutex::new(queued));
                let lanes = (0..policy.threads.min(specs.len())).map(|_| Task(tokio::spawn(run_lane(job.clone(), queued.clone())))).collect();
                Dispatch::Local { waiting: specs.into(), running: VecDeque::new(), work, lanes, ahead: policy.threads + 1 }
            }
        };
        Ok(Some(SegmentedHandle::new(joiner, dispatch, loudness)))
    }

    /// The next segment's spec and encoded output, in order; `None` after the last.
    /// `Err(Ok(reason))`: the segment failed; `Err(Err(e))`: the queue or store did not answer.
    async fn next_segment(&mut self) -> Result<Option<(SegmentSpec, SegmentOutput)>, Result<String, anyhow::Error>> {
        match &mut self.dispatch {
            Dispatch::Local { waiting, running, work, ahead, .. } => {
                while running.len() < *ahead {
                    let Some(spec) = waiting.pop_front() else { break };
                    let (output, received) = oneshot::channel();
                    let _ = work.send((spec, output));
                    running.push_back((spec, received));
                }
                let Some((spec, received)) = running.pop_front() else { return Ok(None) };
                let output = received.await.unwrap_or_else(|_| Err(STOPPED.into()));
                Ok(Some((spec, output.map_err(Ok)?)))
            }
            Dispatch::Shared { queue, job_id, specs, first, index } => {
                let Some(spec) = specs.pop_front() else { return Ok(None) };
                let this = *index;
                *index += 1;
                if let Some(mut task) = first.take() {
                    return Ok(Some((spec, task.output().await.map_err(Ok)?)));
                }
                // A busy Redis may miss a reply's deadline now and then; only one that stays
                // silent fails the attempt.
                let mut silent_since = None;
                loop {
                    let outcome = match queue.outcome(job_id, this).await {
                        Ok(Some(Outcome::Encoded { received, ended_early, bytes })) => {
                            queue.take(job_id, this, bytes).await.map(|blob| Some(SegmentOutput { blob, received, ended_early }))
                        }
                        Ok(Some(Outcome::Failed(reason))) => return Err(Ok(reason)),
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(Some(output)) => return Ok(Some((spec, output))),
                        Ok(None) => silent_since = None,
                        Err(e) if silent_since.get_or_insert_with(std::time::Instant::now).elapsed() > SHARED_SILENCE => {
                            return Err(Err(e));
                        }
                        Err(e) => {
                            tracing::debug!(job = %job_id, error = %format!("{e:#}"), "the segment queue did not answer; asking again")
                        }
                    }
                    tokio::time::sleep(SHARED_POLL).await;
                }
            }
        }
    }

    /// Drops the segments not joined yet (their tasks stop; shared ones are removed with the
    /// plan when the handle goes).
    fn stop(&mut self) {
        match &mut self.dispatch {
            Dispatch::Local { waiting, running, lanes, .. } => {
                waiting.clear();
                running.clear();
                lanes.clear();
            }
            Dispatch::Shared { specs, first, .. } => {
                specs.clear();
                first.take();
            }
        }
    }

    async fn next(&mut self) -> wasmtime::Result<Result<Option<EncodedPart>, String>> {
        if let Some(reason) = &self.failed {
            return Ok(Err(reason.clone()));
        }
        if let Some(part) = self.next_part() {
            return Ok(Ok(Some(part)));
        }
        let (spec, output) = match self.next_segment().await {
            Ok(Some(segment)) => segment,
            Ok(None) => return Ok(Ok(None)),
            // No room for a segment's plugin instance, here or on the worker that took it, is
            // the workers' state, not the job's: the attempt fails as transient (a trap of the
            // converter) and the job is retried.
            Err(Ok(reason)) if super::segment_lane::is_no_room(&reason) => {
                self.stop();
                return Err(wasmtime::Error::msg(reason));
            }
            Err(Ok(reason)) => {
                self.stop();
                self.failed = Some(reason.clone());
                return Ok(Err(reason));
            }
            // A trap of the converter: the attempt fails as transient and the job is retried.
            Err(Err(e)) => return Err(wasmtime::Error::msg(format!("the shared segment queue did not answer: {e:#}"))),
        };
        let SegmentOutput { blob, received, ended_early } = output;
        let joined = self.joiner.add(&blob).await;
        drop(blob);
        let bytes = match joined {
            Ok(bytes) => bytes,
            Err(reason) => {
                self.stop();
                self.failed = Some(reason.clone());
                return Ok(Err(reason));
            }
        };
        if ended_early {
            // The source is shorter than its header said: this segment was the last.
            self.stop();
        }
        let frames = if ended_early || spec.input_end.is_none() { spec.first_frame + received } else { spec.own_end };
        self.joined = Some(Joined { bytes, at: 0, frames });
        Ok(Ok(self.next_part()))
    }

    /// The next piece of the joined segment; every piece but its last counts the frames
    /// handed over before it. `None` once it is all handed over (an empty one still gives one
    /// piece, which carries its frames).
    fn next_part(&mut self) -> Option<EncodedPart> {
        let joined = self.joined.as_mut()?;
        let end = joined.bytes.len().min(joined.at + PART_BYTES);
        let bytes = joined.bytes[joined.at..end].to_vec();
        joined.at = end;
        if end == joined.bytes.len() {
            self.frames_out = joined.frames;
            self.joined = None;
        }
        Some(EncodedPart { bytes, frames: self.frames_out })
    }

    fn is_over(&self) -> bool {
        if self.joined.is_some() {
            return false;
        }
        match &self.dispatch {
            Dispatch::Local { waiting, running, .. } => waiting.is_empty() && running.is_empty(),
            Dispatch::Shared { specs, .. } => specs.is_empty(),
        }
    }
}

/// How often the owner looks for its next shared segment.
const SHARED_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// How long the shared queue may stay silent before the attempt fails (and is retried).
const SHARED_SILENCE: std::time::Duration = std::time::Duration::from_secs(30);

impl codecs::HostSegmentedEncoder for crate::CodecsHost<'_> {
    async fn open(
        &mut self,
        format: String,
        config: EncoderConfig,
        source: StoredSource,
        request: OutputRequest,
    ) -> wasmtime::Result<Result<Option<Resource<codecs::SegmentedEncoder>>, String>> {
        let registry = self.registry()?.clone();
        // The shared queue serves jobs of the store its worker uses.
        let shared = registry.segment_queue().and_then(|queue| {
            let store = self.0.services.key_value.get(&source.store)?;
            Arc::ptr_eq(&store, &queue.store).then(|| (queue, source.job_id.clone()))
        });
        let (chunks, layout, request, target) = match media::host::decoder_input(self.0, source, request) {
            Ok(input) => input,
            Err(reason) => return Ok(Err(reason)),
        };
        match SegmentedHandle::open(registry, format, config, chunks, layout, request, target, shared).await {
            Ok(Some(handle)) => Ok(Ok(Some(self.0.table.push_handle(handle)?))),
            Ok(None) => Ok(Ok(None)),
            Err(OpenError::Failed(reason)) => Ok(Err(reason)),
            // A trap of the converter: the attempt fails as transient and the job is retried.
            Err(OpenError::NoRoom) => Err(wasmtime::Error::msg("no room to start a codec plugin right now")),
            Err(OpenError::Unavailable(e)) => Err(wasmtime::Error::msg(format!("the shared segment queue did not answer: {e}"))),
        }
    }

    async fn next(&mut self, this: Resource<codecs::SegmentedEncoder>) -> wasmtime::Result<Result<Option<EncodedPart>, String>> {
        self.0.table.handle_mut::<_, SegmentedHandle>(&this)?.next().await
    }

    async fn loudness(&mut self, this: Resource<codecs::SegmentedEncoder>) -> wasmtime::Result<Option<Loudness>> {
        Ok(self.0.table.handle::<_, SegmentedHandle>(&this)?.loudness)
    }

    async fn finish(&mut self, this: Resource<codecs::SegmentedEncoder>) -> wasmtime::Result<Result<Finished, String>> {
        let handle = self.0.table.handle_mut::<_, SegmentedHandle>(&this)?;
        if let Some(reason) = &handle.failed {
            return Ok(Err(reason.clone()));
        }
        if !handle.is_over() {
            return Ok(Err("the segmented encode is not over yet".into()));
        }
        Ok(handle.joiner.finish_joiner().await)
    }

    async fn drop(&mut self, this: Resource<codecs::SegmentedEncoder>) -> wasmtime::Result<()> {
        self.0.table.delete_handle::<_, SegmentedHandle>(this)?;
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
