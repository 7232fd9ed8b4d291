//! Worker metrics in the Prometheus text format: jobs done, failed, dead-lettered, in flight,
//! and time spent converting. Counters only move forward; the queue's depth is read from Redis
//! when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use job_model::JobStatus;

#[derive(Default)]
pub struct WorkerMetrics {
    done: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    in_flight: AtomicU64,
    conversion_micros: AtomicU64,
    conversions: AtomicU64,
    cancelled: AtomicU64,
    expired: AtomicU64,
    abandoned_uploads: AtomicU64,
}

impl WorkerMetrics {
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finished(&self, status: JobStatus, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.conversions.fetch_add(1, Ordering::Relaxed);
        self.conversion_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        match status {
            JobStatus::Done => &self.done,
            JobStatus::Failed => &self.failed,
            JobStatus::Uploading | JobStatus::Queued | JobStatus::Converting => &self.retried,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn expired(&self) {
        self.expired.fetch_add(1, Ordering::Relaxed);
    }

    pub fn abandoned_upload(&self) {
        self.abandoned_uploads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics as Prometheus text; `queue` is (waiting, pending) when known.
    pub fn render(&self, queue: Option<(u64, u64)>) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        metric("mp3edge_jobs_done_total", "counter", "Jobs converted.", get(&self.done));
        metric("mp3edge_jobs_failed_total", "counter", "Attempts that ended a job as failed.", get(&self.failed));
        metric("mp3edge_jobs_retried_total", "counter", "Attempts that failed and were requeued.", get(&self.retried));
        metric("mp3edge_jobs_dead_lettered_total", "counter", "Jobs moved to the dead-letter stream.", get(&self.dead_lettered));
        metric("mp3edge_jobs_cancelled_total", "counter", "Jobs deleted while queued or converting.", get(&self.cancelled));
        metric("mp3edge_jobs_expired_total", "counter", "Finished jobs deleted after their retention.", get(&self.expired));
        metric("mp3edge_uploads_abandoned_total", "counter", "Abandoned uploads whose chunks were removed.", get(&self.abandoned_uploads));
        metric("mp3edge_jobs_in_flight", "gauge", "Jobs being converted now.", get(&self.in_flight));
        let seconds = self.conversion_micros.load(Ordering::Relaxed) as f64 / 1e6;
        metric("mp3edge_conversion_seconds_sum", "counter", "Time spent converting.", format!("{seconds:.6}"));
        metric("mp3edge_conversion_seconds_count", "counter", "Conversion attempts timed.", get(&self.conversions));
        if let Some((waiting, pending)) = queue {
            metric("mp3edge_queue_lag", "gauge", "Jobs in the stream not yet delivered to a worker.", waiting.to_string());
            metric("mp3edge_queue_pending", "gauge", "Jobs delivered but not yet acknowledged.", pending.to_string());
        }
        media::sandbox::render_metrics(&mut out);
        out
    }
}
