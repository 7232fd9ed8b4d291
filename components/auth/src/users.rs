//! `GET /users`, `POST /users` and `PATCH /users/{email}`: user management for administrators
//! (accounts are created only with an address that can log in and a password that is not
//! trivially guessed; they are activated, deactivated, promoted, demoted and unlocked, never
//! leaving the platform without an active administrator); `GET`/`PUT /users/me`: a user's own
//! settings (the default webhook for uploads without `?callback=`, and its last test event).

use crate::throttle::{self, Attempt};
use crate::redis::Redis;
use crate::{Ctx, db, validate};
use edge_spin::{ApiError, ApiResult, BodyStream, Head, Reply, media_type, read_body};
use api_model::auth::{CreatedUser, Me, NewSession, NewUser, PasswordChange, Settings, User, UserChange};

/// Largest accepted `POST /users` body.
const MAX_BODY: usize = 64 * 1024;


/// The caller's e-mail and whether they are an administrator: 401 unless the bearer is a
/// session or API token that still holds.
pub fn require_user(ctx: &Ctx, head: &Head) -> Result<(String, bool), ApiError> {
    let caller = validate::current_caller(ctx, head)?;
    Ok((caller.email, caller.admin))
}

/// 401 unless the bearer is a valid token of an active user, 403 unless that user is an admin.
pub fn require_admin(ctx: &Ctx, head: &Head) -> Result<String, ApiError> {
    match require_user(ctx, head)? {
        (email, true) => Ok(email),
        (_, false) => Err(ApiError::new(403, "forbidden", "only administrators may manage users")),
    }
}

fn me_json(ctx: &Ctx, email: &str, admin: bool, default_callback: Option<String>) -> Result<Me, ApiError> {
    let redis = Redis::open(&ctx.config.redis_host)?;
    Ok(Me {
        email: email.to_string(),
        admin,
        default_callback,
        used_bytes: crate::usage::used_bytes(&redis, email)?,
        quota_bytes: ctx.config.user_quota_bytes,
        max_upload_bytes: ctx.config.max_upload_bytes,
        callback_test: crate::callback_test::status(&redis, email)?,
    })
}

pub fn me(ctx: &Ctx, head: &Head) -> ApiResult {
    let (email, admin) = require_user(ctx, head)?;
    Ok(Reply::json(200, &me_json(ctx, &email, admin, db::default_callback(&ctx.db, &email)?)?))
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
    Ok(Reply::json(200, &me_json(ctx, &email, admin, callback)?))
}

/// `GET /users?limit=&offset=`: one page of the users (50 by default, at most 200), each with
/// what they hold, their quota and whether log-in throttling holds them now.
pub fn list(ctx: &Ctx, head: &Head) -> ApiResult {
    require_admin(ctx, head)?;
    let (limit, offset) = head.page(50, 200)?;
    let redis = Redis::open(&ctx.config.redis_host)?;
    let users = db::list_users(&ctx.db, limit, offset)?;
    let views = users.into_iter().map(|user| user_view(ctx, &redis, user)).collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::json(200, &views))
}

/// A user as the administrators' list shows them: the record, what they hold, their quota and
/// until when log-in throttling holds them (what `unlock` clears).
fn user_view(ctx: &Ctx, redis: &Redis, user: db::UserInfo) -> Result<User, ApiError> {
    let locked_until = throttle::locked_until(&ctx.db, &user.email, &ctx.config.limits, ctx.now)?;
    Ok(User {
        used_bytes: crate::usage::used_bytes(redis, &user.email)?,
        email: user.email,
        admin: user.admin,
        active: user.active,
        created_at: user.created_at,
        locked: locked_until.is_some(),
        locked_until,
        quota_bytes: ctx.config.user_quota_bytes,
    })
}


/// `PUT /users/me/password`: the caller changes their own password, proving the current one
/// (throttled as a log-in is: a stolen session token must not make it a password oracle). Not
/// with an API token. The new password ends every session of the user (the database moves
/// their session version on, see `edge_http::schema`); the answer is a new session token
/// `{"token"}` so that the client that made the change stays signed in.
pub async fn change_password(ctx: &Ctx, head: &Head, body: &mut BodyStream) -> ApiResult {
    let caller = validate::require_session(ctx, head, "change the password")?;
    let email = caller.email;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let change: PasswordChange = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid body", format!("expected {{\"current_password\", \"new_password\"}}: {e}"))
    })?;
    // Guessing the current password here is guessing it at a log-in: throttled alike, the
    // attempt counted before the password is checked.
    let attempt = Attempt::of(ctx, head, &email)?;
    attempt.admit(ctx, "password checks")?;
    let user = db::find_user(&ctx.db, &email)?.ok_or_else(ApiError::not_found)?;
    if !edge_auth::verify_password(&change.current_password, &user.password_hash) {
        return Err(ApiError::new(403, "wrong password", "the current password is not right"));
    }
    attempt.succeeded(ctx, &email)?;
    edge_auth::check_password(&change.new_password, &email).map_err(|detail| ApiError::bad_request("invalid password", detail))?;
    db::set_password_hash(&ctx.db, &email, &db::hash_new_password(&change.new_password)?)?;
    let token = crate::login::issue_session(ctx, &email, caller.admin)?;
    Ok(Reply::json(200, &NewSession { token }).for_log(Some(&email), None))
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
    Ok(Reply::json(201, &CreatedUser { email, admin: new.admin }))
}


/// `PATCH /users/{email}` with `{"active"?: bool, "admin"?: bool, "unlock"?: true}`: 200 with the
/// user as it is now. A deactivated user's sessions end and their API tokens are deleted at
/// once (by the database's triggers, see `edge_http::schema`), so reactivating them revives
/// neither; a demoted administrator's credentials lose their administrator rights at once.
pub async fn update(ctx: &Ctx, head: &Head, body: &mut BodyStream, raw_email: &str) -> ApiResult {
    require_admin(ctx, head)?;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let change: UserChange = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid body", format!("expected {{\"active\"?: bool, \"admin\"?: bool, \"unlock\"?: true}}: {e}"))
    })?;
    let unlock = match change.unlock {
        Some(false) => return Err(ApiError::bad_request("invalid body", "\"unlock\" can only be true")),
        other => other.is_some(),
    };
    if change.active.is_none() && change.admin.is_none() && !unlock {
        return Err(ApiError::bad_request("invalid body", "nothing to change: give \"active\", \"admin\" or \"unlock\""));
    }
    let email = edge_http::query::path_segment(raw_email).trim().to_lowercase();
    if db::find_user(&ctx.db, &email)?.is_none() {
        return Err(ApiError::new(404, "not found", format!("no user {email}")));
    }
    if (change.active.is_some() || change.admin.is_some())
        && !db::update_user(&ctx.db, &email, change.active, change.admin)?
    {
        return Err(ApiError::new(
            409,
            "conflict",
            "this would leave no active administrator; promote or activate another one first",
        ));
    }
    if unlock {
        throttle::unlock(&ctx.db, &email)?;
    }
    let user = db::user_info(&ctx.db, &email)?.ok_or_else(|| ApiError::new(404, "not found", format!("no user {email}")))?;
    Ok(Reply::json(200, &user_view(ctx, &Redis::open(&ctx.config.redis_host)?, user)?))
}
