//! The worker's side of the storage lifecycle (see `job_model::lifecycle` for the layout):
//! what a job holds is given back when it is no longer needed, and nothing is left behind.
//!
//! * [`JobStorage::finish`]: a job that ended gives back what it no longer needs (the source
//!   once the output is stored, a failed attempt's partial output), leaves the owner's jobs in
//!   flight and is scheduled for expiry after its retention.
//! * [`JobStorage::discard_attempt`]: a failed attempt's partial output goes.
//! * [`JobStorage::purge`]: a deleted, cancelled or expired job goes entirely, including chunks
//!   its record does not list (a conversion cut short).
//! * [`sweeper`]: deletes expired jobs and abandoned uploads, safely with many workers.
//!
//! Every step is idempotent, and chunks and counters go before the record, so a worker that
//! dies half-way leaves a record that leads the next one to finish the work. What a run of a
//! job finishes is done only while that run is still the job's ([`JobStorage::current_run`]):
//! a stale attempt never frees or rewrites what a retry is working on.

pub mod sweeper;

use std::sync::Arc;

use anyhow::{Context, Result};
use job_model::lifecycle::{self, FORGET_SCRIPT, forget_keys};
use job_model::{Job, JobStatus, layout};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use spin_host::interfaces::key_value::KeyValueBackend;

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A job's storage: its record and chunks in the key-value store, its accounting in Redis.
#[derive(Clone)]
pub struct JobStorage {
    redis: ConnectionManager,
    store: Arc<dyn KeyValueBackend>,
}

impl JobStorage {
    pub fn new(redis: ConnectionManager, store: Arc<dyn KeyValueBackend>) -> JobStorage {
        JobStorage { redis, store }
    }

    pub async fn load(&self, job_id: &str) -> Result<Option<Job>> {
        match self.store.get(&layout::job_key(job_id)).await? {
            Some(bytes) => Ok(Some(Job::from_json(&bytes).context("unreadable job record")?)),
            None => Ok(None),
        }
    }

    pub async fn save(&self, job: &mut Job) -> Result<()> {
        job.updated_at = now();
        self.store.set(&layout::job_key(&job.id), &job.to_json()).await
    }

    /// The job's current run (`job_model::lifecycle::run_key`; absent: 0, the upload's).
    pub async fn current_run(&self, job_id: &str) -> Result<u32> {
        let run: Option<u32> = self.redis.clone().get(lifecycle::run_key(job_id)).await?;
        Ok(run.unwrap_or(0))
    }

    /// Numbers a new attempt at the job's run: one more than the record counts and than any
    /// attempt of the run already started, atomically, so two deliveries of the job that start
    /// together never both take the same number (and both think they own the record).
    pub async fn claim_attempt(&self, job: &Job) -> Result<u32> {
        let attempt: u32 = redis::cmd("EVAL")
            .arg(lifecycle::CLAIM_ATTEMPT_SCRIPT)
            .arg(1)
            .arg(lifecycle::attempt_key(&job.id))
            .arg(job.run)
            .arg(job.attempts)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(attempt)
    }

    /// Whether `DELETE /jobs/{id}` asked for the job to go.
    pub async fn is_cancelled(&self, job_id: &str) -> Result<bool> {
        Ok(self.redis.clone().exists(lifecycle::cancelled_key(job_id)).await?)
    }

    /// Deletes chunks `key(first)`, `key(first + 1)`, … : at least up to `known`, and on while
    /// they exist (chunks are written in order, so the first gap ends a file). The end is found
    /// first and the chunks go from the last down, so an interrupted run always leaves an
    /// unbroken run from `first` that the next run finds and finishes.
    async fn delete_chunks(&self, first: u32, known: u32, key: impl Fn(u32) -> String) -> Result<()> {
        let mut end = known.max(first);
        while self.store.exists(&key(end)).await? {
            end += 1;
        }
        for index in (first..end).rev() {
            self.store.delete(&key(index)).await?;
        }
        Ok(())
    }

