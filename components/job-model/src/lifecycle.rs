//! Where every stored byte of a job is accounted for, and how it ends (no I/O).
//!
//! The bytes a job holds live in the key-value store (its record, source and output chunks);
//! who holds how much lives in the job queue's Redis, which the edge (through Spin's Redis
//! interface) and the worker (natively) both reach:
//!
//! * `mp3edge:usage:<owner>`: a hash with one field per stored file (`<job>:src`, `<job>:out`)
//!   whose value is its size. Setting a field to an absolute size is idempotent, so a retried or
//!   repeated step can never count twice; a user's usage is the sum of the hash.
//! * `mp3edge:active:<owner>`: the ids of the user's jobs in flight (uploading, queued or
//!   converting), for `user_max_active_jobs`.
//! * `mp3edge:index:<owner>`: the user's jobs by creation time (milliseconds), for `GET /jobs`.
//! * `mp3edge:expiry`: finished jobs by the Unix second they expire at, for the sweeper.
//! * `mp3edge:uploads` + `mp3edge:uploads:deadline`: uploads in progress (job id → owner) and
//!   when each is stale, so that an upload whose component trapped or whose client vanished is
//!   cleaned up by the sweeper instead of leaving chunks behind.
//! * `mp3edge:uploading:<owner>`: the owner's uploads in progress by when they started
//!   (milliseconds), which decides who gives way when parallel uploads whose sizes are not
//!   announced fill the quota ([`UPLOAD_RESERVE_SCRIPT`]).
//! * `mp3edge:cancelled:<job>`: a tombstone with a TTL, set by `DELETE`, that tells a worker
//!   converting (or about to convert) the job to stop and remove what it wrote.
//! * `mp3edge:run:<job>`: the job's current run (absent: 0, the upload's), claimed by one
//!   retry at a time ([`CLAIM_RETRY_SCRIPT`]) and read by the worker before it frees, stores
//!   or records anything for a run.
//! * `mp3edge:dead:<job>`: the ids of the job's entries in the dead-letter stream
//!   (`mp3edge:jobs:dead`), so that they go with the job ([`DEAD_LETTER_SCRIPT`],
//!   [`FORGET_SCRIPT`]).
//! * `mp3edge:attempt:<job>`: `<run>:<attempt>` of the newest attempt started, so that two
//!   deliveries of one job that start together get different attempt numbers
//!   ([`CLAIM_ATTEMPT_SCRIPT`]) and only the newer one owns the record.
//!
//! The checks that must not race (quota, jobs in flight, sweeper claims) are Lua scripts run
//! with `EVAL`, atomic on the Redis server and usable through Spin's generic `execute`.

use crate::Job;
use crate::layout::{output_chunk_key, source_chunk_key};

/// Finished jobs by expiry time (sorted set, score = Unix seconds).
pub const EXPIRY_SET: &str = "mp3edge:expiry";
/// Uploads in progress: job id → owner (hash).
pub const PENDING_UPLOADS: &str = "mp3edge:uploads";
/// Uploads in progress by the Unix second after which they count as abandoned (sorted set).
pub const PENDING_DEADLINES: &str = "mp3edge:uploads:deadline";
/// How long a cancellation tombstone outlives the `DELETE` (longer than any redelivery delay).
pub const TOMBSTONE_SECS: u64 = 24 * 3600;
/// A `DELETE` puts the job on the expiry schedule this many seconds ahead before it deletes
/// anything, so that whatever it does not get to (a failed write, a component stopped
/// half-way) the sweeper finishes then; a `DELETE` that completes takes the entry off again.
pub const DELETE_GRACE_SECS: u64 = 5;

pub fn usage_key(owner: &str) -> String {
    format!("mp3edge:usage:{owner}")
}

pub fn active_key(owner: &str) -> String {
    format!("mp3edge:active:{owner}")
}

pub fn index_key(owner: &str) -> String {
    format!("mp3edge:index:{owner}")
}

pub fn uploading_key(owner: &str) -> String {
    format!("mp3edge:uploading:{owner}")
}

/// How long an import's verdict (`layout::import_verdict_key`) is kept: longer than the edge
/// waits for it.
pub const IMPORT_VERDICT_SECS: u64 = 300;

/// The lock one append to a resumable upload holds (its value is the holder's token).
pub fn upload_lock_key(job_id: &str) -> String {
    format!("mp3edge:upload-lock:{job_id}")
}

/// Renews a lock for `ARGV[2]` milliseconds if `ARGV[1]` still holds it. KEYS: the lock.
/// Returns 1 when renewed.
pub const RENEW_LOCK_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Releases a lock if `ARGV[1]` holds it. KEYS: the lock.
pub const UNLOCK_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub fn cancelled_key(job_id: &str) -> String {
    format!("{TOMBSTONE_PREFIX}{job_id}")
}

