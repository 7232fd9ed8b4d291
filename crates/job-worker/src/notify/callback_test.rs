//! Users' "send a test event" (`job_model::callback_test`): the worker takes each request off
//! the job queue's Redis, sends a signed `ping` event to the user's webhook through the same
//! sender (and the same address checks) as a job's event, once, and writes the outcome where
//! `GET /users/me` reads it.

use std::sync::Arc;
use std::time::Duration;

use job_model::callback_test::{self, CallbackTestRequest, CallbackTestStatus};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{Notifier, now};

/// How often the request list is looked at.
const POLL: Duration = Duration::from_secs(1);

impl Notifier {
    /// Serves test-event requests until `shutdown` (every worker does; each request is taken by
    /// one of them).
    pub async fn serve_callback_tests(self: Arc<Self>, redis: ConnectionManager, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            loop {
                let mut conn = redis.clone();
                let taken: Result<Option<Vec<u8>>, _> = conn.rpop(callback_test::REQUESTS, None).await;
                match taken {
                    Ok(Some(raw)) => match serde_json::from_slice::<CallbackTestRequest>(&raw) {
                        Ok(request) => self.answer_callback_test(&mut conn, request).await,
                        Err(e) => tracing::warn!(error = %e, "dropped a malformed webhook test request"),
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read webhook test requests; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {},
                _ = shutdown.cancelled() => {},
            }
        }
    }

    async fn answer_callback_test(&self, redis: &mut ConnectionManager, request: CallbackTestRequest) {
        let key = callback_test::status_key(&request.owner);
        // Still the owner's latest request (not replaced, not gone with a deleted user)?
        let current: Option<Vec<u8>> = redis.get(&key).await.unwrap_or(None);
        let current = current.and_then(|raw| serde_json::from_slice::<CallbackTestStatus>(&raw).ok());
        if current.as_ref().is_none_or(|c| c.requested_at != request.requested_at || c.at.is_some())
            || request.requested_at + callback_test::STALE_SECS < now()
        {
            return;
        }
        let result = match &self.webhooks {
            Some(sender) => {
                let body = serde_json::to_vec(&serde_json::json!({
                    "type": "ping",
                    "requested_at": request.requested_at,
                    "sent_at": now(),
                }))
                .unwrap_or_default();
                sender.deliver(&request.target, "ping", &body).await
            }
            None => Err("webhooks are not configured on this worker".to_string()),
        };
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        tracing::info!(owner = %request.owner, target = %request.target, ok, %detail, "webhook test event");
        let status = CallbackTestStatus { at: Some(now()), ok: Some(ok), detail: Some(detail), ..CallbackTestStatus::pending(&request) };
        let json = serde_json::to_vec(&status).unwrap_or_default();
        // Only over the request's own record (`XX`): a user deleted meanwhile gets none back.
        let written: Result<Option<String>, _> = redis::cmd("SET")
            .arg(&key)
            .arg(json)
            .arg("XX")
            .arg("EX")
            .arg(callback_test::STATUS_SECS)
            .query_async(redis)
            .await;
        if let Err(e) = written {
            tracing::warn!(owner = %request.owner, error = %e, "could not record a webhook test's outcome");
        }
    }
}