    /// Output chunks are written from 1 on, chunk 0 last: 1.. first, then 0.
    async fn delete_output_chunks(&self, job_id: &str, known: u32) -> Result<()> {
        self.delete_chunks(1, known, |n| layout::output_chunk_key(job_id, n)).await?;
        self.store.delete(&layout::output_chunk_key(job_id, 0)).await
    }

    /// A failed attempt's partial output goes, and stops counting, with any segments of it.
    pub async fn discard_attempt(&self, job: &Job) -> Result<()> {
        codec_host::forget_segments(&mut self.redis.clone(), self.store.as_ref(), &job.id).await?;
        self.delete_output_chunks(&job.id, 0).await?;
        let _: () = self.redis.clone().hdel(lifecycle::usage_key(&job.owner), lifecycle::output_field(&job.id)).await?;
        Ok(())
    }

    /// A job that ended (done, or failed for good) gives back what it no longer needs and is
    /// scheduled for expiry. Idempotent: a redelivered final job runs it again harmlessly.
    /// `false` when the job was deleted meanwhile (it is then purged, never saved again), or
    /// when a retry has started a newer run (nothing is touched: the output chunks, the
    /// record and the accounting are the new run's).
    pub async fn finish(&self, job: &mut Job) -> Result<bool> {
        if self.is_cancelled(&job.id).await? {
            self.purge(&job.id, Some(&job.owner)).await?;
            return Ok(false);
        }
        let current = self.current_run(&job.id).await?;
        if current != job.run {
            tracing::info!(job = %job.id, run = job.run, current, "a retry started a newer run; this one's end changes nothing");
            return Ok(false);
        }
        let mut redis = self.redis.clone();
        let usage = lifecycle::usage_key(&job.owner);
        match job.status {
            JobStatus::Done if !job.source_freed => {
                self.delete_chunks(0, job.source.chunks, |n| layout::source_chunk_key(&job.id, n)).await?;
                let _: () = redis.hdel(&usage, lifecycle::source_field(&job.id)).await?;
                job.source_freed = true;
            }
            JobStatus::Failed => {
                // The source stays (for a retry); a partial output does not.
                if job.output.is_none() {
                    self.discard_attempt(job).await?;
                }
            }
            _ => {}
        }
        if job.status.is_final() && job.expires_at.is_none() {
            let finished = job.finished_at.unwrap_or_else(now);
            job.finished_at = Some(finished);
            job.expires_at = Some(finished.saturating_add(job.policy.retention_secs));
        }
        self.save(job).await?;
        if let Some(expires_at) = job.expires_at {
            let _: () = redis.zadd(lifecycle::EXPIRY_SET, &job.id, expires_at).await?;
        }
        let _: () = redis.srem(lifecycle::active_key(&job.owner), &job.id).await?;
        Ok(true)
    }

    /// Removes the job entirely: chunks (those its record lists and any a conversion cut short
    /// left), its accounting, and the record last. `owner` is needed when the record is gone
    /// already (a `DELETE` that raced a running conversion).
    pub async fn purge(&self, job_id: &str, owner: Option<&str>) -> Result<()> {
        let job = self.load(job_id).await?;
        let (source_chunks, output_chunks) = match &job {
            Some(job) => (if job.source_freed { 0 } else { job.source.chunks }, job.output.as_ref().map_or(0, |o| o.file.chunks)),
            None => (0, 0),
        };
        self.delete_chunks(0, source_chunks, |n| layout::source_chunk_key(job_id, n)).await?;
        self.delete_output_chunks(job_id, output_chunks).await?;
        codec_host::forget_segments(&mut self.redis.clone(), self.store.as_ref(), job_id).await?;
        let owners = job.as_ref().map(|j| j.owner.as_str()).into_iter().chain(owner).collect::<Vec<_>>();
        for owner in owners {
            let mut forget = redis::cmd("EVAL");
            let keys = forget_keys(owner, job_id);
            forget.arg(FORGET_SCRIPT).arg(keys.len());
            for key in keys {
                forget.arg(key);
            }
            let _: i64 = forget.arg(job_id).query_async(&mut self.redis.clone()).await?;
        }
        self.store.delete(&layout::job_key(job_id)).await?;
        Ok(())
    }
}
