//! How many bytes a user holds, read from the storage accounting the gateway and the worker
//! keep in the job queue's Redis (`job_model::lifecycle`).

use crate::redis::{Redis, text};
use edge_spin::ApiError;
use job_model::lifecycle;
use spin_sdk::redis::RedisResult;

pub fn used_bytes(redis: &Redis, email: &str) -> Result<u64, ApiError> {
    let values = redis.command("HVALS", vec![text(&lifecycle::usage_key(email))])?;
    Ok(values
        .iter()
        .filter_map(|value| match value {
            RedisResult::Int64(n) => u64::try_from(*n).ok(),
            RedisResult::Binary(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        })
        .sum())
}
