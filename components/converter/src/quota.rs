//! The owner's storage quota as the output grows: the converter counts its output in the job
//! queue's Redis (`job_model::lifecycle`), the same account the gateway counts uploads in. A
//! converter run without a job queue (`redis_address` empty: `mp3edge convert`, one local file)
//! has no account to count in and no quota.

use job_model::lifecycle::{self, Reservation};
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

pub struct OutputQuota {
    /// None: no job queue, no quota.
    redis: Option<Connection>,
    usage_key: String,
    field: String,
    /// Bytes the owner may hold (0 = no quota).
    pub limit: u64,
}

fn text(s: &str) -> RedisParameter {
    RedisParameter::Binary(s.as_bytes().to_vec())
}

impl OutputQuota {
    pub fn open(owner: &str, job_id: &str, limit: u64) -> Result<OutputQuota, String> {
        let address = spin_sdk::variables::get("redis_address").map_err(|e| e.to_string())?;
        let redis = match address.is_empty() {
            true => None,
            false => Some(Connection::open(&address).map_err(|e| format!("job queue Redis: {e}"))?),
        };
        Ok(OutputQuota { redis, usage_key: lifecycle::usage_key(owner), field: lifecycle::output_field(job_id), limit })
    }

    /// Counts `bytes` as the job's output size, unless that takes the owner past the quota.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation, String> {
        let Some(redis) = &self.redis else {
            return Ok(Reservation::Granted { used: bytes });
        };
        let args = [
            text(lifecycle::RESERVE_SCRIPT),
            RedisParameter::Int64(1),
            text(&self.usage_key),
            text(&self.field),
            RedisParameter::Int64(i64::try_from(bytes).unwrap_or(i64::MAX)),
            RedisParameter::Int64(i64::try_from(self.limit).unwrap_or(i64::MAX)),
        ];
        match redis.execute("EVAL", &args).map_err(|e| format!("job queue Redis: {e}"))?.first() {
            Some(RedisResult::Int64(n)) => Ok(Reservation::from_reply(*n)),
            other => Err(format!("unexpected quota reply {other:?}")),
        }
    }
}
