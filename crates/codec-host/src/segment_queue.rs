//! Segments shared by every worker: the segments of a long job become entries of a Redis
//! stream (`mp3edge:segments`, consumer group `mp3edge-segment-workers`), so any worker with a
//! free core encodes them, and a 2-hour recording converts on a cluster in a fraction of its
//! serial time.
//!
//! Owns the task format (everything a worker needs to decode and encode one segment without
//! the job's converter), the consumer loops every worker runs, and the bookkeeping that keeps
//! delivery at-least-once and idempotent and leaves nothing behind:
//! - the job's owner (the worker running its converter) records the plan in the job's segment
//!   hash (`count`), then adds one entry per segment it does not already have;
//! - a worker takes an entry (or reclaims one idle past the visibility timeout: its worker
//!   died), encodes the segment, stores it in pieces under `job:{id}:seg:{index}:{piece}`
//!   ([`PIECE_BYTES`] each), records the outcome
//!   in the hash only while the plan still exists (a Lua script), and acknowledges; a segment
//!   whose plan is gone (the job ended, failed or was cancelled) is deleted again. Encoding is
//!   deterministic, so a segment encoded twice is the same bytes;
//! - the owner takes the segments in order (reading, then deleting each) and joins them; when
//!   the encode ends for any reason it deletes the plan first, then whatever segments are left.
//!   The storage lifecycle does the same for a job whose owner died
//!   ([`forget`], called by `lifecycle`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use job_model::{layout, lifecycle};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::registry::CodecRegistry;
use super::segment_lane::Lane;
use super::segmented::{SegmentJob, SegmentSpec};
use host_world::worker::mp3edge::codec::types::{AudioFormat, EncoderConfig, Tags};
use media::{OutputRequest as NativeRequest, SourceLayout};
use spin_host::interfaces::key_value::KeyValueBackend;

/// A worker that has not looked for segments for this long is not counted as serving the queue.
const LIVE_CONSUMER_IDLE_MS: u64 = 5000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Records a segment's outcome only while its job's plan exists, and counts its stored bytes
/// in the owner's usage: KEYS[1] the plan hash, KEYS[2] the owner's usage hash; ARGV[1] the
/// segment index, ARGV[2] the outcome, ARGV[3] the job's segments field, ARGV[4] the bytes
/// stored (0 for a failure). Returns 1 when recorded.
const RECORD_SCRIPT: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'count') == 1 then
  local before = redis.call('HGET', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if tonumber(ARGV[4]) > 0 and not (before and string.sub(before, 1, 3) == 'ok ') then
    redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
  end
  return 1
end
return 0
"#;

/// Stops counting a taken segment's bytes: KEYS[1] the owner's usage hash; ARGV[1] the job's
/// segments field, ARGV[2] the bytes. The field goes when nothing is left in it.
const UNCOUNT_SCRIPT: &str = r#"
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return left
"#;

/// An encoded segment is stored in pieces of this size, each under its own key. A Redis
/// connection's buffers grow to the largest command or reply they carried and keep that size:
/// stored whole, the two-minute segments of an hour's conversion (about 3 MB each) raised the
/// worker's peak from 91 to 101 MiB. Each piece also stays within the 1 MB that Spin documents
/// as a portable key-value size.
const PIECE_BYTES: usize = 256 << 10;

/// One segment to encode, as a stream entry carries it. Segments after the first carry no tags
/// or cover (only the first segment writes the file's header), so entries stay small.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SegmentTask {
    pub job_id: String,
    pub index: u32,
    pub format: String,
    pub source_size: u64,
    pub source_chunks: u32,
    pub source_chunk_size: u32,
    pub sample_rate: u32,
    pub channels: u8,
    pub bitrate_kbps: Option<u32>,
    pub vbr_quality: Option<u8>,
    pub level: Option<u8>,
    pub total_frames: Option<u64>,
    pub track: Option<u32>,
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
    pub gain_db: Option<f64>,
    pub first_frame: u64,
    pub lead_in: u32,
    pub own_end: u64,
    pub input_end: Option<u64>,
}

