//! The Redis trigger of the worker: takes jobs from the durable queue and runs the converter.
//!
//! The gateway appends each job to a Redis stream and publishes on the job channel. Workers
//! share the stream through a consumer group (each entry goes to one worker), wake on the
//! channel, and also poll, so a message published while no worker listened is not lost. A job
//! is acknowledged only after the converter stored its output and its final status. An entry
//! whose worker died stays pending and is reclaimed once idle longer than the visibility
//! timeout; a live worker keeps its entries fresh with a heartbeat. Attempts are counted on the
//! job record, numbered in Redis so two deliveries never take the same number; after
//! `max_attempts` the job is marked `failed` and moved to the dead-letter stream. A job already
//! `done` or `failed` is acknowledged without running again. An attempt that finds the record
//! of another run or attempt when its converter returns is stale: it acknowledges its entry and
//! touches nothing (no clean-up, no requeue, no notification).

pub mod converter;

use redis_support::streams::{claim_idle_entry, keep_claimed};

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use job_model::{Completion, Delivery, FormatInfo, Job, JobMessage, JobStatus, MAX_INTERRUPTIONS, layout, lifecycle};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use codec_host::{CodecRegistry, SegmentQueue};
use spin_host::interfaces::key_value::KeyValueBackend;
use crate::lifecycle::JobStorage;
use crate::lifecycle::sweeper::{Sweeper, SweeperConfig};
use converter::Converter;

/// How the trigger runs.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// `redis://host:port` of the job queue.
    pub redis_url: String,
    /// Jobs converted at once by this worker.
    pub concurrency: usize,
    /// Attempts before a job is failed and dead-lettered.
    pub max_attempts: u32,
    /// Idle time after which another worker may take over a pending job.
    pub visibility_timeout: Duration,
    /// How often to look at the stream when no wake-up arrives.
    pub poll_interval: Duration,
    /// This worker's name in the consumer group.
    pub consumer: String,
    /// How often a running job looks for a cancellation (`DELETE`).
    pub cancel_poll: Duration,
    /// How long jobs in progress may go on once the worker is asked to stop; then they are
    /// interrupted and put back on the queue, not counted as attempts.
    pub shutdown_grace: Duration,
    /// Hosts imports by URL may reach even at internal addresses (Spin's
    /// `allowed_outbound_hosts` syntax, comma-separated).
    pub url_import_allowed_hosts: String,
    /// Imports by URL fetched at once by this worker.
    pub import_concurrency: usize,
    pub sweeper: SweeperConfig,
}

pub struct RedisTrigger {
    config: TriggerConfig,
    redis: ConnectionManager,
    converter: Converter,
    store: Arc<dyn KeyValueBackend>,
    jobs: JobStorage,
    codecs: Arc<CodecRegistry>,
    notifier: Arc<crate::notify::Notifier>,
    metrics: Arc<crate::metrics::WorkerMetrics>,
    /// Cancelled once the worker stops and its grace period is over: conversions still running
    /// are interrupted.
    interrupt: CancellationToken,
    /// The import stream's consumers (`POST /upload?url=`).
    imports: Arc<crate::import::ImportQueue>,
}

/// How one conversion attempt ended.
enum Attempt {
    Finished(Result<(), String>),
    /// `DELETE /jobs/{id}` arrived while it ran: the converter was stopped.
    Cancelled,
    /// The worker is stopping and the grace period is over: the converter was stopped.
    Interrupted,
}

