//! Imports by URL: the worker's side of `POST /upload?url=`.
//!
//! The edge records the job as `uploading` with its `source_url` and adds it to the import
//! stream (`mp3edge:imports`, consumer group `mp3edge-importers`). A worker takes the entry,
//! fetches the URL under the outbound rules ([`fetch`]) and says what it found first in the
//! job's verdict key (`job_model::layout::ImportVerdict`), which the edge, still waiting to
//! answer the request, turns into its answer: a refused URL is a 400 and a source over a limit
//! a 413, and the edge removes the job; otherwise the edge answers 202. The worker then streams
//! the body into the job's chunks, exactly as an upload is stored, under the upload limit and
//! the owner's quota (reserved from `Content-Length` at once, else as the bytes arrive), with
//! `received_bytes` on the record; the last byte queues the conversion. A source that fails
//! (an error status, silence past the idle timeout, more bytes than allowed) fails the job with
//! a readable reason, and what it stored goes. A deleted job stops the import at its next chunk.
//! Delivery is at-least-once like jobs: an entry whose worker died is taken over after the
//! visibility timeout and the import starts again from its first byte.

pub mod fetch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use job_model::layout::{self, ImportVerdict};
use job_model::lifecycle::{self, Reservation, human_bytes};
use job_model::{Job, JobMessage, JobStatus, StoredFile};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use spin_host::interfaces::key_value::KeyValueBackend;
use crate::lifecycle::JobStorage;
use fetch::{FetchError, Fetcher};

/// How far ahead an import in progress tells the sweeper it is alive.
const ALIVE_FOR_SECS: u64 = 300;

/// The import stream's consumers in this worker.
pub struct ImportQueue {
    redis: ConnectionManager,
    client: redis::Client,
    jobs: JobStorage,
    store: Arc<dyn KeyValueBackend>,
    fetcher: Fetcher,
    consumer: String,
    visibility_timeout: Duration,
}