impl SegmentTask {
    pub(super) fn new(job_id: &str, index: u32, job: &SegmentJob, spec: SegmentSpec) -> SegmentTask {
        let (config, request) = (&job.config, &job.request);
        SegmentTask {
            job_id: job_id.to_string(),
            index,
            format: job.format.clone(),
            source_size: job.layout.size,
            source_chunks: job.layout.chunks,
            source_chunk_size: job.layout.chunk_size,
            sample_rate: config.input.sample_rate,
            channels: config.input.channels,
            bitrate_kbps: config.bitrate_kbps,
            vbr_quality: config.vbr_quality,
            level: config.level,
            total_frames: config.total_frames,
            track: request.track,
            start_secs: request.start_secs,
            end_secs: request.end_secs,
            gain_db: request.gain_db,
            first_frame: spec.first_frame,
            lead_in: spec.lead_in,
            own_end: spec.own_end,
            input_end: spec.input_end,
        }
    }

    /// The task without its segment's own fields: equal for every segment of one output.
    fn output_key(&self) -> SegmentTask {
        SegmentTask { index: 0, first_frame: 0, lead_in: 0, own_end: 0, input_end: None, ..self.clone() }
    }

    fn spec(&self) -> SegmentSpec {
        SegmentSpec { first_frame: self.first_frame, lead_in: self.lead_in, own_end: self.own_end, input_end: self.input_end }
    }

    fn job(&self, registry: Arc<CodecRegistry>, store: Arc<dyn KeyValueBackend>) -> SegmentJob {
        SegmentJob {
            registry,
            format: self.format.clone(),
            config: EncoderConfig {
                input: AudioFormat { sample_rate: self.sample_rate, channels: self.channels },
                bitrate_kbps: self.bitrate_kbps,
                vbr_quality: self.vbr_quality,
                level: self.level,
                bits_per_sample: 16,
                total_frames: self.total_frames,
                tags: Tags { title: None, artist: None, album: None, year: None, comment: None, genre: None, track: None },
                cover: None,
            },
            chunks: media::host::stored_source_chunks(store, self.job_id.clone()),
            layout: SourceLayout { size: self.source_size, chunks: self.source_chunks, chunk_size: self.source_chunk_size },
            request: NativeRequest {
                sample_rate: Some(self.sample_rate),
                channels: Some(self.channels),
                track: self.track,
                start_secs: self.start_secs,
                end_secs: self.end_secs,
                gain_db: self.gain_db,
            },
        }
    }
}

/// How a segment ended, as the plan hash records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored (`bytes` long); the PCM frames its encoder received and whether the source
    /// ended inside it.
    Encoded {
        received: u64,
        ended_early: bool,
        bytes: u64,
    },
    Failed(String),
}

impl Outcome {
    fn to_field(&self) -> String {
        match self {
            Outcome::Encoded { received, ended_early, bytes } => format!("ok {received} {} {bytes}", u8::from(*ended_early)),
            Outcome::Failed(reason) => format!("error: {reason}"),
        }
    }

    fn from_field(field: &str) -> Outcome {
        if let Some(reason) = field.strip_prefix("error: ") {
            return Outcome::Failed(reason.to_string());
        }
        let mut parts = field.split(' ').skip(1);
        match (parts.next().and_then(|r| r.parse().ok()), parts.next(), parts.next().and_then(|b| b.parse().ok())) {
            (Some(received), Some(ended), Some(bytes)) => Outcome::Encoded { received, ended_early: ended == "1", bytes },
            _ => Outcome::Failed(format!("unreadable segment outcome {field:?}")),
        }
    }
}

/// The shared segment queue of one worker process.
pub struct SegmentQueue {
    redis: ConnectionManager,
    /// For each consumer loop's own connection: a blocking read would stall the shared one.
    client: redis::Client,
    /// The key-value store the converter's jobs live in (its `default` store).
    pub store: Arc<dyn KeyValueBackend>,
    consumer: String,
    visibility_timeout: Duration,
}

