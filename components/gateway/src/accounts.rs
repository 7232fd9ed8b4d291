//! The edge's side of storage accounting (see `job_model::lifecycle`): admitting an upload
//! against the jobs-in-flight limit, reserving bytes against the quota, the owner's job index,
//! forgetting a deleted job and raising its cancellation tombstone, all in the job queue's
//! Redis through Spin's Redis interface.

use edge_spin::ApiError;
use job_model::layout::{self, ImportVerdict};
use job_model::lifecycle::{self, Reservation, RetryClaim, UploadReservation};
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

pub struct Accounts {
    redis: Connection,
}

/// A Redis error in words.
pub fn describe(e: Error) -> String {
    match e {
        Error::InvalidAddress => "invalid Redis address".into(),
        Error::TooManyConnections => "too many Redis connections".into(),
        Error::TypeError => "unexpected Redis reply type".into(),
        Error::Other(detail) => detail,
    }
}

/// Redis refuses writes when it is at `maxmemory` with `noeviction`: the service is full.
pub fn is_full(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    detail.contains("OOM ") || lower.contains("maxmemory") || lower.contains("is full") || lower.contains("no space left")
}

fn unavailable(e: Error) -> ApiError {
    let detail = describe(e);
    if is_full(&detail) {
        return ApiError::new(507, "storage full", "the service's storage is full; try again later");
    }
    eprintln!("job queue Redis: {detail}");
    ApiError::new(503, "queue unavailable", "the job queue is unreachable; try again later").header("retry-after", "5")
}

fn text(s: &str) -> RedisParameter {
    RedisParameter::Binary(s.as_bytes().to_vec())
}

