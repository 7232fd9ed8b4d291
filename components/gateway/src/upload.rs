//! `POST /upload`: streams a multipart or raw upload into key-value chunks, records the job and
//! puts it on the queue.

use crate::accounts::Accounts;
use crate::chunks::{ChunkWriter, QuotaGuard, open_store, store_error, too_large};
use crate::jobs::{accepted, read_job};
use crate::session::Caller;
use crate::{Ctx, db, queue};
use bytes::Bytes;
use edge_spin::{ApiError, ApiResult, BodyStream, Head, media_type};
use futures::{Stream, StreamExt};
use spin_sdk::key_value::Store;
use job_model::layout::{job_id_from_bits, job_key};
use job_model::naming::{is_valid_format_name, sanitize_source_name};
use job_model::{ConversionOptions, Job, StoredFile, options};
use std::pin::Pin;
use std::task::{Context, Poll};

const DEFAULT_FORMAT: &str = "mp3";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Room for multipart boundaries, part headers and small text fields beyond the file itself.
const MULTIPART_OVERHEAD: u64 = 1 << 20;

/// How the body carries the file.
#[derive(Debug, PartialEq)]
enum BodyMode {
    Multipart { boundary: String },
    Raw { source_name: String, content_type: String },
}

fn body_mode(content_type: Option<&str>, filename: Option<String>) -> Result<BodyMode, ApiError> {
    let unsupported = || {
        ApiError::new(
            415,
            "unsupported media type",
            "send multipart/form-data, or a video/*, audio/* or application/octet-stream body with ?filename=",
        )
    };
    let content_type = content_type.filter(|c| !c.trim().is_empty()).ok_or_else(unsupported)?;
    let media = media_type(content_type);
    if media == "multipart/form-data" {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|_| ApiError::bad_request("malformed multipart", "the Content-Type has no usable boundary"))?;
        return Ok(BodyMode::Multipart { boundary });
    }
    if !(media.starts_with("video/") || media.starts_with("audio/") || media == DEFAULT_CONTENT_TYPE) {
        return Err(unsupported());
    }
    let filename =
        filename.ok_or_else(|| ApiError::bad_request("missing filename", "a raw upload needs ?filename="))?;
    Ok(BodyMode::Raw { source_name: sanitize_source_name(&filename), content_type: media })
}

/// The query parameters that set conversion options; a retry with any of them replaces the
/// job's options.
pub use job_model::options::OPTION_PARAMS;

/// Where an upload's options come from: the query of `POST /upload` (and of a retry), or the
/// `Upload-Metadata` of a resumable upload (`POST /uploads`).
pub trait Params {
    fn param(&self, name: &str) -> Option<String>;
}

impl Params for Head {
    fn param(&self, name: &str) -> Option<String> {
        self.query_param(name)
    }
}