impl SegmentQueue {
    pub async fn new(
        client: redis::Client,
        mut redis: ConnectionManager,
        store: Arc<dyn KeyValueBackend>,
        consumer: String,
        visibility_timeout: Duration,
    ) -> Result<SegmentQueue> {
        let created: redis::RedisResult<()> = redis.xgroup_create_mkstream(layout::SEGMENT_STREAM, layout::SEGMENT_GROUP, "0").await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e).context("creating the segment consumer group");
        }
        Ok(SegmentQueue { redis, client, store, consumer, visibility_timeout })
    }

    /// Records the plan of `count` segments and adds an entry for each task whose segment is
    /// not stored already (a retried job reuses what an earlier attempt encoded).
    pub async fn publish(&self, job_id: &str, count: u32, tasks: &[SegmentTask]) -> Result<()> {
        let mut redis = self.redis.clone();
        let plan = layout::segment_plan_key(job_id);
        let _: () = redis.hset(&plan, "count", count).await?;
        for task in tasks {
            let done: Option<String> = redis.hget(&plan, task.index).await?;
            if matches!(done.as_deref().map(Outcome::from_field), Some(Outcome::Encoded { .. })) {
                continue;
            }
            let json = serde_json::to_string(task)?;
            let _: String = redis.xadd(layout::SEGMENT_STREAM, "*", &[(layout::SEGMENT_STREAM_FIELD, json)]).await?;
        }
        Ok(())
    }

    /// The outcome of segment `index` of the job, once there is one.
    pub async fn outcome(&self, job_id: &str, index: u32) -> Result<Option<Outcome>> {
        let field: Option<String> = self.redis.clone().hget(layout::segment_plan_key(job_id), index).await?;
        Ok(field.as_deref().map(Outcome::from_field))
    }

    /// Takes stored segment `index` (`bytes` long, as its outcome says) out of the store; its
    /// outcome goes first, so a later attempt of the job (this one may die before it is
    /// joined) encodes it again.
    pub async fn take(&self, job_id: &str, index: u32, bytes: u64) -> Result<Vec<u8>> {
        let mut blob = Vec::new();
        blob.try_reserve_exact(usize::try_from(bytes)?).with_context(|| format!("segment {index} is {bytes} bytes long, as its outcome says"))?;
        for piece in 0..pieces_of(bytes) {
            let key = layout::segment_piece_key(job_id, index, piece);
            let stored = self.store.get(&key).await?.with_context(|| format!("piece {piece} of segment {index} is missing from the store"))?;
            blob.extend_from_slice(&stored);
        }
        anyhow::ensure!(blob.len() as u64 == bytes, "segment {index} is {} bytes in the store, not {bytes}", blob.len());
        // Once read, the segment is this attempt's: a failure to tidy up is left to the
        // clean-up at the end ([`forget`] goes by the planned count).
        let tidied: Result<()> = async {
            let _: () = self.redis.clone().hdel(layout::segment_plan_key(job_id), index).await?;
            delete_pieces(self.store.as_ref(), job_id, index, pieces_of(bytes)).await?;
            if let Some(owner) = owner_of(self.store.as_ref(), job_id).await? {
                let _: i64 = redis::cmd("EVAL")
                    .arg(UNCOUNT_SCRIPT)
                    .arg(1)
                    .arg(lifecycle::usage_key(&owner))
                    .arg(lifecycle::segments_field(job_id))
                    .arg(bytes)
                    .query_async(&mut self.redis.clone())
                    .await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = tidied {
            tracing::debug!(job = %job_id, segment = index, error = %format!("{e:#}"), "a joined segment stays until the clean-up");
        }
        Ok(blob)
    }

    /// Runs `loops` consumer loops until `shutdown`; each takes one segment at a time and
    /// encodes it when the process has a free segment slot.
    /// Whether another worker serves the queue now (a consumer of the group other than this
    /// one that read it within the last few seconds: live consumers read at least every
    /// second), so that a job is worth cutting into segments even on a worker with one
    /// segment thread.
    pub async fn others_serving(&self) -> Result<bool> {
        let since = now_ms().saturating_sub(LIVE_CONSUMER_IDLE_MS);
        let live: Vec<String> = self.redis.clone().zrangebyscore(layout::SEGMENT_WORKERS, since, "+inf").await?;
        Ok(live.iter().any(|name| *name != self.consumer))
    }

    /// Notes that this worker is looking for segments now (and forgets workers gone for an
    /// hour).
    async fn heartbeat(&self) -> Result<()> {
        let now = now_ms();
        let mut redis = self.redis.clone();
        let _: () = redis.zadd(layout::SEGMENT_WORKERS, &self.consumer, now).await?;
        let _: () = redis.zrembyscore(layout::SEGMENT_WORKERS, "-inf", now.saturating_sub(3_600_000)).await?;
        Ok(())
    }

    pub async fn serve(self: Arc<Self>, registry: Arc<CodecRegistry>, loops: usize, shutdown: CancellationToken) {
        let mut running = Vec::new();
        for _ in 0..loops.max(1) {
            let (this, registry, shutdown) = (self.clone(), registry.clone(), shutdown.clone());
            running.push(tokio::spawn(async move { this.consume(registry, shutdown).await }));
        }
        for task in running {
            let _ = task.await;
        }
    }

    async fn consume(&self, registry: Arc<CodecRegistry>, shutdown: CancellationToken) {
        let mut reader = None;
        // Consecutive segments of one output share the lane's decoder and plugin instance.
        let mut lane = LaneOf::default();
        while !shutdown.is_cancelled() {
            if reader.is_none() {
                // Its reads block on the server for up to a second.
                let config = redis_support::client::blocking_config(Duration::from_secs(1));
                reader = self.client.get_multiplexed_async_connection_with_config(&config).await.ok();
            }
            if let Err(e) = self.heartbeat().await {
                tracing::debug!(error = %format!("{e:#}"), "could not note this worker as serving the segment queue");
            }
            let next = tokio::select! {
                next = self.next_entry(reader.as_mut()) => next,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(entry)) => self.process(&registry, entry, &mut lane).await,
                // Nothing came for a second: what the lane keeps would wait for nothing.
                Ok(None) => lane = LaneOf::default(),
                Err(e) => {
                    reader = None;
                    tracing::warn!(error = %format!("{e:#}"), "reading the segment queue failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                        _ = shutdown.cancelled() => {},
                    }
                }
            }
        }
    }

    /// A segment of a worker that stopped answering, else a new one (waiting up to a second).
    async fn next_entry(&self, reader: Option<&mut redis::aio::MultiplexedConnection>) -> Result<Option<StreamId>> {
        let reader = reader.context("no connection to the segment queue")?;
        let mut redis = self.redis.clone();
        let idle_ms = self.visibility_timeout.as_millis() as u64;
        let reclaimed =
            redis_support::streams::claim_idle_entry(&mut redis, layout::SEGMENT_STREAM, layout::SEGMENT_GROUP, &self.consumer, idle_ms).await?;
        if let Some(entry) = reclaimed {
            tracing::info!(entry = %entry.id, "reclaimed a segment from a worker that stopped answering");
            return Ok(Some(entry));
        }
        let options = StreamReadOptions::default().group(layout::SEGMENT_GROUP, &self.consumer).count(1).block(1000);
        let reply: Option<StreamReadReply> = reader.xread_options(&[layout::SEGMENT_STREAM], &[">"], &options).await?;
        Ok(reply.and_then(|r| r.keys.into_iter().next()).and_then(|k| k.ids.into_iter().next()))
    }

    async fn process(&self, registry: &Arc<CodecRegistry>, entry: StreamId, lane: &mut LaneOf) {
        let payload: Option<String> = entry.get(layout::SEGMENT_STREAM_FIELD);
        let task = payload.as_deref().map(serde_json::from_str::<SegmentTask>);
        let acknowledge = match task {
            Some(Ok(task)) if layout::is_valid_job_id(&task.job_id) => self.run(registry, &task, lane).await,
            _ => {
                tracing::warn!(entry = %entry.id, "malformed segment entry dropped");
                Ok(())
            }
        };
        match acknowledge {
            Ok(()) => {
                let mut redis = self.redis.clone();
                if let Err(e) = redis.xack::<_, _, _, ()>(layout::SEGMENT_STREAM, layout::SEGMENT_GROUP, &[&entry.id]).await {
                    tracing::warn!(entry = %entry.id, error = %e, "could not acknowledge a segment; it will be seen again");
                }
                let _: redis::RedisResult<()> = redis.xdel(layout::SEGMENT_STREAM, &[&entry.id]).await;
            }
            Err(e) => tracing::warn!(entry = %entry.id, error = %format!("{e:#}"), "segment left pending; it will be retried"),
        }
    }

    /// Encodes one segment unless its plan is gone or it is stored already. `Err` leaves the
    /// entry pending (storage trouble).
    async fn run(&self, registry: &Arc<CodecRegistry>, task: &SegmentTask, lane: &mut LaneOf) -> Result<()> {
        let plan = layout::segment_plan_key(&task.job_id);
        let mut redis = self.redis.clone();
        let (planned, done): (bool, Option<String>) =
            redis::pipe().hexists(&plan, "count").hget(&plan, task.index).query_async(&mut redis).await?;
        if !planned || matches!(done.as_deref().map(Outcome::from_field), Some(Outcome::Encoded { .. })) {
            return Ok(());
        }
        let key = task.output_key();
        let job = match &lane.output {
            Some((kept, job)) if *kept == key => job.clone(),
            _ => {
                let job = Arc::new(task.job(registry.clone(), self.store.clone()));
                lane.output = Some((key, job.clone()));
                job
            }
        };
        // Its bytes count in the owner's usage while they wait in the store; a job without a
        // record (deleted meanwhile) has nothing to encode for.
        let Some(owner) = owner_of(self.store.as_ref(), &task.job_id).await? else { return Ok(()) };
        let started = std::time::Instant::now();
        let outcome = match lane.lane.encode(&job, task.spec()).await {
            Ok(output) => {
                store_segment(self.store.as_ref(), &task.job_id, task.index, &output.blob).await?;
                Outcome::Encoded { received: output.received, ended_early: output.ended_early, bytes: output.blob.len() as u64 }
            }
            Err(reason) => Outcome::Failed(reason),
        };
        let stored_bytes = match &outcome {
            Outcome::Encoded { bytes, .. } => *bytes,
            Outcome::Failed(_) => 0,
        };
        let recorded: i64 = redis::cmd("EVAL")
            .arg(RECORD_SCRIPT)
            .arg(2)
            .arg(&plan)
            .arg(lifecycle::usage_key(&owner))
            .arg(task.index)
            .arg(outcome.to_field())
            .arg(lifecycle::segments_field(&task.job_id))
            .arg(stored_bytes)
            .query_async(&mut redis)
            .await?;
        if let (0, Outcome::Encoded { bytes, .. }) = (recorded, &outcome) {
            // The job ended meanwhile: what was just stored has no reader. Every piece written
            // is deleted, even where the clean-up deleted the first ones already.
            delete_pieces(self.store.as_ref(), &task.job_id, task.index, pieces_of(*bytes)).await?;
        }
        tracing::info!(job = %task.job_id, segment = task.index, elapsed_ms = started.elapsed().as_millis() as u64, ok = matches!(outcome, Outcome::Encoded { .. }), "encoded a segment");
        Ok(())
    }
}

