//! Resumable uploads: the tus 1.0.0 protocol at `/uploads` (core, `creation`,
//! `creation-with-upload`, `termination`, `expiration`), for files too big to send in one go
//! over a connection that may drop.
//!
//! The upload's id is the job's: `POST /uploads` (with `Upload-Length`, and the conversion
//! options in `Upload-Metadata` under the names `POST /upload` takes in its query, plus
//! `filename` and `filetype`) records the job as `uploading`, reserves its whole size against
//! the quota and answers `Location: /uploads/{id}`. Each `PATCH` appends at exactly the stored
//! offset (409 otherwise) into the same chunked key-value layout as `/upload`: every full chunk
//! is stored as it fills, and the bytes of an unfinished last chunk are stored with the offset
//! when the request ends, also when the client vanished half-way, so the next `PATCH` goes on
//! from there. The last byte queues the job as `/upload` does. `HEAD` says how far it got,
//! `DELETE` ends it and frees everything, and an upload with no progress for
//! `resumable_upload_expiry_secs` (`Upload-Expires`) is removed by the workers' sweeper. All
//! state is in the stores (the record's `received_bytes`, Redis's accounting), so a restart of
//! the edge loses nothing. One `PATCH` at a time appends to an upload (a lock in Redis).

use std::collections::BTreeMap;

use edge_http::tus::{self, OFFSET_CONTENT_TYPE};
use edge_spin::{ApiError, ApiResult, BodyStream, Head, Reply, media_type};
use futures::StreamExt;
use job_model::layout::{job_key, source_chunk_key};
use job_model::lifecycle::human_bytes;
use job_model::naming::sanitize_source_name;
use job_model::{Job, JobStatus, StoredFile};
use spin_sdk::key_value::Store;

use crate::Ctx;
use crate::accounts::Accounts;
use crate::chunks::{QuotaGuard, open_store, store_error, too_large};
use crate::jobs::{read_job, visible_job};
use crate::session::Caller;
use crate::upload::{UploadGuard, admit, callback_url, conversion_options, new_job_id, queue_unavailable};

/// The answer every tus response carries.
fn tus_reply(reply: Reply) -> Reply {
    reply.header("tus-resumable", tus::VERSION)
}

/// 412 unless the client speaks this version (every request but `OPTIONS` says which).
fn check_version(head: &Head) -> Result<(), ApiError> {
    match head.header("tus-resumable").map(str::trim) {
        Some(tus::VERSION) => Ok(()),
        Some(other) => Err(ApiError::new(412, "unsupported tus version", format!("this server speaks tus {}, not {other}", tus::VERSION))
            .header("tus-version", tus::VERSION)),
        None => Err(ApiError::new(412, "not a tus request", format!("send Tus-Resumable: {} with every request", tus::VERSION))
            .header("tus-version", tus::VERSION)),
    }
}

/// What the server supports (`OPTIONS /uploads`), added to the `OPTIONS` answer.
pub fn capabilities(ctx_max_upload_bytes: u64, reply: Reply) -> Reply {
    tus_reply(reply)
        .header("tus-version", tus::VERSION)
        .header("tus-extension", tus::EXTENSIONS)
        .header("tus-max-size", ctx_max_upload_bytes.to_string())
}

/// When an upload last moving at `now` expires.
fn expires_at(ctx: &Ctx) -> u64 {
    ctx.now + ctx.config.resumable_upload_expiry_secs
}

fn offset_reply(status: u16, offset: u64, expires: Option<u64>) -> Reply {
    let reply = tus_reply(Reply::empty(status)).header("upload-offset", offset.to_string());
    match expires {
        Some(at) => reply.header("upload-expires", tus::http_date(at)),
        None => reply,
    }
}

/// The upload's content type from `filetype` (what a browser says of the file), held to what
/// `/upload` accepts.
fn content_type(metadata: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let Some(given) = metadata.get("filetype").filter(|t| !t.trim().is_empty()) else {
        return Ok("application/octet-stream".into());
    };
    let media = media_type(given);
    if media.starts_with("video/") || media.starts_with("audio/") || media == "application/octet-stream" {
        return Ok(media);
    }
    Err(ApiError::new(415, "unsupported media type", format!("filetype {given:?} is not a video or audio type")))
}