impl Params for std::collections::BTreeMap<String, String> {
    fn param(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The conversion options of an upload (or a retry): `?format=`, `?bitrate=`, `?vbr=`,
/// `?level=`, the audio options (`start`, `end`, `rate`, `channels`, `track`, `normalize`,
/// `true_peak`) and the tag and cover overrides (`title`, `artist`, `album`, `cover`).
pub fn conversion_options(ctx: &Ctx, head: &dyn Params) -> Result<ConversionOptions, ApiError> {
    let format = head.param("format").map_or_else(|| DEFAULT_FORMAT.to_string(), |f| f.to_ascii_lowercase());
    let formats = crate::formats::available(&ctx.config)?;
    let Some(info) = formats.iter().find(|f| f.format == format).filter(|_| is_valid_format_name(&format)) else {
        let names: Vec<&str> = formats.iter().map(|f| f.format.as_str()).collect();
        return Err(ApiError::bad_request("unsupported format", format!("format must be one of: {}", names.join(", "))));
    };
    let options = options::from_params(format, &|name| head.param(name)).map_err(|r| ApiError::bad_request(r.error, r.detail))?;
    info.check_options(&options).map_err(|detail| ApiError::bad_request("unsupported option", detail))?;
    Ok(options)
}

pub(crate) fn read_error(e: impl std::fmt::Display) -> ApiError {
    let e = e.to_string();
    // The host ends a body that stays silent too long with a read timeout.
    if e.to_ascii_lowercase().contains("timeout") {
        return ApiError::new(408, "request timeout", "the upload was sent too slowly or stopped; send it again");
    }
    ApiError::bad_request("incomplete body", format!("could not read the request body: {e}"))
}

/// The request body as `Bytes`, yielding to the executor after every read. `multer` pulls from
/// its stream until it is pending, so without this it could buffer a whole fast upload; with it,
/// it holds one read at a time.
struct OneAtATime<S> {
    inner: S,
    just_read: bool,
}

impl<S: Stream<Item = Result<Vec<u8>, wasi::io::error::Error>> + Unpin> Stream for OneAtATime<S> {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if std::mem::take(&mut self.just_read) {
            // An already-ready pollable: the executor polls again right away.
            let ready = wasi::clocks::monotonic_clock::subscribe_duration(0);
            spin_executor::push_waker(ready, cx.waker().clone());
            return Poll::Pending;
        }
        let item = self.inner.poll_next_unpin(cx);
        self.just_read = matches!(item, Poll::Ready(Some(Ok(_))));
        item.map(|item| item.map(|read| read.map(Bytes::from).map_err(|e| std::io::Error::other(e.to_debug_string()))))
    }
}

/// Streams the single file part of a multipart body into `writer`; returns its name and type.
async fn receive_multipart(
    body: &mut BodyStream,
    boundary: String,
    writer: &mut ChunkWriter<'_>,
    max: u64,
) -> Result<(String, String), ApiError> {
    let malformed = |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(max),
        multer::Error::StreamReadFailed(e) => read_error(e),
        e => ApiError::bad_request("malformed multipart", e.to_string()),
    };
    let body = OneAtATime { inner: body, just_read: false };
    let limits = multer::SizeLimit::new().whole_stream(max.saturating_add(MULTIPART_OVERHEAD));
    let mut multipart =
        multer::Multipart::with_constraints(body, boundary, multer::Constraints::new().size_limit(limits));
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let Some(name) = field.file_name() else { continue }; // text fields are ignored
        if file.is_some() {
            return Err(ApiError::bad_request("exactly one file", "the multipart body has more than one file part"));
        }
        let content_type = field.content_type().map_or(DEFAULT_CONTENT_TYPE.to_string(), ToString::to_string);
        file = Some((sanitize_source_name(name), content_type));
        while let Some(bytes) = field.chunk().await.map_err(malformed)? {
            writer.write(&bytes)?;
        }
    }
    file.ok_or_else(|| ApiError::bad_request("exactly one file", "the multipart body has no file part"))
}

async fn receive_raw(body: &mut BodyStream, writer: &mut ChunkWriter<'_>) -> Result<(), ApiError> {
    while let Some(read) = body.next().await {
        writer.write(&read.map_err(|e| read_error(e.to_debug_string()))?)?;
    }
    Ok(())
}

pub(crate) fn new_job_id() -> Result<String, ApiError> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).map_err(|e| ApiError::internal("no randomness available", e))?;
    Ok(job_id_from_bits(u128::from_le_bytes(bits)))
}

/// The `callback` webhook, else the caller's default one (`PUT /users/me`), checked against
/// the SSRF rules before anything is read (the allow-list may have changed since).
pub fn callback_url(ctx: &Ctx, caller: &Caller, params: &dyn Params) -> Result<Option<String>, ApiError> {
    let given = params.param("callback").filter(|url| !url.trim().is_empty());
    let Some(url) = given.map_or_else(|| db::default_callback(&ctx.db, &caller.email), |url| Ok(Some(url)))? else {
        return Ok(None);
    };
    job_model::net::check_callback(&url, &ctx.config.webhook_allowed_hosts)
        .map_err(|reason| ApiError::bad_request("invalid callback", reason))?;
    Ok(Some(url))
}

/// Undoes what an upload counted in Redis (usage, flight, pending entry) unless it succeeded.
/// Declared before the [`ChunkWriter`], so it runs after the writer has deleted its chunks.
pub(crate) struct UploadGuard<'a> {
    pub accounts: &'a Accounts,
    pub job_id: &'a str,
    pub owner: &'a str,
    pub done: bool,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.accounts.forget(self.job_id, self.owner)
        {
            // The pending entry stays; the worker's sweeper finishes the cleanup.
            eprintln!("upload {}: could not undo its accounting: {e:?}", self.job_id);
        }
    }
}

/// Admits a new upload against the owner's jobs-in-flight limit, as in progress until
/// `stale_at` (Unix seconds) unless it says it is alive. At the limit, jobs counted in flight
/// that have ended (a worker stopped before it could say so) are dropped first.
pub(crate) fn admit(ctx: &Ctx, accounts: &Accounts, store: &Store, job_id: &str, owner: &str, stale_at: u64) -> Result<(), ApiError> {
    let limit = ctx.config.user_max_active_jobs;
    if accounts.admit(job_id, owner, limit, stale_at)? {
        return Ok(());
    }
    for id in accounts.in_flight(owner)? {
        let ended = match read_job(store, &id)? {
            Some(job) => job.status.is_final(),
            None => !accounts.is_pending(&id)?,
        };
        if ended {
            accounts.leave_flight(&id, owner)?;
        }
    }
    if accounts.admit(job_id, owner, limit, stale_at)? {
        return Ok(());
    }
    Err(ApiError::new(
        429,
        "too many jobs",
        format!("you already have {limit} jobs uploading, queued or converting; wait for one to finish"),
    )
    .header("retry-after", "10"))
}

