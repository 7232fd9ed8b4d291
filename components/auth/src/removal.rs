//! `DELETE /users/{email}`: an administrator deletes a user and everything they hold.
//!
//! In an order that never loses track of anything: the user is deactivated first (their
//! sessions, links and streams end at once, and the last active administrator is refused in the
//! same statement), then every job of theirs begins its deletion as `DELETE /jobs/{id}` begins
//! one (the tombstone that stops a worker converting it, and the job due on the expiry schedule
//! now, where the sweeper deletes its record, its chunks and its accounting within seconds),
//! and only then do the user's rows go. A step that fails leaves the user deactivated, and the
//! administrator's next `DELETE` goes on from there.

use crate::redis::{Redis, int, text};
use crate::{Ctx, db, throttle};
use edge_spin::{ApiError, ApiResult, Reply};
use job_model::{callback_test, lifecycle};
use spin_sdk::sqlite::Value;

pub fn delete_user(ctx: &Ctx, caller: &str, raw_email: &str) -> ApiResult {
    let email = edge_http::query::path_segment(raw_email).trim().to_lowercase();
    if email == caller {
        return Err(ApiError::new(409, "conflict", "you cannot delete your own account; another administrator can"));
    }
    let not_found = || ApiError::new(404, "not found", format!("no user {email}"));
    if db::find_user(&ctx.db, &email)?.is_none() {
        return Err(not_found());
    }
    if !db::update_user(&ctx.db, &email, Some(false), None)? {
        // Deleted by a parallel request in between, or the last active administrator.
        if db::find_user(&ctx.db, &email)?.is_none() {
            return Err(not_found());
        }
        return Err(ApiError::new(409, "conflict", "this would leave no active administrator; promote or activate another one first"));
    }
    let redis = Redis::open(&ctx.config.redis_host)?;
    let keys = lifecycle::begin_delete_owner_keys(&email);
    let mut args = vec![text(lifecycle::BEGIN_DELETE_OWNER_SCRIPT), int(keys.len() as u64)];
    args.extend(keys.iter().map(|k| text(k)));
    args.extend([text(&email), int(ctx.now), int(lifecycle::TOMBSTONE_SECS), text(lifecycle::TOMBSTONE_PREFIX)]);
    redis.command("EVAL", args)?;
    redis.command("DEL", vec![text(&callback_test::status_key(&email))])?;
    throttle::unlock(&ctx.db, &email)?;
    for table in ["user_settings", "user_presets", "login_known_clients"] {
        ctx.db
            .execute(&format!("DELETE FROM {table} WHERE email = ?1"), &[Value::Text(email.clone())])
            .map_err(db::db_error)?;
    }
    // Parallel deletions of one user all get this far; the one that deletes the row answers 204.
    let deleted = ctx
        .db
        .execute("DELETE FROM users WHERE email = ?1 RETURNING email", &[Value::Text(email.clone())])
        .map_err(db::db_error)?;
    if deleted.rows().next().is_none() {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}
