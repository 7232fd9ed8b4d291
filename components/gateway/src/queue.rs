//! Putting a job on the durable Redis queue (stream entry + wake-up publish), or an import on
//! the workers' import stream.

use job_model::JobMessage;
use job_model::layout::{IMPORT_STREAM, JOB_CHANNEL, JOB_STREAM, JOB_STREAM_FIELD};
use crate::accounts::describe;
use spin_sdk::redis::{Connection, RedisParameter};

/// Adds the job to the stream; the publish that follows is only a wake-up call, so its failure
/// is logged, not reported (the job is queued either way).
pub fn enqueue(redis_host: &str, job_id: &str) -> Result<(), String> {
    add_entry(redis_host, JOB_STREAM, job_id, "job")
}

/// Adds an import by URL to the workers' import stream (they also wake on the job channel).
pub fn enqueue_import(redis_host: &str, job_id: &str) -> Result<(), String> {
    add_entry(redis_host, IMPORT_STREAM, job_id, "import")
}

/// An entry naming `job_id` on `stream`, then the wake-up publish on the job channel (`what`
/// names the entry in the log line of a failed publish).
fn add_entry(redis_host: &str, stream: &str, job_id: &str, what: &str) -> Result<(), String> {
    let redis = Connection::open(&format!("redis://{redis_host}")).map_err(describe)?;
    let message = JobMessage { job_id: job_id.to_string() }.to_json();
    let arguments = [stream.as_bytes(), b"*", JOB_STREAM_FIELD.as_bytes(), &message]
        .map(|arg| RedisParameter::Binary(arg.to_vec()));
    redis.execute("XADD", &arguments).map_err(describe)?;
    if let Err(e) = redis.publish(JOB_CHANNEL, &message) {
        eprintln!("{what} {job_id} queued but the wake-up publish failed: {}", describe(e));
    }
    Ok(())
}
