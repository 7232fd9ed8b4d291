//! The job record's lifecycle around one conversion attempt, and the completion message.

use job_model::{Completion, Delivery, Job, JobStatus, layout};
use spin_sdk::key_value::Store;

use crate::convert::{self, Failure};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn load(store: &Store, job_id: &str) -> anyhow::Result<Option<Job>> {
    match store.get(&layout::job_key(job_id))? {
        Some(bytes) => Ok(Some(Job::from_json(&bytes)?)),
        None => Ok(None),
    }
}

/// Writes the record, if it is still this attempt's: the stored one is of the same run and
/// attempt. A retry (a new run) or a worker that took the job over (a new attempt) owns it
/// otherwise, and this attempt must not write over what that one recorded.
fn save(store: &Store, job: &mut Job) -> anyhow::Result<()> {
    match load(store, &job.id)? {
        Some(stored) if (stored.run, stored.attempts) == (job.run, job.attempts) => {}
        Some(stored) => anyhow::bail!(
            "job {}: a newer attempt owns it (run {}, attempt {}; this is run {}, attempt {})",
            job.id, stored.run, stored.attempts, job.run, job.attempts
        ),
        None => anyhow::bail!("job {}: the record is gone", job.id),
    }
    job.updated_at = now();
    store.set(&layout::job_key(&job.id), &job.to_json())?;
    Ok(())
}

/// Tells listeners (notifications, live status) that a job ended. Best effort: the record is
/// the truth, a lost message only delays a notification. Without a job queue (`redis_address`
/// empty: a local one-shot conversion) nobody listens.
fn publish_completion(job: &Job) {
    if spin_sdk::variables::get("redis_address").is_ok_and(|address| address.is_empty()) {
        return;
    }
    let message = Completion { job_id: job.id.clone(), status: job.status, error: job.error.clone() };
    let sent = spin_sdk::variables::get("redis_address")
        .map_err(|e| e.to_string())
        .and_then(|address| spin_sdk::redis::Connection::open(&address).map_err(|e| e.to_string()))
        .and_then(|conn| conn.publish(layout::DONE_CHANNEL, &message.to_json()).map_err(|e| e.to_string()));
    if let Err(e) = sent {
        eprintln!("job {}: could not publish completion: {e}", job.id);
    }
}

/// Runs one attempt at the delivered job. `Err` means the attempt failed in a way worth
/// retrying; the record says why.
pub fn run(delivery: &Delivery) -> anyhow::Result<()> {
    let store = Store::open_default()?;
    let Some(mut job) = load(&store, &delivery.job_id)? else {
        eprintln!("job {}: no record, nothing to do", delivery.job_id);
        return Ok(());
    };
    if job.status.is_final() {
        return Ok(());
    }
    if job.attempts != delivery.attempt {
        anyhow::bail!("job {}: attempt {} was started after this one ({})", job.id, job.attempts, delivery.attempt);
    }
    job.status = JobStatus::Converting;
    job.progress = 0;
    save(&store, &mut job)?;

    let result = convert::convert(&store, &mut job, |job, percent| {
        job.progress = percent;
        if let Err(e) = save(&store, job) {
            eprintln!("job {}: could not record progress: {e}", job.id);
        }
    });
    match result {
        Ok(output) => {
            job.status = JobStatus::Done;
            job.progress = 100;
            job.error = None;
            job.output = Some(output);
            save(&store, &mut job)?;
            publish_completion(&job);
            Ok(())
        }
        Err(failure @ (Failure::Permanent(_) | Failure::Unusable(_))) => {
            let (reason, unusable) = match failure {
                Failure::Unusable(reason) => (reason, true),
                Failure::Permanent(reason) | Failure::Transient(reason) => (reason, false),
            };
            job.status = JobStatus::Failed;
            job.error = Some(reason);
            job.source_unusable = unusable;
            save(&store, &mut job)?;
            publish_completion(&job);
            Ok(())
        }
        Err(Failure::Transient(reason)) => {
            job.error = Some(delivery.failure_reason(&reason));
            job.status = if delivery.is_last_attempt() { JobStatus::Failed } else { JobStatus::Queued };
            save(&store, &mut job)?;
            if job.status == JobStatus::Failed {
                publish_completion(&job);
            }
            anyhow::bail!("job {}: {reason}", job.id)
        }
    }
}