/// A consumer loop's lane, and the output whose segments it is encoding.
#[derive(Default)]
struct LaneOf {
    lane: Lane,
    output: Option<(SegmentTask, Arc<SegmentJob>)>,
}

impl SegmentQueue {
    /// [`forget`] the job's segments.
    pub async fn forget(&self, job_id: &str) -> Result<()> {
        forget(&mut self.redis.clone(), self.store.as_ref(), job_id).await
    }
}

/// Removes what a job's segmented encode left: the plan first (so workers still encoding
/// drop their result), then every segment stored, then their count in the owner's usage
/// (when the record is gone already, its deletion forgets the count). Idempotent.
pub async fn forget(redis: &mut ConnectionManager, store: &dyn KeyValueBackend, job_id: &str) -> Result<()> {
    let plan = layout::segment_plan_key(job_id);
    let count: Option<u32> = redis.hget(&plan, "count").await?;
    let _: () = redis.del(&plan).await?;
    for index in 0..count.unwrap_or(0) {
        delete_segment(store, job_id, index).await?;
    }
    if let Some(owner) = owner_of(store, job_id).await? {
        let _: () = redis.hdel(lifecycle::usage_key(&owner), lifecycle::segments_field(job_id)).await?;
    }
    Ok(())
}

/// The owner of job `job_id`, from its record (`None`: the record is gone).
async fn owner_of(store: &dyn KeyValueBackend, job_id: &str) -> Result<Option<String>> {
    let Some(record) = store.get(&layout::job_key(job_id)).await? else { return Ok(None) };
    Ok(Some(job_model::Job::from_json(&record).with_context(|| format!("the record of job {job_id}"))?.owner))
}

