//! `GET /jobs` and `GET /jobs/{id}`, and the visibility rule every job route uses: a caller sees
//! their own jobs (admins see all); anything else is a 404 so that ids do not leak.

use crate::Ctx;
use crate::chunks::open_store;
use crate::session::Caller;
use edge_spin::{ApiError, ApiResult, Head, Reply};
use job_model::Job;
use job_model::layout::{is_valid_job_id, job_key};
use spin_sdk::key_value::Store;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

pub fn status_url(id: &str) -> String {
    format!("/jobs/{id}")
}

pub fn download_url(id: &str) -> String {
    format!("/jobs/{id}/audio")
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
fn view(job: &Job) -> serde_json::Value {
    let mut value = serde_json::to_value(job).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("status_url".into(), status_url(&job.id).into());
        object.insert("download_url".into(), download_url(&job.id).into());
    }
    value
}

pub fn show(caller: &Caller, id: &str) -> ApiResult {
    Ok(Reply::json(200, &view(&visible_job(&open_store()?, caller, id)?)))
}

pub fn list(ctx: &Ctx, caller: &Caller, head: &Head) -> ApiResult {
    let limit = match head.query_param("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request("invalid limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
        })?,
    };
    let store = open_store()?;
    let mut jobs = Vec::new();
    for id in crate::db::job_ids(&ctx.db, &caller.email, limit)? {
        if let Some(job) = read_job(&store, &id)? {
            jobs.push(view(&job));
        }
    }
    Ok(Reply::json(200, &jobs))
}
