//! `POST /validate`: checks a bearer credential and returns what it stands for now (the
//! credential's user must still exist and be active, the session or token must not have ended,
//! and the caller is an administrator only if the user's current row says so, and for a
//! session token the token too); also the bearer check the other routes build on
//! (`edge_spin::session`).

use crate::Ctx;
use api_model::auth::{Claims, CredentialKind};
use edge_spin::session::{Caller, Credential};
use edge_spin::{ApiError, ApiResult, Head, Reply};

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    let caller = current_caller(ctx, head)?;
    let body = match &caller.credential {
        Credential::Session { iat, exp, .. } => Claims {
            email: caller.email.clone(),
            admin: caller.admin,
            iat: *iat,
            exp: Some(*exp),
            kind: CredentialKind::Session,
            token_id: None,
        },
        Credential::ApiToken { id, created_at, expires_at } => Claims {
            email: caller.email.clone(),
            admin: caller.admin,
            iat: *created_at,
            exp: *expires_at,
            kind: CredentialKind::ApiToken,
            token_id: Some(id.clone()),
        },
    };
    Ok(Reply::json(200, &body))
}

/// The request's bearer credential checked against the database: the caller, or a 401.
pub fn current_caller(ctx: &Ctx, head: &Head) -> Result<Caller, ApiError> {
    edge_spin::session::authenticate(&ctx.db, &ctx.config.tokens, head, None, ctx.now)
}

/// As [`current_caller`], but a 403 for an API token: what it must not do (`what`, e.g.
/// "create API tokens") needs a session from signing in with the password, so a leaked token
/// can neither multiply itself nor take the account over.
pub fn require_session(ctx: &Ctx, head: &Head, what: &str) -> Result<Caller, ApiError> {
    let caller = current_caller(ctx, head)?;
    if caller.is_api_token() {
        return Err(ApiError::new(
            403,
            "forbidden",
            format!("an API token cannot {what}; sign in with your password (POST /login) and use that session"),
        ));
    }
    Ok(caller)
}