/// `POST /uploads`: a new upload (and, with a body, its first bytes).
pub async fn create(ctx: &Ctx, caller: &Caller, head: &Head, body: &mut BodyStream) -> ApiResult {
    check_version(head)?;
    if head.header("upload-defer-length").is_some() {
        return Err(ApiError::bad_request("length required", "give Upload-Length: uploads of a length not known yet are not supported"));
    }
    let length = head
        .header("upload-length")
        .map(|v| tus::parse_length(v).ok_or_else(|| ApiError::bad_request("invalid Upload-Length", format!("{v:?} is not a byte count"))))
        .transpose()?
        .ok_or_else(|| ApiError::bad_request("length required", "give the file's size as Upload-Length"))?;
    if length == 0 {
        return Err(ApiError::bad_request("empty upload", "the uploaded file is empty"));
    }
    let max = ctx.config.max_upload_bytes;
    if length > max {
        return Err(too_large(max));
    }
    let metadata = tus::parse_metadata(head.header("upload-metadata").unwrap_or(""))
        .map_err(|detail| ApiError::bad_request("invalid Upload-Metadata", detail))?;
    let source_name = sanitize_source_name(metadata.get("filename").map_or("upload", String::as_str));
    let content_type = content_type(&metadata)?;
    let options = conversion_options(ctx, &metadata)?;
    let callback_url = callback_url(ctx, caller, &metadata)?;
    let with_data = head.header("content-type").map(media_type).as_deref() == Some(OFFSET_CONTENT_TYPE);

    let owner = caller.email.as_str();
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    let store = open_store()?;
    let job_id = new_job_id()?;
    admit(ctx, &accounts, &store, &job_id, owner, expires_at(ctx))?;
    let mut guard = UploadGuard { accounts: &accounts, job_id: &job_id, owner, done: false };
    let mut quota = QuotaGuard {
        accounts: &accounts,
        owner,
        job_id: &job_id,
        quota: ctx.config.user_quota_bytes,
        reserved: 0,
        stale_secs: ctx.config.resumable_upload_expiry_secs,
        alive_at: ctx.now,
    };
    quota.announce(length, 0)?;
    let chunk_size = ctx.config.chunk_size_bytes;
    let source = StoredFile { size: length, chunks: length.div_ceil(u64::from(chunk_size)) as u32, chunk_size, content_type };
    let job = Job {
        status: JobStatus::Uploading,
        received_bytes: Some(0),
        callback_url,
        policy: ctx.config.policy,
        ..Job::new(job_id.clone(), owner.to_string(), source_name, source, options, ctx.now)
    };
    store.set(&job_key(&job_id), &job.to_json()).map_err(|e| store_error("could not store the job", e))?;
    // Listed at once, so `GET /jobs` shows it uploading; still pending for the sweeper.
    accounts.list_job(&job_id, owner, edge_spin::unix_now_millis())?;
    guard.done = true;
    let location = format!("/uploads/{job_id}");
    if !with_data {
        return Ok(tus_reply(Reply::empty(201)).header("location", location).header("upload-expires", tus::http_date(expires_at(ctx))));
    }
    // creation-with-upload: the body is the file's first bytes, as a PATCH at offset 0 would
    // be. The upload exists whatever happens to them; the offset says how many were kept.
    let offset = match append_to(ctx, &accounts, &store, job, 0, body).await {
        Ok(Appended { offset, .. }) => offset,
        Err(e) => {
            eprintln!("upload {job_id}: its first bytes were not kept: {e:?}");
            0
        }
    };
    Ok(tus_reply(Reply::empty(201))
        .header("location", location)
        .header("upload-offset", offset.to_string())
        .header("upload-expires", tus::http_date(expires_at(ctx))))
}

