//! `GET /jobs/{id}/events`: a job's status as Server-Sent Events, for a browser's
//! `EventSource` (which cannot send headers, hence `?access_token=` on this route).
//!
//! The first event carries the current state; then the record is read every
//! [`POLL_INTERVAL`] and an event is sent whenever its status or progress changed:
//! `event: <status>` with `data: {"job_id","status","progress","error"?,"download_url"?}`. The
//! stream ends after `done` or `failed`, after an `event: gone` if the record disappears, and
//! after [`MAX_STREAM`] with an `event: timeout` (the client may reconnect). Between polls the
//! component sleeps on a WASI clock pollable; a failed write (the client left) ends it early.

use crate::chunks::open_store;
use crate::jobs::{download_url, read_job, visible_job};
use crate::session::Caller;
use edge_http::sse::{self, Pacer, Step};
use edge_spin::{ApiResult, Body, Reply, sleep};
use futures::{Sink, SinkExt};
use job_model::{Job, JobStatus};
use spin_sdk::key_value::Store;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

/// How often the job record is read.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Longest silence before a `: keep-alive` comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long one stream follows a job. Below `mp3edge up`'s default request deadline (600 s),
/// past which the host stops the component mid-stream, so the stream ends with a clean
/// `event: timeout` instead.
const MAX_STREAM: Duration = Duration::from_secs(9 * 60);

/// A live stream of one job's status, ready to be sent.
pub struct JobEvents {
    store: Store,
    job: Job,
}

pub fn handle(caller: &Caller, id: &str) -> ApiResult {
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    let events = JobEvents { store, job };
    Ok(Reply::new(200, Body::stream(|sink| events.stream(sink)))
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        // Asks reverse proxies (nginx and the like) not to buffer the stream.
        .header("x-accel-buffering", "no"))
}

/// The `data:` of an event about `job`.
fn payload(job: &Job) -> String {
    let mut data = serde_json::json!({
        "job_id": job.id,
        "status": job.status.as_str(),
        "progress": job.progress,
    });
    match job.status {
        JobStatus::Done => data["download_url"] = download_url(&job.id).into(),
        JobStatus::Failed => data["error"] = job.error.as_deref().unwrap_or("the conversion failed").into(),
        JobStatus::Queued | JobStatus::Converting => {}
    }
    if let Some(expires_at) = job.expires_at {
        data["expires_at"] = expires_at.into();
    }
    data.to_string()
}

impl JobEvents {
    /// Sends the events until the job ends, the time is up or the client goes away. The
    /// status line is already sent, so problems can only be logged.
    pub async fn stream<E: std::fmt::Debug>(self, sink: impl Sink<Vec<u8>, Error = E>) {
        let mut sink = std::pin::pin!(sink);
        let JobEvents { store, job } = self;
        let id = job.id.clone();
        let mut pacer = Pacer::new(monotonic_clock::now(), KEEP_ALIVE, MAX_STREAM);
        let mut last = job.clone();
        let mut current = Some(job);
        loop {
            let state = current.as_ref().map(|job| (job.status, job.progress));
            let (frame, end) = match pacer.step(monotonic_clock::now(), state) {
                Step::Send => {
                    last = current.take().unwrap_or(last);
                    (sse::event(last.status.as_str(), None, &payload(&last)), last.status.is_final())
                }
                Step::KeepAlive => (sse::comment("keep-alive"), false),
                Step::Timeout => (sse::event("timeout", None, &payload(&last)), true),
                Step::Wait => (String::new(), false),
            };
            if !frame.is_empty()
                && let Err(e) = sink.send(frame.into_bytes()).await
            {
                // The client went away: nothing more to do.
                return eprintln!("event stream of job {id} ended: {e:?}");
            }
            if end {
                break;
            }
            sleep(POLL_INTERVAL).await;
            current = match read_job(&store, &id) {
                Ok(Some(job)) => Some(job),
                Ok(None) => {
                    let gone = serde_json::json!({ "job_id": id, "error": "the job no longer exists" });
                    if let Err(e) = sink.send(sse::event("gone", None, &gone.to_string()).into_bytes()).await {
                        eprintln!("event stream of job {id} ended: {e:?}");
                    }
                    break;
                }
                // Logged by `read_job`; tried again at the next poll.
                Err(_) => None,
            };
        }
        if let Err(e) = sink.close().await {
            eprintln!("could not finish the event stream of job {id}: {e:?}");
        }
    }
}
