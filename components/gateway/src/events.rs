//! `GET /jobs/{id}/events`: a job's status as Server-Sent Events, for a browser's
//! `EventSource` (which cannot send headers, hence `?access_token=` on this route).
//!
//! The first event carries the current state; then the record is read every
//! [`POLL_INTERVAL`] and an event is sent whenever its status or progress changed:
//! `event: <status>` with `data: {"job_id","status","progress","error"?,"download_url"?}`. The
//! stream ends after `done` or `failed`, after an `event: gone` if the record disappears, and
//! when the caller's token expires, with an `event: timeout` (the client may reconnect, with a
//! fresh token). Between polls the component sleeps on a WASI clock pollable, which costs it no
//! work: `mp3edge up` bounds a request by the work its component does, not by the time it is
//! open, so a stream follows a job however long it converts. A comment goes out every
//! [`PROBE`]: the write that fails once the client has left ends the stream within a second or
//! two.
//!
//! Each user holds at most `user_max_event_streams` streams at once (429 beyond): a stream is a
//! lease in the job queue's Redis, renewed while it runs and dropped when it ends, so a
//! component that stops without saying so frees its place when the lease runs out.

use crate::Ctx;
use crate::accounts::Accounts;
use crate::chunks::open_store;
use crate::jobs::{download_url, read_job, visible_job};
use crate::session::Caller;
use edge_http::sse::{self, Pacer, Step};
use edge_spin::{ApiError, ApiResult, Body, Reply, sleep, unix_now};
use futures::{Sink, SinkExt};
use job_model::{Job, JobStatus};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::Connection;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

/// How often the job record is read.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Longest silence before a `: keep-alive` comment; it doubles as the probe that notices a
/// client that left.
const PROBE: Duration = Duration::from_secs(1);
/// How long a stream's place is held without renewal.
const LEASE_SECS: u64 = 30;

/// A live stream of one job's status, ready to be sent.
pub struct JobEvents {
    store: Store,
    /// The users table, for who may still follow the job.
    db: Connection,
    caller: Caller,
    job: Job,
    /// The stream's place among its owner's (`None`: not counted).
    lease: Option<Lease>,
    /// How long it may run: until the caller's token expires.
    allowance: Duration,
}

/// A stream's place in its owner's count of open streams.
struct Lease {
    accounts: Accounts,
    owner: String,
    id: String,
}

impl Lease {
    fn renew(&self) {
        let now = unix_now();
        if let Err(e) = self.accounts.open_stream(&self.owner, &self.id, now, now + LEASE_SECS, 0) {
            eprintln!("could not renew event stream {}: {e:?}", self.id);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.accounts.close_stream(&self.owner, &self.id) {
            eprintln!("could not close event stream {}: {e:?}", self.id);
        }
    }
}

pub fn handle(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult {
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let mut bits = [0u8; 8];
    getrandom::fill(&mut bits).map_err(|e| ApiError::internal("no randomness available", e))?;
    let stream_id = format!("{:016x}", u64::from_le_bytes(bits));
    let limit = ctx.config.user_max_event_streams;
    if !accounts.open_stream(&caller.email, &stream_id, ctx.now, ctx.now + LEASE_SECS, limit)? {
        return Err(ApiError::new(
            429,
            "too many streams",
            format!("you already follow {limit} jobs live; close one (or poll GET /jobs/{{id}})"),
        )
        .header("retry-after", "5"));
    }
    let lease = Lease { accounts, owner: caller.email.clone(), id: stream_id };
    // An API token that never expires: the stream ends with the job (or the token's revocation).
    let allowance = Duration::from_secs(caller.expires_at().map_or(u64::MAX, |at| at.saturating_sub(ctx.now)));
    let db = crate::db::open()?;
    let events = JobEvents { store, db, caller: caller.clone(), job, lease: Some(lease), allowance };
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
        JobStatus::Uploading => data["received_bytes"] = job.received_bytes.unwrap_or(0).into(),
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
        let JobEvents { store, db, caller, job, lease, allowance } = self;
        let id = job.id.clone();
        let mut pacer = Pacer::new(monotonic_clock::now(), PROBE, allowance);
        let mut renewed = monotonic_clock::now();
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
            if let Some(lease) = &lease
                && monotonic_clock::now().saturating_sub(renewed) >= LEASE_SECS / 3 * 1_000_000_000
            {
                lease.renew();
                renewed = monotonic_clock::now();
            }
            if let Ok(false) = crate::session::still_sees(&caller, &db, &last.owner) {
                let revoked = serde_json::json!({
                    "job_id": id,
                    "error": "you may no longer follow this job: your account was deactivated or lost its rights, or your session or token ended",
                });
                if let Err(e) = sink.send(sse::event("revoked", None, &revoked.to_string()).into_bytes()).await {
                    eprintln!("event stream of job {id} ended: {e:?}");
                }
                break;
            }
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
