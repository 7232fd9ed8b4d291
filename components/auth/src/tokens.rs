//! Personal API tokens: `POST`/`GET /users/me/tokens`, `DELETE /users/me/tokens/{id}` for the
//! caller's own, `GET /users/{email}/tokens` and `DELETE /users/{email}/tokens/{id}` for
//! administrators.
//!
//! The secret (`edge_auth::api_tokens`) is shown once, in the creation's answer; only its
//! SHA-256 is stored. Creating one needs a session from signing in with the password (an API
//! token cannot make more of itself). At most `MAX_TOKENS_PER_USER` unexpired tokens per user,
//! counted in the same statement that inserts (parallel creations cannot pass a count made
//! before the others were stored); expired ones are deleted when the user creates another.
//! Tokens end on revocation at once, and with their user's deactivation or deletion (the
//! database's triggers, `edge_http::schema`).

use crate::db::db_error;
use crate::{Ctx, db, validate};
use edge_auth::api_tokens::{self, MAX_TOKENS_PER_USER};
use edge_spin::{ApiError, ApiResult, BodyStream, Head, Reply, media_type, read_body};
use api_model::auth::{ApiToken, NewApiToken, NewApiTokenRequest};
use spin_sdk::sqlite::Value;

/// Largest accepted `POST` body.
const MAX_BODY: usize = 4 * 1024;
const DAY_SECS: u64 = 24 * 3600;

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `POST /users/me/tokens` `{name, expires_in_days?}`: 201 `{id, name, token, created_at,
/// expires_at}`.
pub async fn create(ctx: &Ctx, head: &Head, body: &mut BodyStream) -> ApiResult {
    let caller = validate::require_session(ctx, head, "create API tokens")?;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let new: NewApiTokenRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid body", format!("expected {{\"name\": \"…\", \"expires_in_days\"?: 1–3650}}: {e}"))
    })?;
    let name = api_tokens::check_name(&new.name).map_err(|detail| ApiError::bad_request("invalid name", detail))?;
    let days = api_tokens::check_expiry_days(new.expires_in_days.as_ref())
        .map_err(|detail| ApiError::bad_request("invalid expiry", detail))?;
    let expires_at = days.map(|d| ctx.now + d * DAY_SECS);

    let mut secret_bytes = [0u8; api_tokens::SECRET_BYTES];
    let mut id_bytes = [0u8; 12];
    getrandom::fill(&mut secret_bytes).map_err(|e| ApiError::internal("no randomness available", e))?;
    getrandom::fill(&mut id_bytes).map_err(|e| ApiError::internal("no randomness available", e))?;
    let secret = api_tokens::secret_from(&secret_bytes);
    let id = api_tokens::id_from(&id_bytes);

    ctx.db
        .execute(
            "DELETE FROM api_tokens WHERE email = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2",
            &[Value::Text(caller.email.clone()), int(ctx.now)],
        )
        .map_err(db_error)?;
    let stored = ctx
        .db
        .execute(
            "INSERT INTO api_tokens (id, email, name, secret_hash, created_at, expires_at, last_used_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, NULL
             WHERE (SELECT COUNT(*) FROM api_tokens WHERE email = ?2 AND (expires_at IS NULL OR expires_at > ?5)) < ?7
               AND EXISTS (SELECT 1 FROM users WHERE email = ?2 AND active = 1)
             RETURNING id",
            &[
                Value::Text(id.clone()),
                Value::Text(caller.email.clone()),
                Value::Text(name.clone()),
                Value::Text(api_tokens::secret_hash(&secret)),
                int(ctx.now),
                expires_at.map_or(Value::Null, int),
                int(MAX_TOKENS_PER_USER),
            ],
        )
        .map_err(db_error)?;
    if stored.rows().next().is_none() {
        return Err(ApiError::new(
            409,
            "too many tokens",
            format!("a user holds at most {MAX_TOKENS_PER_USER} API tokens; revoke one first (DELETE /users/me/tokens/{{id}})"),
        ));
    }
    Ok(Reply::json(
        201,
        &NewApiToken { id, name, token: secret, created_at: ctx.now, expires_at },
    )
    .header("cache-control", "no-store")
    .for_log(Some(&caller.email), None))
}

fn tokens_of(ctx: &Ctx, email: &str) -> Result<Vec<ApiToken>, ApiError> {
    let result = ctx
        .db
        .execute(
            "SELECT id, name, created_at, expires_at, last_used_at FROM api_tokens WHERE email = ?1 ORDER BY created_at, id",
            &[Value::Text(email.into())],
        )
        .map_err(db_error)?;
    Ok(result
        .rows()
        .map(|row| ApiToken {
            id: row.get::<&str>("id").unwrap_or_default().to_string(),
            name: row.get::<&str>("name").unwrap_or_default().to_string(),
            created_at: row.get("created_at").unwrap_or(0),
            expires_at: row.get("expires_at"),
            last_used_at: row.get("last_used_at"),
        })
        .collect())
}

/// `GET /users/me/tokens`: the caller's tokens, oldest first, without secrets.
pub fn list_own(ctx: &Ctx, head: &Head) -> ApiResult {
    let caller = validate::current_caller(ctx, head)?;
    Ok(Reply::json(200, &tokens_of(ctx, &caller.email)?))
}

/// Deletes token `id` of `email`: 204, or 404 when `email` has no such token.
fn revoke(ctx: &Ctx, email: &str, id: &str) -> ApiResult {
    let not_found = || ApiError::new(404, "not found", format!("no API token {id}"));
    if !api_tokens::is_valid_id(id) {
        return Err(not_found());
    }
    let deleted = ctx
        .db
        .execute(
            "DELETE FROM api_tokens WHERE id = ?1 AND email = ?2 RETURNING id",
            &[Value::Text(id.into()), Value::Text(email.into())],
        )
        .map_err(db_error)?;
    if deleted.rows().next().is_none() {
        return Err(not_found());
    }
    Ok(Reply::empty(204))
}

/// `DELETE /users/me/tokens/{id}` (with any credential of the user, the token itself too).
pub fn revoke_own(ctx: &Ctx, head: &Head, id: &str) -> ApiResult {
    let caller = validate::current_caller(ctx, head)?;
    Ok(revoke(ctx, &caller.email, id)?.for_log(Some(&caller.email), None))
}

/// The existing user `raw_email` (percent-encoded) names, or a 404.
fn existing_user(ctx: &Ctx, raw_email: &str) -> Result<String, ApiError> {
    let email = edge_http::query::path_segment(raw_email).trim().to_lowercase();
    match db::find_user(&ctx.db, &email)? {
        Some(_) => Ok(email),
        None => Err(ApiError::new(404, "not found", format!("no user {email}"))),
    }
}

/// `GET /users/{email}/tokens`, for administrators.
pub fn list_of_user(ctx: &Ctx, head: &Head, raw_email: &str) -> ApiResult {
    crate::users::require_admin(ctx, head)?;
    let email = existing_user(ctx, raw_email)?;
    Ok(Reply::json(200, &tokens_of(ctx, &email)?))
}

/// `DELETE /users/{email}/tokens/{id}`, for administrators.
pub fn revoke_of_user(ctx: &Ctx, head: &Head, raw_email: &str, id: &str) -> ApiResult {
    crate::users::require_admin(ctx, head)?;
    let email = existing_user(ctx, raw_email)?;
    revoke(ctx, &email, id)
}
