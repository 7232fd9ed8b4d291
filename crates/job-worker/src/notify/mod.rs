//! Notifications when a job ends: an e-mail to the owner and a signed webhook to the job's
//! callback URL. They run in the worker, natively, in a task of their own after the job's final
//! status is stored, so a slow or failing SMTP server or receiver never delays or fails a
//! conversion. Every attempt is appended to the job record (`notifications`), which
//! `GET /jobs/{id}` shows. Users' test events to their webhook go through the same sender.

pub mod callback_test;
pub mod email;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use job_model::{Job, JobStatus, NotificationAttempt, layout, naming};

use spin_host::interfaces::key_value::KeyValueBackend;

/// Notification settings (flags or environment).
#[derive(Parser, Debug, Clone)]
pub struct NotifyOptions {
    /// Base URL users reach the platform at, for links in e-mails and webhooks.
    #[arg(long, env = "MP3EDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub email: email::EmailOptions,
    /// HMAC-SHA256 key for webhook signatures; webhooks are off without one.
    #[arg(long, env = "MP3EDGE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Hosts (or host:port) webhooks may reach even though they are loopback or private.
    #[arg(long, env = "SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS", default_value = "")]
    pub webhook_allowed_hosts: String,
    /// Tries per webhook before giving up.
    #[arg(long, default_value_t = 5)]
    pub webhook_max_attempts: u32,
    /// Wait before the first retry; doubles after each failure (capped at 5 minutes).
    #[arg(long, default_value_t = 1000)]
    pub webhook_backoff_ms: u64,
    /// Per-attempt timeout of a webhook call.
    #[arg(long, default_value_t = 10)]
    pub webhook_timeout_secs: u64,
}

pub struct Notifier {
    public_url: String,
    mailer: Option<email::Mailer>,
    webhooks: Option<webhook::WebhookSender>,
    store: Arc<dyn KeyValueBackend>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What to tell about a finished job, shared by both channels.
pub struct Outcome<'a> {
    pub job: &'a Job,
    pub download_url: String,
    pub output_name: String,
}

impl Notifier {
    pub fn new(options: &NotifyOptions, default_public_url: &str, store: Arc<dyn KeyValueBackend>) -> anyhow::Result<Notifier> {
        let public_url = options.public_url.clone().unwrap_or_else(|| default_public_url.to_string()).trim_end_matches('/').to_string();
        let mailer = email::Mailer::from_options(&options.email)?;
        let webhooks = match &options.webhook_secret {
            Some(secret) if !secret.is_empty() => Some(webhook::WebhookSender {
                secret: secret.clone(),
                allow_list: options.webhook_allowed_hosts.clone(),
                max_attempts: options.webhook_max_attempts.max(1),
                backoff: Duration::from_millis(options.webhook_backoff_ms),
                timeout: Duration::from_secs(options.webhook_timeout_secs.max(1)),
            }),
            _ => {
                tracing::warn!("no webhook secret (MP3EDGE_WEBHOOK_SECRET): webhooks are off");
                None
            }
        };
        if mailer.is_none() {
            tracing::info!("no SMTP server configured (MP3EDGE_SMTP_HOST): e-mail notifications are off");
        }
        Ok(Notifier { public_url, mailer, webhooks, store })
    }

    /// Sends the notifications for a job that reached a final state, in the background.
    pub fn job_finished(self: &Arc<Self>, job: Job) {
        if !job.status.is_final() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.notify(job).await });
    }

    async fn notify(&self, job: Job) {
        let extension = job.output.as_ref().and_then(|o| o.extension.clone()).unwrap_or_else(|| job.options.format.clone());
        let outcome = Outcome {
            job: &job,
            download_url: format!("{}/jobs/{}/audio", self.public_url, job.id),
            output_name: naming::output_name(&job.source_name, &extension),
        };
        if let Some(mailer) = &self.mailer {
            let result = mailer.send(&outcome, &self.public_url).await;
            self.record(&job.id, "email", &job.owner, 1, result).await;
        }
        if let Some(url) = &job.callback_url {
            match &self.webhooks {
                Some(sender) => {
                    let body = webhook::event_body(&outcome);
                    for attempt in 1..=sender.max_attempts {
                        let result = sender.deliver(url, event_type(&job), &body).await;
                        let ok = result.is_ok();
                        let permanent = matches!(&result, Err(e) if e == webhook::REFUSED);
                        self.record(&job.id, "webhook", url, attempt, result).await;
                        if ok || permanent {
                            break;
                        }
                        if attempt < sender.max_attempts {
                            tokio::time::sleep(sender.backoff_before(attempt + 1)).await;
                        }
                    }
                }
                None => self.record(&job.id, "webhook", url, 1, Err("webhooks are not configured on this worker".into())).await,
            }
        }
    }

    /// Appends one attempt to the job record.
    async fn record(&self, job_id: &str, channel: &str, target: &str, attempt: u32, result: Result<String, String>) {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        if ok {
            tracing::info!(job = %job_id, %channel, %target, attempt, %detail, "notification delivered");
        } else {
            tracing::warn!(job = %job_id, %channel, %target, attempt, %detail, "notification failed");
        }
        let key = layout::job_key(job_id);
        let updated = async {
            let mut job = Job::from_json(&self.store.get(&key).await?.ok_or_else(|| anyhow::anyhow!("job record vanished"))?)?;
            job.notifications.push(NotificationAttempt { channel: channel.into(), target: target.into(), attempt, at: now(), ok, detail });
            self.store.set(&key, &job.to_json()).await
        }
        .await;
        if let Err(e) = updated {
            tracing::warn!(job = %job_id, error = %format!("{e:#}"), "could not record a notification attempt");
        }
    }
}

/// `job.done` or `job.failed`.
pub fn event_type(job: &Job) -> &'static str {
    match job.status {
        JobStatus::Done => "job.done",
        _ => "job.failed",
    }
}
