//! Names shared by every process: key-value keys, Redis stream and channel names, chunk size.
//!
//! Keys are plain strings so that a Redis-backed key-value store (which Spin keeps with raw keys)
//! can be read by `redis-cli` or a second process without knowing anything about Spin.

/// Default size of one stored chunk (variable `chunk_size_bytes`). Spin caps a single key-value
/// read at 128 MiB and documents 1 MB values as the portable guarantee; 1 MiB keeps the memory
/// of every component small and gives streaming downloads a fine grain. The size a job was
/// stored with is recorded on it ([`crate::StoredFile::chunk_size`]), so old jobs still read.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Smallest and largest chunk sizes a store may be configured with.
pub const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<u64> = (16 << 10)..=(64 << 20);

/// Durable job queue (a Redis stream read by a consumer group of workers).
pub const JOB_STREAM: &str = "mp3edge:jobs";
/// Field of a [`JOB_STREAM`] entry that holds the [`crate::JobMessage`] JSON.
pub const JOB_STREAM_FIELD: &str = "job";
/// Consumer group the workers share.
pub const WORKER_GROUP: &str = "mp3edge-workers";
/// Jobs that failed too often end here.
pub const DEAD_LETTER_STREAM: &str = "mp3edge:jobs:dead";
/// Channel published on every new job, the way a Spin Redis trigger expects (a wake-up call;
/// the stream is the source of truth).
pub const JOB_CHANNEL: &str = "mp3edge.jobs";
/// Channel published when a job reaches a final state (for notifications).
pub const DONE_CHANNEL: &str = "mp3edge.done";

/// Key-value key where the worker publishes the formats its plugins provide (JSON list of
/// [`crate::FormatInfo`]), for the edge's `GET /formats` and upload checks.
pub const FORMATS_KEY: &str = "mp3edge:formats";

/// Key of the JSON job record.
pub fn job_key(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// Key of chunk `index` of the uploaded source.
pub fn source_chunk_key(job_id: &str, index: u32) -> String {
    format!("job:{job_id}:src:{index:06}")
}

/// Key of chunk `index` of the converted output.
pub fn output_chunk_key(job_id: &str, index: u32) -> String {
    format!("job:{job_id}:out:{index:06}")
}

/// Segments of long jobs, for any worker to encode (see the worker's `codecs::segment_queue`).
/// Imports by URL (`POST /upload?url=`) waiting for a worker to fetch them: the same message as
/// the job stream's, read by the consumer group [`IMPORT_GROUP`].
pub const IMPORT_STREAM: &str = "mp3edge:imports";
pub const IMPORT_GROUP: &str = "mp3edge-importers";

/// Where the worker says what it found of an import's URL, and the edge that is waiting to
/// answer the request reads it (see [`ImportVerdict`]).
pub fn import_verdict_key(job_id: &str) -> String {
    format!("mp3edge:import-verdict:{job_id}")
}

/// What a worker found of a URL to import, or that the edge answered without waiting longer.
/// Whoever sets it first (`SET NX`) decides: a verdict the edge reads in time becomes its answer
/// (a refusal is a 400 and nothing of the job stays); one that comes after the edge answered
/// 202 fails the job instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportVerdict {
    /// The source answered and its bytes are on their way.
    Fetching,
    /// The URL is not allowed (an internal address, a redirect to one, a bad scheme...).
    Refused(String),
    /// The source is larger than the upload limit (413).
    TooLarge(String),
    /// The source does not fit in the owner's quota (413 `quota_exceeded`).
    OverQuota(String),
    /// The edge answered 202 without a verdict (no worker answered in time).
    Answered,
}

impl ImportVerdict {
    pub fn to_text(&self) -> String {
        match self {
            ImportVerdict::Fetching => "fetching".into(),
            ImportVerdict::Refused(reason) => format!("refused {reason}"),
            ImportVerdict::TooLarge(reason) => format!("too-large {reason}"),
            ImportVerdict::OverQuota(reason) => format!("quota {reason}"),
            ImportVerdict::Answered => "answered".into(),
        }
    }

