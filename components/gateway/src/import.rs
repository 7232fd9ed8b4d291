//! Import by URL: `POST /upload?url=https://…` (or a JSON body `{"url": "…"}`): a file that
//! already sits on a server (a meeting recording's share link, an object in a bucket) is
//! fetched by a worker, not uploaded again from the user's machine.
//!
//! The edge checks what it can without the network (an `http`/`https` URL with a host and no
//! credentials), records the job as `uploading` with its `source_url`, and puts it on the
//! import stream. A worker resolves the name, checks every address against the outbound rules
//! (public addresses only, unless `url_import_allowed_hosts` names the host), follows at most
//! five redirects (each checked again) and streams the body into the job's chunks under the
//! upload limit and the quota. The edge waits a few seconds for what the worker finds first
//! (`job_model::layout::ImportVerdict`), so a refused URL is a 400 at once and leaves nothing
//! behind, and a source over a limit a 413; a source that fails later (404, silence, not media)
//! fails the job with a readable reason, like an upload that cannot be converted.

use std::time::Duration;

use edge_spin::{ApiError, ApiResult, BodyStream, Head};
use futures::StreamExt;
use job_model::layout::{ImportVerdict, job_key};
use job_model::net::{self, ImportUrlError};
use job_model::{Job, JobStatus, StoredFile};

use crate::Ctx;
use crate::accounts::Accounts;
use crate::chunks::{open_store, store_error};
use crate::jobs::accepted;
use crate::session::Caller;
use crate::upload::{UploadGuard, admit, callback_url, conversion_options, new_job_id, queue_unavailable};

/// How long the edge waits for the worker's first finding before it answers 202 regardless.
const VERDICT_WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const VERDICT_POLL: Duration = Duration::from_millis(50);
/// Largest JSON body (`{"url": …}`).
const MAX_JSON_BYTES: usize = 8192;

fn not_allowed(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("url not allowed", detail)
}

/// The URL as it will be fetched, when it is one a worker may try (`job_model::net`).
pub fn check_url(raw: &str) -> Result<url::Url, ApiError> {
    net::check_import_url(raw).map_err(|e| match e {
        ImportUrlError::Invalid(detail) => ApiError::bad_request("invalid url", detail),
        ImportUrlError::NotAllowed(detail) => not_allowed(detail),
    })
}

/// The URL of a JSON body `{"url": "…"}`.
pub async fn url_from_json(body: &mut BodyStream) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(read) = body.next().await {
        bytes.extend(read.map_err(|e| crate::upload::read_error(e.to_debug_string()))?);
        if bytes.len() > MAX_JSON_BYTES {
            return Err(ApiError::new(413, "too large", format!("a JSON body of an import is at most {MAX_JSON_BYTES} bytes")));
        }
    }
    serde_json::from_slice::<api_model::jobs::ImportRequest>(&bytes)
        .map(|import| import.url)
        .map_err(|e| ApiError::bad_request("invalid json", format!("send {{\"url\": \"https://…\"}}: {e}")))
}

/// `POST /upload?url=`: records the import, hands it to a worker and answers with what the
/// worker finds first (see the module docs).
pub async fn handle(ctx: &Ctx, caller: &Caller, head: &Head, raw_url: &str) -> ApiResult {
    let url = check_url(raw_url)?;
    let options = conversion_options(ctx, head)?;
    let callback_url = callback_url(ctx, caller, head)?;
    let owner = caller.email.as_str();
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let store = open_store()?;
    let job_id = new_job_id()?;
    admit(ctx, &accounts, &store, &job_id, owner, ctx.now + ctx.config.upload_stale_secs)?;
    let mut guard = UploadGuard { accounts: &accounts, job_id: &job_id, owner, done: false };
    let chunk_size = ctx.config.chunk_size_bytes;
    let source = StoredFile { size: 0, chunks: 0, chunk_size, content_type: "application/octet-stream".into() };
    let job = Job {
        status: JobStatus::Uploading,
        received_bytes: Some(0),
        source_url: Some(url.to_string()),
        callback_url,
        policy: ctx.config.policy,
        ..Job::new(job_id.clone(), owner.to_string(), net::import_source_name(&url), source, options, ctx.now)
    };
    let key = job_key(&job_id);
    store.set(&key, &job.to_json()).map_err(|e| store_error("could not store the job", e))?;
    let forget_record = || {
        if let Err(e) = store.delete(&key) {
            eprintln!("could not delete {key}: {e:?}");
        }
    };
    if let Err(e) = crate::queue::enqueue_import(&ctx.config.redis_host, &job_id) {
        forget_record();
        return Err(queue_unavailable(e));
    }
    let refusal = match wait_for_verdict(&accounts, &job_id).await? {
        ImportVerdict::Refused(reason) => not_allowed(reason),
        ImportVerdict::TooLarge(reason) => ApiError::new(413, "too large", reason),
        ImportVerdict::OverQuota(reason) => ApiError::new(413, "quota_exceeded", reason),
        ImportVerdict::Fetching | ImportVerdict::Answered => {
            accounts.list_job(&job_id, owner, edge_spin::unix_now_millis())?;
            guard.done = true;
            return Ok(accepted(&job_id));
        }
    };
    // Refused before anything was stored: the record goes, and the guard undoes the accounting.
    forget_record();
    Err(refusal)
}


/// The worker's first finding, or `Answered` once the wait is over (then the edge says so
/// first, unless the worker did in between).
async fn wait_for_verdict(accounts: &Accounts, job_id: &str) -> Result<ImportVerdict, ApiError> {
    let started = wasi::clocks::monotonic_clock::now();
    loop {
        if let Some(verdict) = accounts.import_verdict(job_id)? {
            return Ok(verdict);
        }
        let waited = Duration::from_nanos(wasi::clocks::monotonic_clock::now().saturating_sub(started));
        if waited >= VERDICT_WAIT {
            if accounts.answer_import(job_id)? {
                return Ok(ImportVerdict::Answered);
            }
            // The worker's verdict came in between.
            return Ok(accounts.import_verdict(job_id)?.unwrap_or(ImportVerdict::Answered));
        }
        edge_spin::sleep(VERDICT_POLL).await;
    }
}
