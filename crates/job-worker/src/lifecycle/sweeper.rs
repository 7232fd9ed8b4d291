//! The sweeper every worker runs: it deletes finished jobs whose retention has passed, finishes
//! `DELETE`s that were cut short, removes uploads that were abandoned half-way (a client that
//! vanished, a component that trapped), and keeps the job stream short.
//!
//! Work is claimed with an atomic lease in Redis (`CLAIM_DUE_SCRIPT`), so with many workers
//! each job is swept once; a sweeper that dies mid-way lets its lease run out and another one
//! finishes. The schedules live in Redis, so restarts lose nothing.

use std::time::Duration;

use anyhow::Result;
use job_model::layout;
use job_model::lifecycle::{self, CLAIM_DUE_SCRIPT};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{JobStorage, now};

#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// How often to look for due work.
    pub interval: Duration,
    /// How long a claim is exclusive before another sweeper may take it over.
    pub lease: Duration,
    /// Most jobs claimed per look.
    pub batch: usize,
    /// Consumers idle this long that hold no job are removed from the worker group.
    pub idle_consumer: Duration,
    /// How often the stream is trimmed and the group tidied.
    pub tidy_every: Duration,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        SweeperConfig {
            interval: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            batch: 50,
            idle_consumer: Duration::from_secs(3600),
            tidy_every: Duration::from_secs(60),
        }
    }
}

pub struct Sweeper {
    pub storage: JobStorage,
    pub redis: ConnectionManager,
    pub config: SweeperConfig,
    pub metrics: std::sync::Arc<crate::metrics::WorkerMetrics>,
}

impl Sweeper {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tidied: Option<std::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if let Err(e) = self.sweep_expired().await {
                tracing::warn!(error = %format!("{e:#}"), "sweeping expired jobs failed; retrying");
            }
            if let Err(e) = self.sweep_abandoned_uploads().await {
                tracing::warn!(error = %format!("{e:#}"), "sweeping abandoned uploads failed; retrying");
            }
            if tidied.is_none_or(|at| at.elapsed() >= self.config.tidy_every) {
                tidied = Some(std::time::Instant::now());
                if let Err(e) = self.tidy_stream().await {
                    tracing::warn!(error = %format!("{e:#}"), "trimming the job stream failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {},
                _ = shutdown.cancelled() => {},
            }
        }
    }

    /// Members of `schedule` that are due, each now leased to this sweeper.
    async fn claim_due(&self, schedule: &str) -> Result<Vec<String>> {
        let now = now();
        let claimed: Vec<String> = redis::cmd("EVAL")
            .arg(CLAIM_DUE_SCRIPT)
            .arg(1)
            .arg(schedule)
            .arg(now)
            .arg(now + self.config.lease.as_secs())
            .arg(self.config.batch)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(claimed)
    }

    /// Deletes the jobs whose time has come: those past their retention, and those whose
    /// `DELETE` did not finish (the tombstone names the owner, whose accounting goes too, also
    /// once the record is gone).
    pub async fn sweep_expired(&self) -> Result<()> {
        for job_id in self.claim_due(lifecycle::EXPIRY_SET).await? {
            let mut redis = self.redis.clone();
            let tombstone: Option<String> = redis.get(lifecycle::cancelled_key(&job_id)).await?;
            if let Some(owner) = tombstone.as_deref().and_then(lifecycle::tombstone_owner) {
                self.storage.purge(&job_id, Some(owner)).await?;
                let _: () = redis.zrem(lifecycle::EXPIRY_SET, &job_id).await?;
                tracing::info!(job = %job_id, "deleted job's removal finished");
                continue;
            }
            match self.storage.load(&job_id).await? {
                // Retried since it was scheduled: it is no longer due.
                Some(job) if !job.status.is_final() => {
                    let _: () = redis.zrem(lifecycle::EXPIRY_SET, &job_id).await?;
                }
                Some(job) if let Some(at) = job.expires_at.filter(|&at| at > now()) => {
                    let _: () = redis.zadd(lifecycle::EXPIRY_SET, &job_id, at).await?;
                }
                _ => {
                    self.storage.purge(&job_id, None).await?;
                    let _: () = redis.zrem(lifecycle::EXPIRY_SET, &job_id).await?;
                    self.metrics.expired();
                    tracing::info!(job = %job_id, "expired job deleted");
                }
            }
        }
        Ok(())
    }

    pub async fn sweep_abandoned_uploads(&self) -> Result<()> {
        for job_id in self.claim_due(lifecycle::PENDING_DEADLINES).await? {
            let mut redis = self.redis.clone();
            let owner: Option<String> = redis.hget(lifecycle::PENDING_UPLOADS, &job_id).await?;
            // Whether or not its record was stored (or even queued), the client never got its
            // 202: the upload goes, and a worker that took it meanwhile is told to stop.
            let tombstone = lifecycle::cancelled_key(&job_id);
            let _: () = redis.set_ex(&tombstone, 1, lifecycle::TOMBSTONE_SECS).await?;
            self.storage.purge(&job_id, owner.as_deref()).await?;
            self.metrics.abandoned_upload();
            tracing::info!(job = %job_id, "abandoned upload removed");
            let _: () = redis.hdel(lifecycle::PENDING_UPLOADS, &job_id).await?;
            let _: () = redis.zrem(lifecycle::PENDING_DEADLINES, &job_id).await?;
        }
        Ok(())
    }

    /// Trims stream entries every consumer has acknowledged, and removes consumers (workers that
    /// are gone) that hold nothing and have been idle long.
    pub async fn tidy_stream(&self) -> Result<()> {
        let mut redis = self.redis.clone();
        let groups: redis::streams::StreamInfoGroupsReply = redis.xinfo_groups(layout::JOB_STREAM).await?;
        let Some(group) = groups.groups.into_iter().find(|g| g.name == layout::WORKER_GROUP) else {
            return Ok(());
        };
        // Entries older than the oldest still pending, and than the last delivered, are done.
        let pending: redis::streams::StreamPendingReply = redis.xpending(layout::JOB_STREAM, layout::WORKER_GROUP).await?;
        let oldest_pending = match pending {
            redis::streams::StreamPendingReply::Data(data) => Some(data.start_id),
            _ => None,
        };
        let keep_from = match oldest_pending {
            Some(id) => id,
            None => next_id(&group.last_delivered_id),
        };
        let _: i64 = redis::cmd("XTRIM").arg(layout::JOB_STREAM).arg("MINID").arg(&keep_from).query_async(&mut redis).await?;
        let consumers: redis::streams::StreamInfoConsumersReply =
            redis.xinfo_consumers(layout::JOB_STREAM, layout::WORKER_GROUP).await?;
        let idle_ms = self.config.idle_consumer.as_millis() as usize;
        for consumer in consumers.consumers {
            if consumer.pending == 0 && consumer.idle > idle_ms {
                tracing::info!(consumer = %consumer.name, "removing a worker that is gone from the group");
                let _: i64 = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(layout::JOB_STREAM)
                    .arg(layout::WORKER_GROUP)
                    .arg(&consumer.name)
                    .query_async(&mut redis)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The stream id just after `id` (`ms-seq` → `ms-(seq+1)`).
fn next_id(id: &str) -> String {
    match id.split_once('-') {
        Some((ms, seq)) => format!("{ms}-{}", seq.parse::<u64>().map_or(0, |s| s + 1)),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stream_ids() {
        assert_eq!(next_id("1700000000000-0"), "1700000000000-1");
        assert_eq!(next_id("5-41"), "5-42");
        assert_eq!(next_id("0-0"), "0-1");
    }
}