/// Stores an encoded segment in pieces, from the first. Every writer of a segment writes the
/// same bytes (encoding is deterministic), so two that overlap (a reclaimed entry whose first
/// worker was only slow) leave whole pieces either way.
async fn store_segment(store: &dyn KeyValueBackend, job_id: &str, index: u32, blob: &[u8]) -> Result<()> {
    for piece in 0..pieces_of(blob.len() as u64) {
        let start = piece as usize * PIECE_BYTES;
        let bytes = &blob[start..blob.len().min(start + PIECE_BYTES)];
        store.set(&layout::segment_piece_key(job_id, index, piece), bytes).await?;
    }
    Ok(())
}

/// How many pieces a segment of `bytes` is stored in (an empty one too has one).
fn pieces_of(bytes: u64) -> u32 {
    bytes.div_ceil(PIECE_BYTES as u64).max(1) as u32
}

/// Deletes the first `pieces` pieces of a stored segment, last first: what is left of a
/// segment, by a writer that died or a deletion cut short, is then always its first pieces.
async fn delete_pieces(store: &dyn KeyValueBackend, job_id: &str, index: u32, pieces: u32) -> Result<()> {
    for piece in (0..pieces).rev() {
        store.delete(&layout::segment_piece_key(job_id, index, piece)).await?;
    }
    Ok(())
}