pub async fn handle(ctx: &Ctx, caller: &Caller, head: &Head, body: &mut BodyStream) -> ApiResult {
    // An import by URL: `?url=`, or a JSON body `{"url": …}`.
    if let Some(url) = head.query_param("url") {
        return crate::import::handle(ctx, caller, head, &url).await;
    }
    if head.header("content-type").map(media_type).as_deref() == Some("application/json") {
        let url = crate::import::url_from_json(body).await?;
        return crate::import::handle(ctx, caller, head, &url).await;
    }
    let callback_url = callback_url(ctx, caller, head)?;
    let options = conversion_options(ctx, head)?;
    let max = ctx.config.max_upload_bytes;
    let mode = body_mode(head.header("content-type"), head.query_param("filename"))?;
    // Refused from the headers alone when even the announced body is too large (a multipart body
    // may exceed the file by its framing; the file itself is held to `max` while streaming).
    let overhead = match mode {
        BodyMode::Multipart { .. } => MULTIPART_OVERHEAD,
        BodyMode::Raw { .. } => 0,
    };
    let announced = head.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > max.saturating_add(overhead)) {
        return Err(too_large(max));
    }

    let owner = caller.email.as_str();
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let store = open_store()?;
    let job_id = new_job_id()?;
    admit(ctx, &accounts, &store, &job_id, owner, ctx.now + ctx.config.upload_stale_secs)?;
    let mut guard = UploadGuard { accounts: &accounts, job_id: &job_id, owner, done: false };
    let mut quota = QuotaGuard {
        accounts: &accounts,
        owner,
        job_id: &job_id,
        quota: ctx.config.user_quota_bytes,
        reserved: 0,
        stale_secs: ctx.config.upload_stale_secs,
        alive_at: ctx.now,
    };
    // The announced size is held to the quota before the body is read.
    if let Some(len) = announced {
        quota.announce(len, overhead)?;
    }
    let chunk_size = ctx.config.chunk_size_bytes;
    let mut writer = ChunkWriter::new(&store, &job_id, chunk_size, max, quota);
    let (source_name, content_type) = match mode {
        BodyMode::Multipart { boundary } => receive_multipart(body, boundary, &mut writer, max).await?,
        BodyMode::Raw { source_name, content_type } => {
            receive_raw(body, &mut writer).await?;
            (source_name, content_type)
        }
    };
    let (size, chunks) = writer.finish()?;
    if size == 0 {
        return Err(ApiError::bad_request("empty upload", "the uploaded file is empty"));
    }

    let source = StoredFile { size, chunks, chunk_size, content_type };
    let job = Job {
        callback_url,
        policy: ctx.config.policy,
        ..Job::new(job_id.clone(), caller.email.clone(), source_name, source, options, ctx.now)
    };
    let key = job_key(&job_id);
    store.set(&key, &job.to_json()).map_err(|e| store_error("could not store the job", e))?;
    // Queued first, settled after: until it is settled, the pending entry lets the sweeper
    // remove an upload whose component stopped half-way.
    let queued = queue::enqueue(&ctx.config.redis_host, &job_id)
        .map_err(queue_unavailable)
        .and_then(|()| accounts.settle_upload(&job_id, owner, edge_spin::unix_now_millis()));
    if let Err(e) = queued {
        // Nothing of a job that was never queued remains: its record here, its chunks and
        // accounting through the writer and the guard.
        if let Err(e) = store.delete(&key) {
            eprintln!("could not delete {key}: {e:?}");
        }
        return Err(e);
    }
    writer.keep();
    guard.done = true;
    Ok(accepted(&job_id))
}

pub(crate) fn queue_unavailable(e: String) -> ApiError {
    eprintln!("could not enqueue: {e}");
    ApiError::new(503, "queue unavailable", "could not put the job on the queue; try again later").header("retry-after", "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_modes() {
        let multipart = body_mode(Some("multipart/form-data; boundary=abc"), None);
        assert_eq!(multipart.ok(), Some(BodyMode::Multipart { boundary: "abc".into() }));
        assert!(body_mode(Some("multipart/form-data"), None).is_err());
        assert_eq!(
            body_mode(Some("Video/MP4"), Some("a/b.mp4".into())).ok(),
            Some(BodyMode::Raw { source_name: "b.mp4".into(), content_type: "video/mp4".into() })
        );
        assert!(body_mode(Some("video/mp4"), None).is_err());
        assert!(body_mode(Some("text/plain"), Some("x".into())).is_err());
        assert!(body_mode(None, Some("x".into())).is_err());
    }
}