/// Records a `DELETE` before anything is deleted: the tombstone (whose value is the owner, so
/// the sweeper can finish the deletion after the record is gone) and the job on the expiry
/// schedule at `ARGV[2]`. KEYS: the tombstone, the expiry set. ARGV: owner, due at, job id,
/// tombstone lifetime.
pub const BEGIN_DELETE_SCRIPT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
return 1
"#;

/// The keys [`BEGIN_DELETE_SCRIPT`] takes, in order.
pub fn begin_delete_keys(job_id: &str) -> [String; 2] {
    [cancelled_key(job_id), EXPIRY_SET.to_string()]
}

/// Begins the deletion of every job of an owner (an administrator deleting the user), the way
/// [`BEGIN_DELETE_SCRIPT`] begins one: each job of the owner's index, in flight or uploading
/// gets its tombstone naming the owner and is due on the expiry schedule at `ARGV[2]`, so the
/// sweeper deletes it, its stored bytes and its accounting as it finishes any `DELETE`. KEYS:
/// the owner's index, jobs in flight, uploads in progress, the expiry set. ARGV: owner, due at,
/// tombstone lifetime, the tombstone key prefix. Returns how many jobs it began to delete.
pub const BEGIN_DELETE_OWNER_SCRIPT: &str = r#"
local seen = {}
local count = 0
local function begin(id)
  if not seen[id] then
    seen[id] = true
    count = count + 1
    redis.call('SET', ARGV[4] .. id, ARGV[1], 'EX', tonumber(ARGV[3]))
    redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), id)
  end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do begin(id) end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do begin(id) end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do begin(id) end
return count
"#;

/// The keys [`BEGIN_DELETE_OWNER_SCRIPT`] takes, in order.
pub fn begin_delete_owner_keys(owner: &str) -> [String; 4] {
    [index_key(owner), active_key(owner), uploading_key(owner), EXPIRY_SET.to_string()]
}

/// What every tombstone key starts with (the job id follows).
pub const TOMBSTONE_PREFIX: &str = "mp3edge:cancelled:";

/// The owner a tombstone names (tombstones of abandoned uploads hold `1`).
pub fn tombstone_owner(value: &str) -> Option<&str> {
    value.contains('@').then_some(value)
}

pub fn dead_letters_key(job_id: &str) -> String {
    format!("mp3edge:dead:{job_id}")
}

/// Moves a queue entry to the dead-letter stream (keeping its newest ten thousand entries)
/// and, for a job's entry, notes the dead letter's id with the job so that it goes with it.
/// KEYS: the dead-letter stream, the job's dead letters (any key when there is no job).
/// ARGV: entry id, job id or empty, reason. Returns the dead letter's id.
pub const DEAD_LETTER_SCRIPT: &str = r#"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 10000, '*', 'entry', ARGV[1], 'job_id', ARGV[2], 'reason', ARGV[3])
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[2], id)
end
return id
"#;

pub fn run_key(job_id: &str) -> String {
    format!("mp3edge:run:{job_id}")
}

/// Claims the retry of a failed job: moves its run from `ARGV[1]` (the run its record says
/// failed) to the next, unless another retry already did (the run is past it) or the job is
/// being deleted. Parallel retries of one job read the same record, and exactly one of them
/// gets the new run. KEYS: the run key, the cancellation tombstone. ARGV: the record's run.
/// Returns the new run, 0 when another retry claimed it first, -1 when the job is deleted.
pub const CLAIM_RETRY_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local failed = tonumber(ARGV[1])
if current > failed then
  return 0
end
redis.call('SET', KEYS[1], failed + 1)
return failed + 1
"#;

pub fn attempt_key(job_id: &str) -> String {
    format!("mp3edge:attempt:{job_id}")
}

/// Numbers a new attempt at run `ARGV[1]` of a job whose record counts `ARGV[2]` attempts:
/// one more than the record's, and than any attempt of the same run already started (two
/// deliveries that loaded the same record get different numbers). KEYS: the attempt key.
/// Returns the attempt's number.
pub const CLAIM_ATTEMPT_SCRIPT: &str = r#"
local next = tonumber(ARGV[2]) + 1
local stored = redis.call('GET', KEYS[1])
if stored then
  local run, attempt = string.match(stored, '^(%d+):(%d+)$')
  if run == ARGV[1] and tonumber(attempt) >= next then
    next = tonumber(attempt) + 1
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. next)
return next
"#;

/// What [`CLAIM_RETRY_SCRIPT`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClaim {
    /// This retry is run `n`.
    Claimed(u32),
    /// Another retry of the same failed run was accepted first.
    Taken,
    /// The job is being deleted.
    Deleted,
}

