//! `GET /jobs` and `GET /jobs/{id}`, and the visibility rule every job route uses: a caller sees
//! their own jobs (admins see all); anything else is a 404 so that ids do not leak.

use crate::Ctx;
use crate::accounts::Accounts;
use crate::chunks::open_store;
use crate::session::Caller;
use api_model::jobs::JobView;
use edge_spin::{ApiError, ApiResult, Head, Reply};
use job_model::lifecycle::{self, RetryClaim};
use job_model::{Job, JobStatus};
use job_model::layout::{is_valid_job_id, job_key};
use spin_sdk::key_value::Store;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

pub use api_model::jobs::{download_url, status_url};

/// `202 Accepted` for a job put on the queue: where to follow it and where its audio will be.
pub fn accepted(id: &str) -> Reply {
    Reply::json(202, &api_model::jobs::Accepted::new(id)).header("location", status_url(id)).for_log(None, Some(id))
}

/// The stored record (`None` if it is missing or unreadable).
pub fn read_job(store: &Store, id: &str) -> Result<Option<Job>, ApiError> {
    let Some(bytes) = store.get(&job_key(id)).map_err(|e| ApiError::internal("key-value store error", e))? else {
        return Ok(None);
    };
    Ok(Job::from_json(&bytes).inspect_err(|e| eprintln!("job {id} has an unreadable record: {e}")).ok())
}

/// The job `id` if the caller may see it, else 404.
pub fn visible_job(store: &Store, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    if !is_valid_job_id(id) {
        return Err(ApiError::not_found());
    }
    read_job(store, id)?.filter(|job| caller.admin || job.owner == caller.email).ok_or_else(ApiError::not_found)
}

/// The record as stored, plus the URLs of its status and download.
pub fn show(caller: &Caller, id: &str) -> ApiResult {
    Ok(Reply::json(200, &JobView::new(visible_job(&open_store()?, caller, id)?)))
}

pub fn list(ctx: &Ctx, caller: &Caller, head: &Head) -> ApiResult {
    let (limit, offset) = head.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let store = open_store()?;
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let mut jobs = Vec::new();
    for id in accounts.job_ids(&caller.email, offset, limit)? {
        if let Some(job) = read_job(&store, &id)? {
            jobs.push(JobView::new(job));
        }
    }
    Ok(Reply::json(200, &jobs))
}

/// `DELETE /jobs/{id}`: the job and everything it stored. A job in flight is cancelled: the
/// tombstone tells its worker to stop and remove what it wrote (within a few seconds).
///
/// The deletion is recorded first (the tombstone, naming the owner, and the job due on the
/// expiry schedule in a few seconds), then the chunks go, then the record, and only then what
/// Redis counts for it (its expiry entry among it). A failure at any step leaves the job on the
/// schedule with its tombstone, and the sweeper finishes the deletion.
pub fn delete(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult {
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    // Also for a finished job: a worker finishing it right now must not store it again.
    accounts.begin_delete(&job.id, &job.owner, ctx.now)?;
    let incomplete = |key: &str, e: spin_sdk::key_value::Error| {
        eprintln!("DELETE of job {}: could not delete {key}: {e:?}; the sweeper finishes it", job.id);
        ApiError::new(
            500,
            "delete incomplete",
            format!("job {} could not be deleted completely; what is left of it is removed within seconds", job.id),
        )
    };
    // From the last chunk down, so an interrupted delete leaves runs the sweeper can finish.
    for key in lifecycle::owned_keys(&job).into_iter().rev() {
        store.delete(&key).map_err(|e| incomplete(&key, e))?;
    }
    let key = job_key(&job.id);
    store.delete(&key).map_err(|e| incomplete(&key, e))?;
    accounts.forget(&job.id, &job.owner)?;
    Ok(Reply::empty(204))
}

/// `POST /jobs/{id}/retry`: a job that failed for good runs again from its kept source, with
/// the options of this request (any of [`crate::upload::OPTION_PARAMS`]) or else its old ones.
/// Parallel retries of one job read the same failed record; the run they would start is
/// claimed in Redis in one script, so exactly one is accepted and the others are a 409.
pub fn retry(ctx: &Ctx, caller: &Caller, head: &Head, id: &str) -> ApiResult {
    let store = open_store()?;
    let mut job = visible_job(&store, caller, id)?;
    let conflict = |status: JobStatus, detail: String| ApiError::new(409, "cannot retry", detail).field("status", status.as_str());
    if job.status != JobStatus::Failed {
        let detail = format!("only failed jobs can be retried; this one is {}", job.status.as_str());
        return Err(conflict(job.status, detail));
    }
    if job.source_freed {
        return Err(conflict(job.status, "the uploaded file of this job is no longer kept; upload it again".into()));
    }
    if job.source_unusable {
        let reason = job.error.as_deref().unwrap_or("the file cannot be read");
        return Err(conflict(job.status, format!("the file itself cannot be converted ({reason}); no retry can change that")));
    }
    let new_options = crate::upload::OPTION_PARAMS.iter().any(|name| head.query_param(name).is_some());
    let options = if new_options { Some(crate::upload::conversion_options(ctx, head)?) } else { None };
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let run = match accounts.claim_retry(&job.id, job.run)? {
        RetryClaim::Claimed(run) => run,
        RetryClaim::Taken => {
            let detail = format!("another retry of this job was accepted just now; follow it with GET /jobs/{}", job.id);
            return Err(conflict(JobStatus::Queued, detail));
        }
        RetryClaim::Deleted => return Err(ApiError::not_found()),
    };
    // If this retry does not go ahead, the record stays failed but of the claimed run, so
    // that the next retry claims the one after it.
    let mut before = job.clone();
    before.run = run;
    if let Some(options) = options {
        job.options = options;
    }
    job.run = run;
    job.status = JobStatus::Queued;
    job.progress = 0;
    job.attempts = 0;
    job.interrupted = 0;
    job.error = None;
    job.output = None;
    job.loudness = None;
    job.finished_at = None;
    job.expires_at = None;
    job.updated_at = ctx.now;
    // The record says `queued` before the job counts in flight, so that the in-flight clean-up
    // of a concurrent upload never takes it for a finished one.
    let key = job_key(&job.id);
    let restore = |store: &spin_sdk::key_value::Store| {
        if let Err(e) = store.set(&key, &before.to_json()) {
            eprintln!("could not restore job {}: {e:?}", before.id);
        }
    };
    if let Err(e) = store.set(&key, &job.to_json()) {
        restore(&store);
        return Err(crate::chunks::store_error("could not store the job", e));
    }
    if !accounts.readmit(&job.id, &job.owner, ctx.config.user_max_active_jobs).inspect_err(|_| restore(&store))? {
        restore(&store);
        return Err(ApiError::new(
            429,
            "too many jobs",
            format!("you already have {} jobs uploading, queued or converting", ctx.config.user_max_active_jobs),
        )
        .header("retry-after", "10"));
    }
    if let Err(e) = crate::queue::enqueue(&ctx.config.redis_host, &job.id) {
        eprintln!("could not enqueue the retry of {}: {e}", job.id);
        // Back to how it was: failed, out of flight (still on the expiry schedule).
        restore(&store);
        let _ = accounts.leave_flight(&job.id, &job.owner);
        return Err(ApiError::new(503, "queue unavailable", "could not put the job on the queue; try again later")
            .header("retry-after", "5"));
    }
    Ok(accepted(&job.id))
}
