//! How many bytes a user holds, read from the storage accounting the gateway and the worker
//! keep in the job queue's Redis (`job_model::lifecycle`).

use edge_spin::ApiError;
use job_model::lifecycle;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

pub fn used_bytes(redis_host: &str, email: &str) -> Result<u64, ApiError> {
    let unavailable = |e: spin_sdk::redis::Error| {
        eprintln!("job queue Redis: {e}");
        ApiError::new(503, "storage accounting unavailable", "the job queue is unreachable; try again later")
            .header("retry-after", "5")
    };
    let redis = Connection::open(&format!("redis://{redis_host}")).map_err(unavailable)?;
    let key = RedisParameter::Binary(lifecycle::usage_key(email).into_bytes());
    let values = redis.execute("HVALS", &[key]).map_err(unavailable)?;
    Ok(values
        .iter()
        .filter_map(|value| match value {
            RedisResult::Int64(n) => u64::try_from(*n).ok(),
            RedisResult::Binary(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        })
        .sum())
}