    pub fn parse(text: &str) -> Option<ImportVerdict> {
        let (kind, reason) = text.split_once(' ').unwrap_or((text, ""));
        Some(match kind {
            "fetching" => ImportVerdict::Fetching,
            "refused" => ImportVerdict::Refused(reason.to_string()),
            "too-large" => ImportVerdict::TooLarge(reason.to_string()),
            "quota" => ImportVerdict::OverQuota(reason.to_string()),
            "answered" => ImportVerdict::Answered,
            _ => return None,
        })
    }
}

pub const SEGMENT_STREAM: &str = "mp3edge:segments";
/// The field of a segment stream entry holding its task (JSON).
pub const SEGMENT_STREAM_FIELD: &str = "segment";
/// Consumer group of the workers on the segment stream.
pub const SEGMENT_GROUP: &str = "mp3edge-segment-workers";
/// The workers serving the segment queue, by when each last looked for work (sorted set,
/// score = Unix milliseconds): who may help with a job's segments.
pub const SEGMENT_WORKERS: &str = "mp3edge:segment-workers";

/// Redis hash of a job's segmented encode: `count` (segments planned) and, per segment index,
/// its outcome once encoded (`ok` or `error:` and the reason).
pub fn segment_plan_key(job_id: &str) -> String {
    format!("mp3edge:segments:{job_id}")
}

/// Key of piece `piece` of encoded segment `index` of a job, until the job's joiner takes it.
/// A segment is stored in pieces (see the worker's `codecs::segment_queue`), from piece 0 up.
pub fn segment_piece_key(job_id: &str, index: u32, piece: u32) -> String {
    format!("job:{job_id}:seg:{index:06}:{piece:04}")
}

/// A job id is 32 lowercase hex digits (128 random bits). Anything else is rejected before it
/// reaches a key, so a hostile id can never address another key.
pub fn is_valid_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Formats 128 random bits as a job id.
pub fn job_id_from_bits(bits: u128) -> String {
    format!("{bits:032x}")
}

/// Number of chunks of `chunk_size` bytes a file of `size` bytes occupies.
pub fn chunk_count(size: u64, chunk_size: u64) -> u32 {
    size.div_ceil(chunk_size.max(1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_sort_by_chunk_index() {
        let id = job_id_from_bits(0xdead_beef);
        assert_eq!(id, "000000000000000000000000deadbeef");
        assert_eq!(job_key(&id), format!("job:{id}"));
        assert!(source_chunk_key(&id, 2) < source_chunk_key(&id, 10));
        assert_eq!(output_chunk_key(&id, 7), format!("job:{id}:out:000007"));
    }

    #[test]
    fn job_ids_are_validated() {
        assert!(is_valid_job_id(&job_id_from_bits(u128::MAX)));
        assert!(!is_valid_job_id("../../etc/passwd"));
        assert!(!is_valid_job_id("0123456789ABCDEF0123456789ABCDEF"));
        assert!(!is_valid_job_id(""));
        assert!(!is_valid_job_id(&"a".repeat(33)));
    }

    #[test]
    fn chunk_counts() {
        let size = CHUNK_SIZE as u64;
        assert_eq!(chunk_count(0, size), 0);
        assert_eq!(chunk_count(1, size), 1);
        assert_eq!(chunk_count(size, size), 1);
        assert_eq!(chunk_count(size + 1, size), 2);
        assert_eq!(chunk_count(10, 3), 4);
    }

    #[test]
    fn import_verdicts_round_trip() {
        for verdict in [
            ImportVerdict::Fetching,
            ImportVerdict::Refused("127.0.0.1 is a loopback address".into()),
            ImportVerdict::TooLarge("3 GiB".into()),
            ImportVerdict::OverQuota("you hold 9 GiB".into()),
            ImportVerdict::Answered,
        ] {
            assert_eq!(ImportVerdict::parse(&verdict.to_text()), Some(verdict));
        }
        assert_eq!(ImportVerdict::parse("nonsense"), None);
    }
}