/// `HEAD /uploads/{id}`: how much is stored. A finished upload says it is complete.
pub fn status(ctx: &Ctx, caller: &Caller, head: &Head, id: &str) -> ApiResult {
    check_version(head)?;
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    if job.source_url.is_some() {
        return Err(not_resumable());
    }
    let (offset, expires) = match job.status {
        JobStatus::Uploading => (job.received_bytes.unwrap_or(0), Accounts::open(&ctx.config.redis_host)?.pending_until(&job.id)?),
        _ => (job.source.size, None),
    };
    Ok(offset_reply(200, offset, expires).header("upload-length", job.source.size.to_string()).header("cache-control", "no-store"))
}

/// `DELETE /uploads/{id}`: ends the upload (or the job it became) and frees everything.
pub fn terminate(ctx: &Ctx, caller: &Caller, head: &Head, id: &str) -> ApiResult {
    check_version(head)?;
    crate::jobs::delete(ctx, caller, id).map(tus_reply)
}

/// `PATCH /uploads/{id}`: appends the body at `Upload-Offset`.
pub async fn append(ctx: &Ctx, caller: &Caller, head: &Head, body: &mut BodyStream, id: &str) -> ApiResult {
    check_version(head)?;
    if head.header("content-type").map(media_type).as_deref() != Some(OFFSET_CONTENT_TYPE) {
        return Err(ApiError::new(415, "unsupported media type", format!("a PATCH carries {OFFSET_CONTENT_TYPE}")));
    }
    let offset = head
        .header("upload-offset")
        .map(|v| tus::parse_length(v).ok_or_else(|| ApiError::bad_request("invalid Upload-Offset", format!("{v:?} is not a byte count"))))
        .transpose()?
        .ok_or_else(|| ApiError::bad_request("offset required", "give where the bytes go as Upload-Offset"))?;
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    if job.source_url.is_some() {
        return Err(not_resumable());
    }
    let accounts = Accounts::open(&ctx.config.redis_host)?;
    // A body announced past the upload's end is refused before a byte of it is read (one sent
    // without a length is held to the end as it arrives).
    let announced = head.header("content-length").and_then(tus::parse_length);
    if job.status == JobStatus::Uploading && announced.is_some_and(|len| offset.saturating_add(len) > job.source.size) {
        return Err(past_the_end(job.source.size)
            .header("upload-offset", job.received_bytes.unwrap_or(0).to_string())
            .header("tus-resumable", tus::VERSION));
    }
    if job.status != JobStatus::Uploading {
        return Err(ApiError::new(409, "upload complete", "every byte of this upload is stored already")
            .header("upload-offset", job.source.size.to_string())
            .header("tus-resumable", tus::VERSION));
    }
    let Appended { offset, failure, complete } = append_to(ctx, &accounts, &store, job, offset, body).await?;
    if let Some(e) = failure {
        return Err(e.header("upload-offset", offset.to_string()).header("tus-resumable", tus::VERSION));
    }
    Ok(offset_reply(204, offset, (!complete).then(|| expires_at(ctx))))
}

/// What an append did.
struct Appended {
    /// The offset reached (everything before it is stored).
    offset: u64,
    /// Why the request ended before its body did (what arrived is kept all the same).
    failure: Option<ApiError>,
    /// The last byte arrived and the job is queued.
    complete: bool,
}