impl RedisTrigger {
    pub async fn new(
        config: TriggerConfig,
        converter: Converter,
        store: Arc<dyn KeyValueBackend>,
        codecs: Arc<CodecRegistry>,
        notifier: Arc<crate::notify::Notifier>,
        metrics: Arc<crate::metrics::WorkerMetrics>,
    ) -> Result<Arc<RedisTrigger>> {
        let client = redis::Client::open(config.redis_url.as_str()).context("invalid Redis URL")?;
        let mut redis = redis_support::client::connect(client.clone()).await?;
        let created: redis::RedisResult<()> =
            redis.xgroup_create_mkstream(layout::JOB_STREAM, layout::WORKER_GROUP, "0").await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e).context("creating the worker consumer group");
        }
        let jobs = JobStorage::new(redis.clone(), store.clone());
        // The segments of long jobs are shared with every worker through the same Redis, when
        // the store they go through is one every worker reaches (a local SQLite file is not:
        // there the process encodes its segments in tasks of its own).
        if store.is_shared() {
            let segments =
                SegmentQueue::new(client.clone(), redis.clone(), store.clone(), config.consumer.clone(), config.visibility_timeout).await?;
            codecs.share_segments(Arc::new(segments));
        }
        let interrupt = CancellationToken::new();
        let fetcher = crate::import::fetch::Fetcher::new(&config.url_import_allowed_hosts).context("--url-import-allowed-hosts")?;
        let imports = Arc::new(
            crate::import::ImportQueue::new(client.clone(), redis.clone(), store.clone(), fetcher, config.consumer.clone(), config.visibility_timeout).await?,
        );
        let trigger = Arc::new(RedisTrigger { config, redis, converter, store, jobs, codecs, notifier, metrics, interrupt, imports });
        trigger.refresh_formats().await;
        Ok(trigger)
    }

    /// Reloads the plugin mapping; when it changed, tells the edge which formats exist.
    async fn refresh_formats(&self) {
        match self.codecs.refresh().await {
            Ok(false) => {}
            Ok(true) => {
                let formats: Vec<FormatInfo> = self.codecs.format_infos();
                let json = serde_json::to_vec(&formats).expect("formats serialize");
                if let Err(e) = self.store.set(layout::FORMATS_KEY, &json).await {
                    tracing::warn!(error = %format!("{e:#}"), "could not publish the format list");
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not read the codec plugin mapping"),
        }
    }

    /// (waiting to be delivered, delivered but not acknowledged) for this worker group.
    pub async fn queue_depth(&self) -> Result<(u64, u64)> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamInfoGroupsReply = redis.xinfo_groups(layout::JOB_STREAM).await?;
        let group = reply.groups.into_iter().find(|g| g.name == layout::WORKER_GROUP).context("no worker group")?;
        Ok((group.lag.unwrap_or(0) as u64, group.pending as u64))
    }

    /// Whether the queue's Redis answers.
    pub async fn redis_ok(&self) -> bool {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await.is_ok()
    }

    pub fn metrics(&self) -> &crate::metrics::WorkerMetrics {
        &self.metrics
    }

    /// Runs until `shutdown`, then lets jobs in progress finish within the grace period, and
    /// puts back on the queue those that did not.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<()> {
        let wake = Arc::new(Notify::new());
        let (grace, interrupt, stopping) = (self.config.shutdown_grace, self.interrupt.clone(), shutdown.clone());
        let grace_period = tokio::spawn(async move {
            stopping.cancelled().await;
            tokio::time::sleep(grace).await;
            interrupt.cancel();
        });
        let listener = tokio::spawn(listen(self.config.redis_url.clone(), wake.clone(), shutdown.clone()));
        let sweeper = Sweeper {
            storage: self.jobs.clone(),
            redis: self.redis.clone(),
            config: self.config.sweeper.clone(),
            metrics: self.metrics.clone(),
        };
        let sweeper = tokio::spawn(sweeper.run(shutdown.clone()));
        let callback_tests = tokio::spawn(self.notifier.clone().serve_callback_tests(self.redis.clone(), shutdown.clone()));
        // Segments are served until the jobs in flight are over: a draining worker's own jobs
        // may be waiting for segments only it is left to encode.
        let segments_stop = CancellationToken::new();
        let segments = self.codecs.segment_queue().map(|queue| {
            let loops = self.codecs.segment_threads();
            tokio::spawn(queue.serve(self.codecs.clone(), loops, segments_stop.clone()))
        });
        let imports = tokio::spawn(self.imports.clone().serve(self.config.import_concurrency, shutdown.clone()));
        let mut loops = Vec::new();
        for _ in 0..self.config.concurrency.max(1) {
            let this = self.clone();
            let (wake, shutdown) = (wake.clone(), shutdown.clone());
            loops.push(tokio::spawn(async move { this.work(wake, shutdown).await }));
        }
        tracing::info!(consumer = %self.config.consumer, concurrency = self.config.concurrency, "worker started");
        for l in loops {
            l.await?;
        }
        segments_stop.cancel();
        grace_period.abort();
        imports.await?;
        listener.abort();
        sweeper.await?;
        callback_tests.await?;
        if let Some(segments) = segments {
            segments.await?;
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    async fn work(&self, wake: Arc<Notify>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.next_entry().await {
                Ok(Some(entry)) => self.process(entry).await,
                Ok(None) => {
                    // Idle: a good moment to notice a changed plugin directory.
                    self.refresh_formats().await;
                    tokio::select! {
                        _ = wake.notified() => {},
                        _ = tokio::time::sleep(self.config.poll_interval) => {},
                        _ = shutdown.cancelled() => {},
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading the job queue failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                        _ = shutdown.cancelled() => {},
                    }
                }
            }
        }
    }

    /// A reclaimed entry of a dead worker, else a new one.
    async fn next_entry(&self) -> Result<Option<StreamId>> {
        let mut redis = self.redis.clone();
        let idle_ms = self.config.visibility_timeout.as_millis() as u64;
        let reclaimed = claim_idle_entry(&mut redis, layout::JOB_STREAM, layout::WORKER_GROUP, &self.config.consumer, idle_ms).await?;
        if let Some(entry) = reclaimed {
            tracing::info!(entry = %entry.id, "reclaimed a job from a worker that stopped answering");
            return Ok(Some(entry));
        }
        let options = StreamReadOptions::default().group(layout::WORKER_GROUP, &self.config.consumer).count(1);
        let reply: Option<StreamReadReply> = redis.xread_options(&[layout::JOB_STREAM], &[">"], &options).await?;
        Ok(reply.and_then(|r| r.keys.into_iter().next()).and_then(|k| k.ids.into_iter().next()))
    }

    async fn process(&self, entry: StreamId) {
        let heartbeat = self.heartbeat(entry.id.clone());
        let result = self.process_entry(&entry).await;
        heartbeat.cancel();
        match result {
            Ok(()) => {
                let mut redis = self.redis.clone();
                if let Err(e) = redis.xack::<_, _, _, ()>(layout::JOB_STREAM, layout::WORKER_GROUP, &[&entry.id]).await {
                    tracing::warn!(entry = %entry.id, error = %e, "could not acknowledge; the job will be seen again and skipped");
                }
            }
            Err(e) => tracing::warn!(entry = %entry.id, error = %format!("{e:#}"), "job left pending; it will be retried"),
        }
    }

    /// Keeps the entry's idle time low while it is being worked on.
    fn heartbeat(&self, entry_id: String) -> CancellationToken {
        keep_claimed(self.redis.clone(), layout::JOB_STREAM, layout::WORKER_GROUP, self.config.consumer.clone(), entry_id, self.config.visibility_timeout / 3)
    }

    /// Handles one entry. `Ok` means it may be acknowledged (done, failed for good, cancelled,
    /// requeued or dead-lettered); `Err` leaves it pending for a later attempt (e.g. storage
    /// unreachable).
    async fn process_entry(&self, entry: &StreamId) -> Result<()> {
        let payload: Option<Vec<u8>> = entry.get(layout::JOB_STREAM_FIELD);
        let message = payload.as_deref().map(JobMessage::from_json);
        let job_id = match message {
            Some(Ok(m)) if layout::is_valid_job_id(&m.job_id) => m.job_id,
            _ => {
                return self.dead_letter(&entry.id, None, "malformed queue entry").await;
            }
        };
        let Some(mut job) = self.jobs.load(&job_id).await? else {
            tracing::info!(job = %job_id, "queued job has no record (deleted); dropping it");
            // A worker that died converting it may have left output chunks and segments behind.
            self.jobs.purge(&job_id, None).await?;
            return Ok(());
        };
        if self.jobs.is_cancelled(&job_id).await? {
            return self.cancelled(&job_id, &job.owner).await;
        }
        if job.status.is_final() {
            // Seen again after it ended (a redelivery): make sure it gave back what it holds.
            return self.jobs.finish(&mut job).await.map(drop);
        }
        if job.status == JobStatus::Uploading {
            // A resumable upload is queued by its last byte, which then enqueues it anew.
            tracing::warn!(job = %job_id, "an entry for a job still uploading; dropping it");
            return Ok(());
        }
        if job.status == JobStatus::Converting {
            // The last attempt of this run never ended: its worker stopped (a restart, a
            // deployment, a crash) while it converted. That is not the job's failure.
            job.interrupted += 1;
            tracing::info!(job = %job_id, attempt = job.attempts, interrupted = job.interrupted, "resuming a job whose worker stopped while converting it");
        }
        if job.interrupted > MAX_INTERRUPTIONS {
            job.status = JobStatus::Failed;
            job.error = Some(format!("the conversion was interrupted {} times by its worker stopping; giving up", job.interrupted));
            return self.give_up(&entry.id, &mut job, None).await;
        }
        if job.counted_attempts() >= self.config.max_attempts {
            job.attempts += 1;
            return self.give_up(&entry.id, &mut job, None).await;
        }
        job.attempts = self.jobs.claim_attempt(&job).await?;
        self.jobs.save(&mut job).await?;
        self.refresh_formats().await;
        // This attempt owns the job while the record is of its run and attempt: a retry (a new
        // run) or another worker that took the entry over (a new attempt) makes it stale.
        let (run, attempt_number) = (job.run, job.attempts);

        let owner = job.owner.clone();
        // Interrupted attempts are not counted: the last attempt is the one after as many more.
        let max_attempts = self.config.max_attempts + job.interrupted;
        let delivery = Delivery { job_id: job_id.clone(), attempt: job.attempts, max_attempts };
        let started = std::time::Instant::now();
        self.metrics.started();
        let attempt = tokio::select! {
            outcome = self.converter.run(&delivery) => Attempt::Finished(outcome),
            () = self.watch_cancellation(&job_id) => Attempt::Cancelled,
            () = self.interrupt.cancelled() => Attempt::Interrupted,
        };
        let reloaded = self.jobs.load(&job_id).await?;
        self.metrics.finished(reloaded.as_ref().map_or(JobStatus::Failed, |j| j.status), started.elapsed());
        let outcome = match attempt {
            Attempt::Cancelled => return self.cancelled(&job_id, &owner).await,
            Attempt::Interrupted
                if reloaded.as_ref().is_some_and(|j| (j.run, j.attempts) == (run, attempt_number) && !j.status.is_final()) =>
            {
                let mut job = reloaded.context("checked above")?;
                return self.requeue_interrupted(&mut job).await;
            }
            // It ended just as the grace period did, or is another attempt's now.
            Attempt::Interrupted => Ok(()),
            Attempt::Finished(_) if reloaded.is_none() || self.jobs.is_cancelled(&job_id).await? => {
                return self.cancelled(&job_id, &owner).await;
            }
            Attempt::Finished(outcome) => outcome,
        };
        let mut job = reloaded.context("the job record vanished during conversion")?;
        if (job.run, job.attempts) != (run, attempt_number) {
            // Whatever this attempt did or did not do, the job is a newer attempt's now: its
            // output, its record and its notification are not this one's to touch.
            tracing::warn!(
                job = %job_id, run, attempt = attempt_number, current_run = job.run, current_attempt = job.attempts,
                "a newer attempt owns the job; this one leaves it alone"
            );
            return Ok(());
        }
        match outcome {
            // Also when the converter failed after it stored the final status: the job ended.
            _ if job.status == JobStatus::Done || (outcome.is_ok() && job.status.is_final()) => {
                match job.status {
                    JobStatus::Failed => tracing::warn!(
                        job = %job_id, owner = %job.owner, reason = job.error.as_deref().unwrap_or("-"), "conversion failed"
                    ),
                    _ => tracing::info!(
                        job = %job_id, owner = %job.owner, format = %job.options.format,
                        elapsed_ms = started.elapsed().as_millis() as u64, "conversion done"
                    ),
                }
                if self.jobs.finish(&mut job).await? {
                    self.notifier.job_finished(job);
                }
                Ok(())
            }
            Ok(()) => Err(anyhow::anyhow!("the converter returned without finishing job {job_id}")),
            Err(reason) if delivery.is_last_attempt() => self.give_up(&entry.id, &mut job, Some(reason)).await,
            Err(reason) => {
                // Retry now with a fresh entry; the attempt count lives on the record.
                self.jobs.discard_attempt(&job).await?;
                if !job.status.is_final() {
                    job.status = JobStatus::Queued;
                    if job.error.is_none() || reason.contains("crashed") {
                        job.error = Some(delivery.failure_reason(&reason));
                    }
                    self.jobs.save(&mut job).await?;
                }
                tracing::warn!(job = %job_id, attempt = delivery.attempt, %reason, "conversion attempt failed; requeued");
                let mut redis = self.redis.clone();
                let _: String = redis
                    .xadd(layout::JOB_STREAM, "*", &[(layout::JOB_STREAM_FIELD, JobMessage { job_id }.to_json())])
                    .await?;
                Ok(())
            }
        }
    }

    /// An attempt interrupted by the worker's stop: what it wrote goes, and the job goes back
    /// on the queue at once for the next worker (a restarted one, another pod), without the
    /// attempt counting against `max_attempts`.
    async fn requeue_interrupted(&self, job: &mut Job) -> Result<()> {
        self.jobs.discard_attempt(job).await?;
        job.status = JobStatus::Queued;
        job.progress = 0;
        job.interrupted += 1;
        self.jobs.save(job).await?;
        let mut redis = self.redis.clone();
        let _: String =
            redis.xadd(layout::JOB_STREAM, "*", &[(layout::JOB_STREAM_FIELD, JobMessage { job_id: job.id.clone() }.to_json())]).await?;
        tracing::info!(job = %job.id, attempt = job.attempts, "the worker is stopping: conversion interrupted and put back on the queue");
        Ok(())
    }

    /// Resolves when the job is deleted (polled every `cancel_poll`).
    async fn watch_cancellation(&self, job_id: &str) {
        loop {
            tokio::time::sleep(self.config.cancel_poll).await;
            match self.jobs.is_cancelled(job_id).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(job = %job_id, error = %format!("{e:#}"), "could not check for cancellation"),
            }
        }
    }

    /// A deleted job: whatever it or its conversion stored goes; no notification.
    async fn cancelled(&self, job_id: &str, owner: &str) -> Result<()> {
        self.jobs.purge(job_id, Some(owner)).await?;
        self.metrics.cancelled();
        tracing::info!(job = %job_id, "job deleted while queued or converting; cancelled and removed");
        Ok(())
    }

    /// Fails the job for good and moves its entry to the dead-letter stream (unless it was
    /// deleted meanwhile, or a retry started a newer run: then there is nothing to report).
    async fn give_up(&self, entry_id: &str, job: &mut Job, reason: Option<String>) -> Result<()> {
        // The converter's own record of what went wrong is more precise than a generic
        // "attempt failed"; a crash is only known to the host.
        let reason = match (reason, job.error.clone()) {
            (Some(r), Some(recorded)) if !r.contains("crashed") => recorded,
            (Some(r), _) => r,
            (None, Some(recorded)) => recorded,
            (None, None) => "unknown error".into(),
        };
        let ended = if job.status != JobStatus::Done {
            // A converter that failed its last attempt already wrote the final reason, and a
            // reader may have seen it: it stays as written.
            if job.status != JobStatus::Failed || job.error.is_none() {
                job.error = Some(format!("gave up after {} attempts: {reason}", self.config.max_attempts));
            }
            job.status = JobStatus::Failed;
            job.attempts = job.attempts.min(self.config.max_attempts);
            let ended = self.jobs.finish(job).await?;
            if ended {
                self.publish_completion(job).await;
                self.notifier.job_finished(job.clone());
            }
            ended
        } else {
            self.jobs.finish(job).await?
        };
        if !ended {
            return Ok(());
        }
        self.dead_letter(entry_id, Some(&job.id), job.error.as_deref().unwrap_or("failed")).await
    }

    async fn dead_letter(&self, entry_id: &str, job_id: Option<&str>, reason: &str) -> Result<()> {
        tracing::warn!(entry = %entry_id, job = ?job_id, %reason, "dead-lettering job");
        // The dead letters are for people to look at: the newest ten thousand are kept, and a
        // job's go with it when it is deleted or expires.
        let _: String = redis::cmd("EVAL")
            .arg(lifecycle::DEAD_LETTER_SCRIPT)
            .arg(2)
            .arg(layout::DEAD_LETTER_STREAM)
            .arg(lifecycle::dead_letters_key(job_id.unwrap_or("")))
            .arg(entry_id)
            .arg(job_id.unwrap_or(""))
            .arg(reason)
            .query_async(&mut self.redis.clone())
            .await?;
        self.metrics.dead_lettered();
        Ok(())
    }

    async fn publish_completion(&self, job: &Job) {
        let message = Completion { job_id: job.id.clone(), status: job.status, error: job.error.clone() };
        let mut redis = self.redis.clone();
        if let Err(e) = redis.publish::<_, _, ()>(layout::DONE_CHANNEL, message.to_json()).await {
            tracing::warn!(job = %job.id, error = %e, "could not publish completion");
        }
    }
}

/// Wakes idle workers when the gateway publishes a new job.
async fn listen(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    use futures::StreamExt;
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(layout::JOB_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        }
        .await;
        match subscribed {
            Ok(mut pubsub) => {
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(_) => wake.notify_waiters(),
                            None => break,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "job channel subscription failed; polling only"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            _ = shutdown.cancelled() => return,
        }
    }
}
