//! `GET /users` and `POST /users`: user management for administrators; `GET`/`PUT /users/me`:
//! a user's own settings (the default webhook for uploads without `?callback=`).

use crate::{Ctx, db, validate};
use edge_spin::{ApiError, ApiResult, BodyStream, Head, Reply, media_type, read_body};
use serde::Deserialize;

/// Largest accepted `POST /users` body.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
struct NewUser {
    email: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

/// The caller's e-mail and whether they are an administrator: 401 unless the bearer is a valid
/// token of an active user.
fn require_user(ctx: &Ctx, head: &Head) -> Result<(String, bool), ApiError> {
    let claims = validate::current_claims(ctx, head)?;
    Ok((claims.email, claims.admin))
}

/// 401 unless the bearer is a valid token of an active user, 403 unless that user is an admin.
fn require_admin(ctx: &Ctx, head: &Head) -> Result<(), ApiError> {
    match require_user(ctx, head)? {
        (_, true) => Ok(()),
        (_, false) => Err(ApiError::new(403, "forbidden", "only administrators may manage users")),
    }
}

fn me_json(email: &str, admin: bool, default_callback: Option<String>) -> serde_json::Value {
    serde_json::json!({ "email": email, "admin": admin, "default_callback": default_callback })
}

pub fn me(ctx: &Ctx, head: &Head) -> ApiResult {
    let (email, admin) = require_user(ctx, head)?;
    Ok(Reply::json(200, &me_json(&email, admin, db::default_callback(&ctx.db, &email)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// `null` removes it.
    default_callback: Option<String>,
}

pub async fn update_me(ctx: &Ctx, head: &Head, body: &mut BodyStream) -> ApiResult {
    let (email, admin) = require_user(ctx, head)?;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let settings: Settings = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid body", format!("expected {{\"default_callback\": \"https://…\" | null}}: {e}")))?;
    let callback = settings.default_callback.filter(|url| !url.trim().is_empty());
    if let Some(url) = &callback {
        job_model::net::check_callback(url, &ctx.config.webhook_allowed_hosts)
            .map_err(|reason| ApiError::bad_request("invalid callback", reason))?;
    }
    db::set_default_callback(&ctx.db, &email, callback.as_deref())?;
    Ok(Reply::json(200, &me_json(&email, admin, callback)))
}

pub fn list(ctx: &Ctx, head: &Head) -> ApiResult {
    require_admin(ctx, head)?;
    Ok(Reply::json(200, &db::list_users(&ctx.db)?))
}

pub async fn create(ctx: &Ctx, head: &Head, body: &mut BodyStream) -> ApiResult {
    require_admin(ctx, head)?;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let new: NewUser = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid body", format!("expected {{\"email\", \"password\", \"admin\"}}: {e}"))
    })?;
    let email = new.email.trim().to_lowercase();
    edge_auth::check_email(&email).map_err(|detail| ApiError::bad_request("invalid email", detail))?;
    edge_auth::check_password(&new.password, &email).map_err(|detail| ApiError::bad_request("invalid password", detail))?;
    let conflict = || ApiError::new(409, "conflict", format!("a user {email} already exists"));
    // Checked before hashing so a duplicate costs no argon2 run; the insert re-checks (races).
    if db::find_user(&ctx.db, &email)?.is_some() {
        return Err(conflict());
    }
    let hash = db::hash_new_password(&new.password)?;
    if !db::insert_user(&ctx.db, &email, hash, new.admin, ctx.now)? {
        return Err(conflict());
    }
    Ok(Reply::json(201, &serde_json::json!({ "email": email, "admin": new.admin })))
}