impl RetryClaim {
    pub fn from_reply(reply: i64) -> RetryClaim {
        match reply {
            n if n > 0 => RetryClaim::Claimed(u32::try_from(n).unwrap_or(u32::MAX)),
            0 => RetryClaim::Taken,
            _ => RetryClaim::Deleted,
        }
    }
}

/// Usage field of a job's stored source.
pub fn source_field(job_id: &str) -> String {
    format!("{job_id}:src")
}

/// Usage field of a job's stored output.
pub fn output_field(job_id: &str) -> String {
    format!("{job_id}:out")
}

/// Usage field of a job's encoded segments waiting in the store to be joined (a long job on
/// the shared segment queue): counted from when a worker stores one until its job's worker
/// takes it, so they are never stored outside the owner's quota.
pub fn segments_field(job_id: &str) -> String {
    format!("{job_id}:seg")
}

/// Sets one usage field to `ARGV[2]` bytes unless that would take the user past `ARGV[3]`
/// bytes in all (0 = no quota); shrinking is always allowed.
/// KEYS: usage hash. ARGV: field, bytes, quota.
/// Returns the user's new total, or `-1 - total` (the unchanged total) when refused.
pub const RESERVE_SCRIPT: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
local wanted = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
if quota > 0 and wanted > current and total - current + wanted > quota then
  return -1 - total
end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
return total - current + wanted
"#;

/// What [`RESERVE_SCRIPT`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Recorded; the user now holds `used` bytes.
    Granted { used: u64 },
    /// Refused; the user holds `used` bytes.
    Refused { used: u64 },
}

impl Reservation {
    pub fn from_reply(reply: i64) -> Reservation {
        if reply >= 0 { Reservation::Granted { used: reply as u64 } } else { Reservation::Refused { used: (-1 - reply) as u64 } }
    }
}

/// Puts a job in flight unless the owner already has `ARGV[2]` jobs in flight (0 = no limit);
/// for a new upload (`ARGV[3]` = the owner, not empty) also registers it as in progress until
/// `ARGV[4]`, started at `ARGV[5]` (milliseconds). KEYS: active set, pending hash, pending
/// deadlines, the owner's uploads in progress. ARGV: job id, limit, owner or empty, deadline,
/// start. Returns 1 when admitted, 0 when at the limit.
pub const ADMIT_SCRIPT: &str = r#"
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('SCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
end
return 1
"#;

/// Grows the size counted for an upload in progress whose final size is not known (no
/// `Content-Length`, or multipart framing): like [`RESERVE_SCRIPT`], and when the quota has
/// no room, says who gives way. Growing side by side, parallel uploads reach the quota together
/// and, refused together, would all fail though some fit; instead the owner's upload that
/// started last gives way (`refused`, it ends with 413 and frees what it held) and every
/// earlier one `waits` for room, which that refusal, or a later upload's end, makes. So they
/// finish in the order they started, as many as fit.
/// KEYS: usage hash, the owner's uploads in progress. ARGV: field, bytes, quota, job id.
/// Returns `{0, total}` granted, `{1, total}` refused, `{2, total}` wait; `total` is what the
/// owner holds afterwards.
pub const UPLOAD_RESERVE_SCRIPT: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
local wanted = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
if quota == 0 or wanted <= current or total - current + wanted <= quota then
  redis.call('HSET', KEYS[1], ARGV[1], wanted)
  return {0, total - current + wanted}
end
local last = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
if last == nil or last == ARGV[4] then
  return {1, total}
end
return {2, total}
"#;

/// What [`UPLOAD_RESERVE_SCRIPT`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadReservation {
    /// Counted; the owner now holds `used` bytes.
    Granted { used: u64 },
    /// No room, and this is the owner's latest upload in progress: it gives way.
    Refused { used: u64 },
    /// No room yet: a later upload of the owner's gives way or ends first.
    Wait { used: u64 },
}

impl UploadReservation {
    pub fn from_reply(status: i64, total: i64) -> Option<UploadReservation> {
        let used = u64::try_from(total).unwrap_or(0);
        match status {
            0 => Some(UploadReservation::Granted { used }),
            1 => Some(UploadReservation::Refused { used }),
            2 => Some(UploadReservation::Wait { used }),
            _ => None,
        }
    }
}

/// Forgets everything Redis knows of a job's storage: its usage fields, its place among the
/// jobs in flight, the owner's index, the expiry schedule, the pending uploads, its run, its
/// attempts, its dead letters and its place among the owner's uploads in progress.
/// Idempotent. KEYS: usage hash, active set, index, expiry set, pending hash, pending
/// deadlines, run key, attempt key, dead-letter stream, the job's dead letters, the owner's
/// uploads in progress. ARGV: job id.
pub const FORGET_SCRIPT: &str = r#"
redis.call('HDEL', KEYS[1], ARGV[1] .. ':src', ARGV[1] .. ':out', ARGV[1] .. ':seg')
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('DEL', KEYS[7], KEYS[8])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[10])) do
  redis.call('XDEL', KEYS[9], id)