/// One append at `offset` to an upload in progress, under the upload's lock.
async fn append_to(ctx: &Ctx, accounts: &Accounts, store: &Store, job: Job, offset: u64, body: &mut BodyStream) -> Result<Appended, ApiError> {
    let received = job.received_bytes.unwrap_or(0);
    let mismatch = |at: u64| {
        ApiError::new(409, "offset mismatch", format!("the upload has {at} bytes; send the next ones with Upload-Offset: {at}"))
            .header("upload-offset", at.to_string())
            .header("tus-resumable", tus::VERSION)
    };
    if offset != received {
        return Err(mismatch(received));
    }
    let lock = UploadLock::take(accounts, &job.id)?.ok_or_else(|| {
        ApiError::new(409, "upload busy", "another request is appending to this upload; ask HEAD for its offset and go on from there")
            .header("tus-resumable", tus::VERSION)
    })?;
    // Read again under the lock: a request that held it may have moved the offset on.
    let job = read_job(store, &job.id)?.ok_or_else(ApiError::not_found)?;
    let received = job.received_bytes.unwrap_or(0);
    if job.status != JobStatus::Uploading || offset != received {
        drop(lock);
        return Err(mismatch(if job.status == JobStatus::Uploading { received } else { job.source.size }));
    }
    let mut writer = Appender::open(ctx, accounts, store, job, &lock)?;
    let mut outcome = Ok(());
    while let Some(read) = body.next().await {
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                outcome = Err(crate::upload::read_error(e.to_debug_string()));
                break;
            }
        };
        if let Err(e) = writer.write(&bytes) {
            outcome = Err(e);
            break;
        }
    }
    // What arrived is kept, also when the request failed half-way: the offset says where to
    // go on from.
    let offset = writer.commit()?;
    let job = writer.job;
    let complete = outcome.is_ok() && offset == job.source.size;
    if complete {
        finish(ctx, accounts, store, job)?;
    }
    Ok(Appended { offset, failure: outcome.err(), complete })
}

/// 404 for a job whose source a worker imports by URL: it is no tus upload.
fn not_resumable() -> ApiError {
    ApiError::new(404, "not found", "this job's source is imported from a URL, not uploaded here").header("tus-resumable", tus::VERSION)
}

/// 413: bytes past the upload's announced length.
fn past_the_end(length: u64) -> ApiError {
    ApiError::new(
        413,
        "more than Upload-Length",
        format!("the upload was announced as {} ({length} bytes); these bytes go past its end", human_bytes(length)),
    )
}

/// How long an append holds the upload's lock without renewing it (it renews it with every
/// chunk it stores, so a request slower than a chunk in this long loses it).
const APPEND_LOCK_MS: u64 = 60_000;

/// Appends bytes to an upload's chunks: the last, partial chunk is read back first, every full
/// chunk is stored as it fills, and [`Appender::commit`] stores what is left and the offset.
struct Appender<'a> {
    ctx: &'a Ctx,
    accounts: &'a Accounts,
    store: &'a Store,
    lock: &'a UploadLock<'a>,
    job: Job,
    chunk_size: u64,
    /// The bytes of the chunk being filled, from its start.
    buf: Vec<u8>,
    /// Bytes stored in full chunks before `buf`.
    stored: u64,
    /// Whether `buf` holds bytes that are not stored yet.
    dirty: bool,
    /// When the sweeper was last told the upload is alive (Unix seconds).
    alive_at: u64,
}