impl ImportQueue {
    pub async fn new(
        client: redis::Client,
        mut redis: ConnectionManager,
        store: Arc<dyn KeyValueBackend>,
        fetcher: Fetcher,
        consumer: String,
        visibility_timeout: Duration,
    ) -> Result<ImportQueue> {
        let created: redis::RedisResult<()> = redis.xgroup_create_mkstream(layout::IMPORT_STREAM, layout::IMPORT_GROUP, "0").await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e).context("creating the import consumer group");
        }
        let jobs = JobStorage::new(redis.clone(), store.clone());
        Ok(ImportQueue { redis, client, jobs, store, fetcher, consumer, visibility_timeout })
    }

    /// Runs `loops` consumer loops until `shutdown` (an import in progress is then left
    /// pending, and taken over by a worker after the visibility timeout).
    pub async fn serve(self: Arc<Self>, loops: usize, shutdown: CancellationToken) {
        let mut running = Vec::new();
        for _ in 0..loops.max(1) {
            let (this, shutdown) = (self.clone(), shutdown.clone());
            running.push(tokio::spawn(async move { this.consume(shutdown).await }));
        }
        for loop_ in running {
            let _ = loop_.await;
        }
    }

    async fn consume(&self, shutdown: CancellationToken) {
        let mut reader = None;
        while !shutdown.is_cancelled() {
            if reader.is_none() {
                let config = redis_support::client::blocking_config(Duration::from_secs(1));
                reader = self.client.get_multiplexed_async_connection_with_config(&config).await.ok();
            }
            let next = tokio::select! {
                next = self.next_entry(reader.as_mut()) => next,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(entry)) => {
                    let heartbeat = self.heartbeat(entry.id.clone());
                    let processed = tokio::select! {
                        processed = self.process(&entry) => Some(processed),
                        _ = shutdown.cancelled() => None,
                    };
                    heartbeat.cancel();
                    match processed {
                        Some(Ok(())) => {
                            let acked: redis::RedisResult<()> = self.redis.clone().xack(layout::IMPORT_STREAM, layout::IMPORT_GROUP, &[&entry.id]).await;
                            if let Err(e) = acked {
                                tracing::warn!(entry = %entry.id, error = %e, "could not acknowledge an import; it will be seen again");
                            }
                        }
                        Some(Err(e)) => tracing::warn!(entry = %entry.id, error = %format!("{e:#}"), "import left pending; it will be retried"),
                        None => return,
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    reader = None;
                    tracing::warn!(error = %format!("{e:#}"), "reading the import stream failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                        _ = shutdown.cancelled() => {},
                    }
                }
            }
        }
    }

    /// An import of a worker that stopped answering, else a new one (waiting up to a second).
    async fn next_entry(&self, reader: Option<&mut redis::aio::MultiplexedConnection>) -> Result<Option<StreamId>> {
        let mut redis = self.redis.clone();
        let idle_ms = self.visibility_timeout.as_millis() as u64;
        if let Some(entry) = redis_support::streams::claim_idle_entry(&mut redis, layout::IMPORT_STREAM, layout::IMPORT_GROUP, &self.consumer, idle_ms).await? {
            tracing::info!(entry = %entry.id, "took over an import from a worker that stopped answering");
            return Ok(Some(entry));
        }
        let reader = reader.context("no connection for the import stream")?;
        let options = StreamReadOptions::default().group(layout::IMPORT_GROUP, &self.consumer).count(1).block(1000);
        let reply: Option<StreamReadReply> = reader.xread_options(&[layout::IMPORT_STREAM], &[">"], &options).await?;
        Ok(reply.and_then(|r| r.keys.into_iter().next()).and_then(|k| k.ids.into_iter().next()))
    }

    /// Keeps an entry's idle time low while its import runs.
    fn heartbeat(&self, entry_id: String) -> CancellationToken {
        redis_support::streams::keep_claimed(self.redis.clone(), layout::IMPORT_STREAM, layout::IMPORT_GROUP, self.consumer.clone(), entry_id, self.visibility_timeout / 3)
    }

    /// One entry: `Ok` once it may be acknowledged.
    async fn process(&self, entry: &StreamId) -> Result<()> {
        let payload: Option<Vec<u8>> = entry.get(layout::JOB_STREAM_FIELD);
        let Some(Ok(message)) = payload.as_deref().map(JobMessage::from_json) else {
            tracing::warn!(entry = %entry.id, "malformed import entry; dropped");
            return Ok(());
        };
        let Some(job) = self.jobs.load(&message.job_id).await? else { return Ok(()) };
        let Some(url) = job.source_url.clone().filter(|_| job.status == JobStatus::Uploading) else { return Ok(()) };
        if self.jobs.is_cancelled(&job.id).await? {
            return Ok(());
        }
        let url = match url::Url::parse(&url) {
            Ok(url) => url,
            Err(_) => return self.fail(job, "the link is not a valid URL".into()).await,
        };
        tracing::info!(job = %job.id, host = %url.host_str().unwrap_or("-"), "importing");
        self.import(job, url).await
    }

    /// Records a verdict unless one is there (the edge answered without waiting longer);
    /// whether it was recorded.
    async fn verdict(&self, job_id: &str, verdict: &ImportVerdict) -> Result<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(layout::import_verdict_key(job_id))
            .arg(verdict.to_text())
            .arg("NX")
            .arg("EX")
            .arg(lifecycle::IMPORT_VERDICT_SECS)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(set.is_some())
    }

    /// A refusal the edge turns into its answer when it still waits (it then removes the job);
    /// otherwise the job fails with it.
    async fn refuse(&self, job: Job, verdict: ImportVerdict, reason: String) -> Result<()> {
        if self.verdict(&job.id, &verdict).await? {
            tracing::info!(job = %job.id, %reason, "import refused; the edge answers it");
            return Ok(());
        }
        self.fail(job, reason).await
    }

    /// Fails the job with `reason`; what it stored goes (there is no source to retry from).
    async fn fail(&self, mut job: Job, reason: String) -> Result<()> {
        tracing::warn!(job = %job.id, %reason, "import failed");
        self.discard_chunks(&job.id).await?;
        let _: () = self.redis.clone().hdel(lifecycle::usage_key(&job.owner), lifecycle::source_field(&job.id)).await?;
        job.status = JobStatus::Failed;
        job.error = Some(reason);
        job.received_bytes = None;
        job.source_freed = true;
        self.jobs.save(&mut job).await?;
        self.jobs.finish(&mut job).await?;
        self.settle_pending(&job).await
    }

    /// Deletes the source chunks stored so far (from the last down).
    async fn discard_chunks(&self, job_id: &str) -> Result<()> {
        let mut count = 0;
        while self.store.exists(&layout::source_chunk_key(job_id, count)).await? {
            count += 1;
        }
        for index in (0..count).rev() {
            self.store.delete(&layout::source_chunk_key(job_id, index)).await?;
        }
        Ok(())
    }

    /// The import is no longer an upload in progress for the sweeper.
    async fn settle_pending(&self, job: &Job) -> Result<()> {
        let mut redis = self.redis.clone();
        let _: () = redis.hdel(lifecycle::PENDING_UPLOADS, &job.id).await?;
        let _: () = redis.zrem(lifecycle::PENDING_DEADLINES, &job.id).await?;
        let _: () = redis.zrem(lifecycle::uploading_key(&job.owner), &job.id).await?;
        Ok(())
    }

    /// Counts `bytes` of the job's source against its owner's quota.
    async fn reserve(&self, job: &Job, bytes: u64) -> Result<Reservation> {
        let reply: i64 = redis::cmd("EVAL")
            .arg(lifecycle::RESERVE_SCRIPT)
            .arg(1)
            .arg(lifecycle::usage_key(&job.owner))
            .arg(lifecycle::source_field(&job.id))
            .arg(bytes)
            .arg(job.policy.quota_bytes)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(Reservation::from_reply(reply))
    }

    fn over_quota(job: &Job, used: u64) -> String {
        format!(
            "the file at the link would take you past your storage quota of {} (you hold {}); delete jobs and import it again",
            human_bytes(job.policy.quota_bytes),
            human_bytes(used)
        )
    }

    async fn import(&self, mut job: Job, url: url::Url) -> Result<()> {
        // What an earlier, interrupted attempt stored goes first.
        self.discard_chunks(&job.id).await?;
        let (_, mut response) = match self.fetcher.open(&url).await {
            Ok(opened) => opened,
            Err(FetchError::Refused(reason)) => {
                let verdict = ImportVerdict::Refused(reason.clone());
                return self.refuse(job, verdict, format!("url not allowed: {reason}")).await;
            }
            Err(FetchError::Failed(reason)) => {
                self.verdict(&job.id, &ImportVerdict::Fetching).await?;
                return self.fail(job, reason).await;
            }
        };
        let status = response.status();
        if !status.is_success() {
            self.verdict(&job.id, &ImportVerdict::Fetching).await?;
            return self.fail(job, format!("the link answered HTTP {}", status.as_u16())).await;
        }
        let max = job.policy.max_source_bytes;
        let announced = response.content_length();
        if let Some(length) = announced {
            if max > 0 && length > max {
                let reason = format!("the file at the link is {} ({length} bytes), over the upload limit of {}", human_bytes(length), human_bytes(max));
                return self.refuse(job, ImportVerdict::TooLarge(reason.clone()), reason).await;
            }
            if let Reservation::Refused { used } = self.reserve(&job, length).await? {
                let reason = Self::over_quota(&job, used);
                return self.refuse(job, ImportVerdict::OverQuota(reason.clone()), reason).await;
            }
        }
        self.verdict(&job.id, &ImportVerdict::Fetching).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "application/octet-stream".into());
        let chunk_size = job.source.chunk_size.max(1) as usize;
        let (mut buf, mut size, mut chunks, mut reserved) = (Vec::with_capacity(chunk_size), 0u64, 0u32, announced.unwrap_or(0));
        loop {
            let bytes = match response.chunk().await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => break,
                Err(e) => return self.fail(job, fetch::describe(&e, &url)).await,
            };
            size += bytes.len() as u64;
            if max > 0 && size > max {
                return self.fail(job, format!("the file at the link is larger than the upload limit of {}", human_bytes(max))).await;
            }
            if size > reserved {
                // A chunk ahead, as an upload of unknown length is counted.
                let ahead = size.div_ceil(chunk_size as u64) * chunk_size as u64;
                if let Reservation::Refused { used } = self.reserve(&job, ahead).await? {
                    return self.fail(job.clone(), Self::over_quota(&job, used)).await;
                }
                reserved = ahead;
            }
            let mut data = &bytes[..];
            while !data.is_empty() {
                let take = (chunk_size - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if buf.len() == chunk_size {
                    self.store.set(&layout::source_chunk_key(&job.id, chunks), &buf).await?;
                    chunks += 1;
                    buf.clear();
                    if !self.progress(&mut job, size).await? {
                        return Ok(());
                    }
                }
            }
        }
        if !buf.is_empty() {
            self.store.set(&layout::source_chunk_key(&job.id, chunks), &buf).await?;
            chunks += 1;
        }
        if size == 0 {
            return self.fail(job, "the link gave an empty file".into()).await;
        }
        if let Reservation::Refused { used } = self.reserve(&job, size).await? {
            return self.fail(job.clone(), Self::over_quota(&job, used)).await;
        }
        // The job was deleted in between: its deletion removes what is here.
        if self.jobs.is_cancelled(&job.id).await? || self.jobs.load(&job.id).await?.is_none() {
            return Ok(());
        }
        job.source = StoredFile { size, chunks, chunk_size: job.source.chunk_size, content_type };
        job.status = JobStatus::Queued;
        job.received_bytes = None;
        job.progress = 0;
        self.jobs.save(&mut job).await?;
        let message = JobMessage { job_id: job.id.clone() }.to_json();
        let mut redis = self.redis.clone();
        let _: String = redis.xadd(layout::JOB_STREAM, "*", &[(layout::JOB_STREAM_FIELD, &message[..])]).await?;
        let _: () = redis.publish(layout::JOB_CHANNEL, message).await?;
        self.settle_pending(&job).await?;
        tracing::info!(job = %job.id, bytes = size, "imported; queued for conversion");
        Ok(())
    }

    /// Records how far the import got and that it is alive; `false` when the job was deleted
    /// meanwhile (what was stored goes with the deletion).
    async fn progress(&self, job: &mut Job, size: u64) -> Result<bool> {
        if self.jobs.is_cancelled(&job.id).await? || self.jobs.load(&job.id).await?.is_none() {
            self.discard_chunks(&job.id).await?;
            return Ok(false);
        }
        job.received_bytes = Some(size);
        self.jobs.save(job).await?;
        let alive_until = crate::lifecycle::now() + ALIVE_FOR_SECS;
        let _: () = redis::cmd("ZADD")
            .arg(lifecycle::PENDING_DEADLINES)
            .arg("XX")
            .arg(alive_until)
            .arg(&job.id)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(true)
    }
}