end
redis.call('DEL', KEYS[10])
redis.call('ZREM', KEYS[11], ARGV[1])
return 1
"#;

/// The keys [`FORGET_SCRIPT`] takes, in order.
pub fn forget_keys(owner: &str, job_id: &str) -> [String; 11] {
    [
        usage_key(owner),
        active_key(owner),
        index_key(owner),
        EXPIRY_SET.to_string(),
        PENDING_UPLOADS.to_string(),
        PENDING_DEADLINES.to_string(),
        run_key(job_id),
        attempt_key(job_id),
        crate::layout::DEAD_LETTER_STREAM.to_string(),
        dead_letters_key(job_id),
        uploading_key(owner),
    ]
}

/// Claims up to `ARGV[3]` members of a schedule whose time has come (score ≤ `ARGV[1]`) by
/// moving them to `ARGV[2]`, the end of this claimer's lease: two sweepers never claim the same
/// member, and a member whose sweeper died comes due again when the lease ends.
/// KEYS: the sorted set. Returns the claimed members.
pub const CLAIM_DUE_SCRIPT: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"#;

/// A user's open event streams (sorted set: stream id → Unix second its lease ends).
pub fn streams_key(owner: &str) -> String {
    format!("mp3edge:streams:{owner}")
}

/// Opens (or renews) an event stream's lease unless the user already holds `ARGV[4]` live
/// streams (0 = no limit); leases that ended (a component that stopped without saying so) are
/// dropped first. KEYS: the user's streams. ARGV: now, lease end, stream id, limit.
/// Returns 1 when opened, 0 at the limit.
pub const OPEN_STREAM_SCRIPT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) - tonumber(ARGV[1]) + 60)
return 1
"#;

/// The key-value keys a job's record says it holds: source chunks (unless freed) and output
/// chunks. A conversion in progress may hold output chunks the record does not list yet; the
/// worker removes those itself.
pub fn owned_keys(job: &Job) -> Vec<String> {
    let mut keys = Vec::new();
    if !job.source_freed {
        keys.extend((0..job.source.chunks).map(|n| source_chunk_key(&job.id, n)));
    }
    if let Some(output) = &job.output {
        keys.extend((0..output.file.chunks).map(|n| output_chunk_key(&job.id, n)));
    }
    keys
}

/// Bytes as people read them: `1.5 GiB`, `20 MiB`, `512 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{} {}", text.strip_suffix(".0").unwrap_or(&text), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_decode() {
        assert_eq!(Reservation::from_reply(0), Reservation::Granted { used: 0 });
        assert_eq!(Reservation::from_reply(42), Reservation::Granted { used: 42 });
        assert_eq!(Reservation::from_reply(-1), Reservation::Refused { used: 0 });
        assert_eq!(Reservation::from_reply(-43), Reservation::Refused { used: 42 });
    }

    #[test]
    fn upload_reservations_decode() {
        assert_eq!(UploadReservation::from_reply(0, 42), Some(UploadReservation::Granted { used: 42 }));
        assert_eq!(UploadReservation::from_reply(1, 42), Some(UploadReservation::Refused { used: 42 }));
        assert_eq!(UploadReservation::from_reply(2, 7), Some(UploadReservation::Wait { used: 7 }));
        assert_eq!(UploadReservation::from_reply(3, 7), None);
    }

    #[test]
    fn retry_claims_decode() {
        assert_eq!(RetryClaim::from_reply(1), RetryClaim::Claimed(1));
        assert_eq!(RetryClaim::from_reply(7), RetryClaim::Claimed(7));
        assert_eq!(RetryClaim::from_reply(0), RetryClaim::Taken);
        assert_eq!(RetryClaim::from_reply(-1), RetryClaim::Deleted);
    }

    #[test]
    fn keys_name_their_owner_and_job() {
        assert_eq!(usage_key("a@b.c"), "mp3edge:usage:a@b.c");
        assert_eq!(source_field("x"), "x:src");
        assert_eq!(output_field("x"), "x:out");
        assert_eq!(forget_keys("o", "x")[0], usage_key("o"));
        assert_eq!(forget_keys("o", "x")[6], run_key("x"));
        assert_eq!(forget_keys("o", "x")[9], dead_letters_key("x"));
        assert_eq!(tombstone_owner("a@example.com"), Some("a@example.com"));
        assert_eq!(tombstone_owner("1"), None);
        assert!(FORGET_SCRIPT.contains("':src'") && FORGET_SCRIPT.contains("':out'") && FORGET_SCRIPT.contains("':seg'"));
        assert_eq!(segments_field("x"), "x:seg");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 30), "10 GiB");
        assert_eq!(human_bytes(3 << 20), "3 MiB");
    }
}