impl<'a> Appender<'a> {
    fn open(ctx: &'a Ctx, accounts: &'a Accounts, store: &'a Store, job: Job, lock: &'a UploadLock<'a>) -> Result<Appender<'a>, ApiError> {
        let chunk_size = u64::from(job.source.chunk_size.max(1));
        let received = job.received_bytes.unwrap_or(0);
        let partial = received % chunk_size;
        let stored = received - partial;
        let mut buf = Vec::with_capacity(chunk_size as usize);
        if partial > 0 {
            let key = source_chunk_key(&job.id, (stored / chunk_size) as u32);
            let chunk = store.get(&key).map_err(|e| ApiError::internal("could not read the upload", e))?.unwrap_or_default();
            if chunk.len() as u64 != partial {
                return Err(ApiError::internal("the upload's last chunk does not match its offset", (key, chunk.len(), partial)));
            }
            buf = chunk;
        }
        Ok(Appender { ctx, accounts, store, lock, job, chunk_size, buf, stored, dirty: false, alive_at: ctx.now })
    }

    fn offset(&self) -> u64 {
        self.stored + self.buf.len() as u64
    }

    fn write(&mut self, mut data: &[u8]) -> Result<(), ApiError> {
        let length = self.job.source.size;
        if self.offset() + data.len() as u64 > length {
            return Err(past_the_end(length));
        }
        while !data.is_empty() {
            let take = (self.chunk_size as usize - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            self.dirty = true;
            data = &data[take..];
            if self.buf.len() as u64 == self.chunk_size {
                self.store_chunk()?;
                self.stored += self.chunk_size;
                self.buf.clear();
                self.dirty = false;
                self.record()?;
            }
        }
        Ok(())
    }

    fn store_chunk(&self) -> Result<(), ApiError> {
        let key = source_chunk_key(&self.job.id, (self.stored / self.chunk_size) as u32);
        self.store.set(&key, &self.buf).map_err(|e| store_error("could not store an upload chunk", e))
    }

    /// Records the offset reached on the job (and that the upload is alive), unless the job
    /// was deleted meanwhile: then what this request stored goes again, and it is a 404.
    fn record(&mut self) -> Result<(), ApiError> {
        let offset = self.offset();
        let Some(mut job) = read_job(self.store, &self.job.id)? else {
            for index in 0..=((offset.saturating_sub(1)) / self.chunk_size) as u32 {
                let _ = self.store.delete(&source_chunk_key(&self.job.id, index));
            }
            return Err(ApiError::not_found());
        };
        job.received_bytes = Some(offset);
        job.progress = ((offset * 100) / job.source.size.max(1)).min(100) as u8;
        job.updated_at = edge_spin::unix_now();
        self.store.set(&job_key(&job.id), &job.to_json()).map_err(|e| store_error("could not record the upload's progress", e))?;
        self.job = job;
        self.lock.renew()?;
        let now = edge_spin::unix_now();
        if now > self.alive_at {
            self.alive_at = now;
            self.accounts.keep_alive(&self.job.id, now + self.ctx.config.resumable_upload_expiry_secs)?;
        }
        Ok(())
    }

    /// Stores the partial chunk and the offset; returns the offset.
    fn commit(&mut self) -> Result<u64, ApiError> {
        if self.dirty {
            self.store_chunk()?;
            self.dirty = false;
            self.record()?;
        }
        Ok(self.offset())
    }
}

/// The last byte arrived: the job is queued as `/upload` queues it. When the queue cannot take
/// it, the record says `uploading` with every byte received again, so the client's next
/// `PATCH` (at the upload's length, empty) queues it then.
fn finish(ctx: &Ctx, accounts: &Accounts, store: &Store, mut job: Job) -> Result<(), ApiError> {
    let received = job.received_bytes;
    job.status = JobStatus::Queued;
    job.received_bytes = None;
    job.progress = 0;
    job.updated_at = ctx.now;
    let key = job_key(&job.id);
    store.set(&key, &job.to_json()).map_err(|e| store_error("could not store the job", e))?;
    if let Err(e) = crate::queue::enqueue(&ctx.config.redis_host, &job.id) {
        (job.status, job.received_bytes) = (JobStatus::Uploading, received);
        store.set(&key, &job.to_json()).map_err(|e| store_error("could not store the job", e))?;
        return Err(queue_unavailable(e));
    }
    accounts.settle_upload(&job.id, &job.owner, job.created_at.saturating_mul(1000))
}

/// The lock that makes one `PATCH` at a time append to an upload; released when dropped.
pub struct UploadLock<'a> {
    pub accounts: &'a Accounts,
    pub job_id: String,
    pub token: String,
}

impl<'a> UploadLock<'a> {
    /// The upload's lock, unless another request holds it.
    fn take(accounts: &'a Accounts, job_id: &str) -> Result<Option<UploadLock<'a>>, ApiError> {
        let mut bits = [0u8; 16];
        getrandom::fill(&mut bits).map_err(|e| ApiError::internal("no randomness available", e))?;
        let token = bits.iter().map(|b| format!("{b:02x}")).collect::<String>();
        Ok(accounts.lock_upload(job_id, &token, APPEND_LOCK_MS)?.then(|| UploadLock { accounts, job_id: job_id.to_string(), token }))
    }

    fn renew(&self) -> Result<(), ApiError> {
        self.accounts.renew_upload_lock(&self.job_id, &self.token, APPEND_LOCK_MS)
    }
}

impl Drop for UploadLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.accounts.unlock_upload(&self.job_id, &self.token) {
            eprintln!("upload {}: could not release its lock ({e:?}); it lapses by itself", self.job_id);
        }
    }
}
