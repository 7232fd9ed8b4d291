//! The converter: one job per Redis-trigger message.
//!
//! It reads the job record, marks it `converting`, asks the worker host to demux/decode the
//! stored upload (native FFmpeg, `mp3edge:worker/demux`), feeds the PCM to the codec plugin that
//! the job's format names (`mp3edge:worker/codecs`), writes the output to the key-value store in
//! chunks while recording progress, then marks the job `done` and publishes a completion
//! message. Input that cannot be converted fails the job for good with a readable reason;
//! anything that may be transient is reported to the host as a failed attempt, to be retried.
//! A job already `done` or `failed` is left alone, so a redelivered message never produces a
//! second output.

mod convert;
mod quota;
mod records;

wit_bindgen::generate!({
    path: "../../wit/worker",
    world: "mp3edge:worker/converter-imports",
    generate_all,
});

use job_model::Delivery;
use spin_sdk::redis_component;

#[redis_component]
fn handle_job(message: bytes::Bytes) -> anyhow::Result<()> {
    let delivery = Delivery::from_json(&message).map_err(|e| anyhow::anyhow!("malformed delivery: {e}"))?;
    records::run(&delivery)
}