fn int(n: u64) -> RedisParameter {
    RedisParameter::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Accounts {
    pub fn open(redis_host: &str) -> Result<Accounts, ApiError> {
        Connection::open(&format!("redis://{redis_host}")).map(|redis| Accounts { redis }).map_err(unavailable)
    }

    fn eval(&self, script: &str, keys: &[String], args: Vec<RedisParameter>) -> Result<Vec<RedisResult>, ApiError> {
        let mut params = vec![text(script), int(keys.len() as u64)];
        params.extend(keys.iter().map(|k| text(k)));
        params.extend(args);
        self.redis.execute("EVAL", &params).map_err(unavailable)
    }

    fn command(&self, command: &str, args: Vec<RedisParameter>) -> Result<Vec<RedisResult>, ApiError> {
        self.redis.execute(command, &args).map_err(unavailable)
    }

    /// Registers an upload in progress for `owner`; `false` when they already have `limit` jobs
    /// in flight (0 = no limit). `stale_at` is when the sweeper may treat it as abandoned.
    pub fn admit(&self, job_id: &str, owner: &str, limit: u32, stale_at: u64) -> Result<bool, ApiError> {
        self.admit_as(job_id, owner, limit, Some(stale_at))
    }

    fn admit_as(&self, job_id: &str, owner: &str, limit: u32, pending_until: Option<u64>) -> Result<bool, ApiError> {
        let pending_owner = if pending_until.is_some() { owner } else { "" };
        let keys = [
            lifecycle::active_key(owner),
            lifecycle::PENDING_UPLOADS.to_string(),
            lifecycle::PENDING_DEADLINES.to_string(),
            lifecycle::uploading_key(owner),
        ];
        let args = vec![
            text(job_id),
            int(limit.into()),
            text(pending_owner),
            int(pending_until.unwrap_or(0)),
            int(edge_spin::unix_now_millis()),
        ];
        let reply = self.eval(lifecycle::ADMIT_SCRIPT, &keys, args)?;
        Ok(matches!(reply.first(), Some(RedisResult::Int64(1))))
    }

    /// Moves an upload in progress's stale time on; a 408 when the sweeper already removed it
    /// as abandoned (no progress for `upload_stale_secs`).
    pub fn keep_alive(&self, job_id: &str, stale_at: u64) -> Result<(), ApiError> {
        if !self.is_pending(job_id)? {
            return Err(ApiError::new(408, "upload too slow", "the upload made no progress for too long and was dropped"));
        }
        let args = vec![text(lifecycle::PENDING_DEADLINES), text("XX"), int(stale_at), text(job_id)];
        self.command("ZADD", args).map(drop)
    }

    /// Sets the size counted for one of the owner's files, within `quota` (0 = none).
    pub fn reserve(&self, owner: &str, field: &str, bytes: u64, quota: u64) -> Result<Reservation, ApiError> {
        let reply =
            self.eval(lifecycle::RESERVE_SCRIPT, &[lifecycle::usage_key(owner)], vec![text(field), int(bytes), int(quota)])?;
        match reply.first() {
            Some(RedisResult::Int64(n)) => Ok(Reservation::from_reply(*n)),
            other => Err(ApiError::internal("unexpected quota reply", other)),
        }
    }

    /// Grows the size counted for an upload in progress whose final size is unknown, within
    /// `quota`; when there is no room, whether this upload gives way or waits for a later one
    /// (`job_model::lifecycle::UPLOAD_RESERVE_SCRIPT`).
    pub fn reserve_upload(&self, owner: &str, job_id: &str, bytes: u64, quota: u64) -> Result<UploadReservation, ApiError> {
        let keys = [lifecycle::usage_key(owner), lifecycle::uploading_key(owner)];
        let args = vec![text(&lifecycle::source_field(job_id)), int(bytes), int(quota), text(job_id)];
        let reply = self.eval(lifecycle::UPLOAD_RESERVE_SCRIPT, &keys, args)?;
        match reply.as_slice() {
            [RedisResult::Int64(status), RedisResult::Int64(total)] => UploadReservation::from_reply(*status, *total)
                .ok_or_else(|| ApiError::internal("unexpected quota reply", status)),
            other => Err(ApiError::internal("unexpected quota reply", other)),
        }
    }

    /// The upload became a stored, queued job: no longer pending, listed in the owner's index.
    pub fn settle_upload(&self, job_id: &str, owner: &str, created_ms: u64) -> Result<(), ApiError> {
        self.command("ZADD", vec![text(&lifecycle::index_key(owner)), int(created_ms), text(job_id)])?;
        self.command("HDEL", vec![text(lifecycle::PENDING_UPLOADS), text(job_id)])?;
        self.command("ZREM", vec![text(&lifecycle::uploading_key(owner)), text(job_id)])?;
        self.command("ZREM", vec![text(lifecycle::PENDING_DEADLINES), text(job_id)]).map(drop)
    }

    /// Lists a job in its owner's index (a resumable upload is listed while it uploads).
    pub fn list_job(&self, job_id: &str, owner: &str, created_ms: u64) -> Result<(), ApiError> {
        self.command("ZADD", vec![text(&lifecycle::index_key(owner)), int(created_ms), text(job_id)]).map(drop)
    }

    /// When an upload in progress counts as abandoned (Unix seconds), if it is pending.
    pub fn pending_until(&self, job_id: &str) -> Result<Option<u64>, ApiError> {
        let reply = self.command("ZSCORE", vec![text(lifecycle::PENDING_DEADLINES), text(job_id)])?;
        Ok(reply.first().and_then(result_text).and_then(|score| score.parse::<f64>().ok()).map(|s| s as u64))
    }

    /// Takes the lock of appends to an upload for `ms` milliseconds with `token`; `false` when
    /// another holds it.
    pub fn lock_upload(&self, job_id: &str, token: &str, ms: u64) -> Result<bool, ApiError> {
        let args = vec![text(&lifecycle::upload_lock_key(job_id)), text(token), text("NX"), text("PX"), int(ms)];
        Ok(matches!(self.command("SET", args)?.first(), Some(RedisResult::Status(s)) if s == "OK"))
    }

    /// Renews the lock `token` holds; 409 when it lapsed and another took it.
    pub fn renew_upload_lock(&self, job_id: &str, token: &str, ms: u64) -> Result<(), ApiError> {
        let reply = self.eval(lifecycle::RENEW_LOCK_SCRIPT, &[lifecycle::upload_lock_key(job_id)], vec![text(token), int(ms)])?;
        match reply.first() {
            Some(RedisResult::Int64(1)) => Ok(()),
            _ => Err(ApiError::new(409, "upload busy", "this request was too slow and another took the upload over")),
        }
    }

    pub fn unlock_upload(&self, job_id: &str, token: &str) -> Result<(), ApiError> {
        self.eval(lifecycle::UNLOCK_SCRIPT, &[lifecycle::upload_lock_key(job_id)], vec![text(token)]).map(drop)
    }

    /// What a worker found of the URL job `job_id` imports, if anything yet.
    pub fn import_verdict(&self, job_id: &str) -> Result<Option<ImportVerdict>, ApiError> {
        let reply = self.command("GET", vec![text(&layout::import_verdict_key(job_id))])?;
        Ok(reply.first().and_then(result_text).and_then(|text| ImportVerdict::parse(&text)))
    }

    /// Says the edge answered the import's request without a verdict; `false` when a worker's
    /// verdict came first (the two are set with `NX`, see `ImportVerdict`).
    pub fn answer_import(&self, job_id: &str) -> Result<bool, ApiError> {
        let args = vec![
            text(&layout::import_verdict_key(job_id)),
            text(&ImportVerdict::Answered.to_text()),
            text("NX"),
            text("EX"),
            int(lifecycle::IMPORT_VERDICT_SECS),
        ];
        Ok(matches!(self.command("SET", args)?.first(), Some(RedisResult::Status(s)) if s == "OK"))
    }

    /// Forgets everything counted for the job (usage, flight, index, expiry, pending).
    pub fn forget(&self, job_id: &str, owner: &str) -> Result<(), ApiError> {
        self.eval(lifecycle::FORGET_SCRIPT, &lifecycle::forget_keys(owner, job_id), vec![text(job_id)]).map(drop)
    }

    /// Claims the retry of run `failed_run` of a failed job, for this request alone.
    pub fn claim_retry(&self, job_id: &str, failed_run: u32) -> Result<RetryClaim, ApiError> {
        let keys = [lifecycle::run_key(job_id), lifecycle::cancelled_key(job_id)];
        match self.eval(lifecycle::CLAIM_RETRY_SCRIPT, &keys, vec![int(failed_run.into())])?.first() {
            Some(RedisResult::Int64(n)) => Ok(RetryClaim::from_reply(*n)),
            other => Err(ApiError::internal("unexpected retry claim reply", other)),
        }
    }

    /// Records a deletion before anything is deleted: the tombstone tells any worker holding
    /// the job to stop and remove what it wrote, and the job is due on the expiry schedule
    /// shortly, so the sweeper finishes whatever this deletion does not get to.
    pub fn begin_delete(&self, job_id: &str, owner: &str, now: u64) -> Result<(), ApiError> {
        let args = vec![text(owner), int(now + lifecycle::DELETE_GRACE_SECS), text(job_id), int(lifecycle::TOMBSTONE_SECS)];
        self.eval(lifecycle::BEGIN_DELETE_SCRIPT, &lifecycle::begin_delete_keys(job_id), args).map(drop)
    }

    /// The job goes back in flight (a retry), unless `owner` is at `limit` already.
    pub fn readmit(&self, job_id: &str, owner: &str, limit: u32) -> Result<bool, ApiError> {
        // The record of a retried job exists, so it is not a pending upload. It stays on the
        // expiry schedule: the sweeper leaves a job that is not final alone (and unschedules it),
        // and the job is scheduled anew when it ends.
        self.admit_as(job_id, owner, limit, None)
    }

    /// Ids of the jobs in flight that `owner` is counted for.
    pub fn in_flight(&self, owner: &str) -> Result<Vec<String>, ApiError> {
        Ok(self.command("SMEMBERS", vec![text(&lifecycle::active_key(owner))])?.iter().filter_map(result_text).collect())
    }

    /// Whether an upload is registered as in progress.
    pub fn is_pending(&self, job_id: &str) -> Result<bool, ApiError> {
        let reply = self.command("HEXISTS", vec![text(lifecycle::PENDING_UPLOADS), text(job_id)])?;
        Ok(matches!(reply.first(), Some(RedisResult::Int64(1))))
    }

    pub fn leave_flight(&self, job_id: &str, owner: &str) -> Result<(), ApiError> {
        self.command("SREM", vec![text(&lifecycle::active_key(owner)), text(job_id)]).map(drop)
    }

    /// Opens or renews the lease of one of `owner`'s event streams until `lease_end`; `false`
    /// when they already hold `limit` (0 = no limit).
    pub fn open_stream(&self, owner: &str, stream_id: &str, now: u64, lease_end: u64, limit: u32) -> Result<bool, ApiError> {
        let args = vec![int(now), int(lease_end), text(stream_id), int(limit.into())];
        let reply = self.eval(lifecycle::OPEN_STREAM_SCRIPT, &[lifecycle::streams_key(owner)], args)?;
        Ok(matches!(reply.first(), Some(RedisResult::Int64(1))))
    }

    pub fn close_stream(&self, owner: &str, stream_id: &str) -> Result<(), ApiError> {
        self.command("ZREM", vec![text(&lifecycle::streams_key(owner)), text(stream_id)]).map(drop)
    }

    /// The owner's job ids, newest first.
    pub fn job_ids(&self, owner: &str, offset: u32, limit: u32) -> Result<Vec<String>, ApiError> {
        let (start, stop) = (u64::from(offset), u64::from(offset) + u64::from(limit.max(1)) - 1);
        let args = vec![text(&lifecycle::index_key(owner)), int(start), int(stop)];
        Ok(self.command("ZREVRANGE", args)?.iter().filter_map(result_text).collect())
    }
}

fn result_text(value: &RedisResult) -> Option<String> {
    match value {
        RedisResult::Binary(bytes) => String::from_utf8(bytes.clone()).ok(),
        RedisResult::Status(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_stores_are_recognized() {
        assert!(is_full("OOM command not allowed when used memory > 'maxmemory'."));
        assert!(is_full("database or disk is full"));
        assert!(!is_full("connection refused"));
        assert!(!is_full("no room to start a codec plugin right now"));
    }
}