/// Deletes whatever is stored of a segment whose length is not known (its first pieces).
async fn delete_segment(store: &dyn KeyValueBackend, job_id: &str, index: u32) -> Result<()> {
    let mut pieces = 0;
    while store.exists(&layout::segment_piece_key(job_id, index, pieces)).await? {
        pieces += 1;
    }
    delete_pieces(store, job_id, index, pieces).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back() {
        for outcome in [
            Outcome::Encoded { received: 1_323_000, ended_early: false, bytes: 2_900_000 },
            Outcome::Encoded { received: 5, ended_early: true, bytes: 0 },
            Outcome::Failed("codec plugin \"mp3-lame\" failed: unreachable".into()),
        ] {
            assert_eq!(Outcome::from_field(&outcome.to_field()), outcome);
        }
        assert!(matches!(Outcome::from_field("nonsense"), Outcome::Failed(_)));
        // A record without the stored length cannot be read back whole: not a stored segment.
        assert!(matches!(Outcome::from_field("ok 1323000 0"), Outcome::Failed(_)));
    }

    /// Keys of a job's stored segment pieces.
    async fn pieces(redis: &mut ConnectionManager, job_id: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis.keys(format!("job:{job_id}:seg:*")).await.unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn a_segment_is_stored_in_pieces_taken_whole_and_nothing_stays() {
        let dir = tempfile::tempdir().unwrap();
        let server = redis_support::server::PrivateRedis::start(dir.path(), "segment-test").await.unwrap();
        let url = format!("redis://{}", server.host());
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut redis = ConnectionManager::new(client.clone()).await.unwrap();
        let store: Arc<dyn KeyValueBackend> = Arc::new(spin_host::interfaces::key_value::redis::RedisKeyValue::connect(&url).await.unwrap());
        let queue = SegmentQueue::new(client, redis.clone(), store.clone(), "test".into(), Duration::from_secs(60)).await.unwrap();
        let job = "0123456789abcdef0123456789abcdef";
        let blob: Vec<u8> = (0..2 * PIECE_BYTES as u32 + 1000).map(|i| (i % 251) as u8).collect();

        store_segment(store.as_ref(), job, 3, &blob).await.unwrap();
        let stored = pieces(&mut redis, job).await;
        assert_eq!(stored, [0, 1, 2].map(|p| layout::segment_piece_key(job, 3, p)), "three pieces, none larger than {PIECE_BYTES} bytes");
        let _: () = redis.hset(layout::segment_plan_key(job), 3, Outcome::Encoded { received: 1, ended_early: false, bytes: blob.len() as u64 }.to_field()).await.unwrap();
        // A length the store does not hold is an error, not a short segment.
        let wrong = queue.take(job, 3, blob.len() as u64 + 1).await.unwrap_err();
        assert!(format!("{wrong:#}").contains("bytes in the store, not"), "{wrong:#}");
        let absurd = queue.take(job, 3, u64::MAX / 2).await.unwrap_err();
        assert!(format!("{absurd:#}").contains("as its outcome says"), "{absurd:#}");
        assert_eq!(queue.take(job, 3, blob.len() as u64).await.unwrap(), blob);
        assert!(pieces(&mut redis, job).await.is_empty(), "taken: nothing stays");
        assert_eq!(queue.outcome(job, 3).await.unwrap(), None, "its outcome goes first");

        // An empty segment is one empty piece.
        store_segment(store.as_ref(), job, 0, &[]).await.unwrap();
        assert_eq!(queue.take(job, 0, 0).await.unwrap(), Vec::<u8>::new());

        // A writer that died after two pieces, and a whole segment: the clean-up finds both.
        store_segment(store.as_ref(), job, 1, &blob[..2 * PIECE_BYTES]).await.unwrap();
        store_segment(store.as_ref(), job, 2, &blob).await.unwrap();
        let _: () = redis.hset(layout::segment_plan_key(job), "count", 4).await.unwrap();
        assert_eq!(pieces(&mut redis, job).await.len(), 5);
        queue.forget(job).await.unwrap();
        assert!(pieces(&mut redis, job).await.is_empty(), "forgotten: nothing stays");
        let plans: Vec<String> = redis.keys("mp3edge:segments:*").await.unwrap();
        assert!(plans.is_empty(), "{plans:?}");
    }
}
