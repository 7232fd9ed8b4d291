//! `POST /users/me/callback/test`: asks a worker to send a signed `ping` event to the caller's
//! default webhook, and the outcome that `GET /users/me` shows (`job_model::callback_test`).
//! The edge never calls the webhook itself: the worker's sender is the one that checks and pins
//! the target's address, so a test reaches exactly what a job's event would.

use crate::Ctx;
use crate::redis::{Redis, int, text};
use edge_spin::{ApiError, ApiResult, Reply};
use job_model::callback_test::{self, CallbackTestRequest, CallbackTestStatus};
use spin_sdk::redis::{RedisParameter, RedisResult};

/// The owner's last test event, if one was asked for within a week.
pub fn status(redis: &Redis, email: &str) -> Result<Option<CallbackTestStatus>, ApiError> {
    let reply = redis.command("GET", vec![text(&callback_test::status_key(email))])?;
    Ok(match reply.first() {
        Some(RedisResult::Binary(bytes)) => serde_json::from_slice(bytes).ok(),
        _ => None,
    })
}

/// 202 with the request, once its outcome is on the way; 409 without a default webhook or
/// while the last request still waits for a worker.
pub fn request(ctx: &Ctx, email: &str) -> ApiResult {
    let target = crate::db::default_callback(&ctx.db, email)?.ok_or_else(|| {
        ApiError::new(409, "no webhook", "set a default webhook first (PUT /users/me {\"default_callback\": \"https://…\"})")
    })?;
    let redis = Redis::open(&ctx.config.redis_host)?;
    if let Some(last) = status(&redis, email)?
        && last.waiting(ctx.now)
    {
        return Err(ApiError::new(409, "test pending", "a test event is on its way; its outcome shows in GET /users/me")
            .header("retry-after", (last.requested_at + callback_test::PENDING_SECS).saturating_sub(ctx.now).max(1).to_string()));
    }
    let request = CallbackTestRequest { owner: email.to_string(), target, requested_at: ctx.now };
    let pending = CallbackTestStatus::pending(&request);
    let status_json = serde_json::to_vec(&pending).unwrap_or_default();
    redis.command(
        "SET",
        vec![text(&callback_test::status_key(email)), RedisParameter::Binary(status_json), text("EX"), int(callback_test::STATUS_SECS)],
    )?;
    let request_json = serde_json::to_vec(&request).unwrap_or_default();
    redis.command("LPUSH", vec![text(callback_test::REQUESTS), RedisParameter::Binary(request_json)])?;
    redis.command("LTRIM", vec![text(callback_test::REQUESTS), int(0), int(callback_test::MAX_WAITING - 1)])?;
    Ok(Reply::json(202, &pending))
}
