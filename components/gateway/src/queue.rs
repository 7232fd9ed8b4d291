//! Putting a job on the durable Redis queue (stream entry + wake-up publish), or an import on
//! the workers' import stream.

use job_model::JobMessage;
use job_model::layout::{IMPORT_STREAM, JOB_CHANNEL, JOB_STREAM, JOB_STREAM_FIELD};
use crate::accounts::describe;
use spin_sdk::redis::{Connection, RedisParameter};

/// Adds the job to the stream; the publish that follows is only a wake-up call, so its failure
/// is logged, not reported (the job is queued either way).
pub fn enqueue(redis_host: &str, job_id: &str) -> Result<(), String> {
    let redis = Connection::open(&format!("redis://{redis_host}")).map_err(describe)?;
    let message = JobMessage { job_id: job_id.to_string() }.to_json();
    let arguments = [JOB_STREAM.as_bytes(), b"*", JOB_STREAM_FIELD.as_bytes(), &message]
        .map(|arg| RedisParameter::Binary(arg.to_vec()));
    redis.execute("XADD", &arguments).map_err(describe)?;
    if let Err(e) = redis.publish(JOB_CHANNEL, &message) {
        eprintln!("job {job_id} queued but the wake-up publish failed: {}", describe(e));
    }
    Ok(())
}

/// Adds an import by URL to the workers' import stream (they also wake on the job channel).
pub fn enqueue_import(redis_host: &str, job_id: &str) -> Result<(), String> {
    let redis = Connection::open(&format!("redis://{redis_host}")).map_err(describe)?;
    let message = JobMessage { job_id: job_id.to_string() }.to_json();
    let arguments = [IMPORT_STREAM.as_bytes(), b"*", JOB_STREAM_FIELD.as_bytes(), &message]
        .map(|arg| RedisParameter::Binary(arg.to_vec()));
    redis.execute("XADD", &arguments).map_err(describe)?;
    if let Err(e) = redis.publish(JOB_CHANNEL, &message) {
        eprintln!("import {job_id} queued but the wake-up publish failed: {}", describe(e));
    }
    Ok(())
}
