//! `POST /validate`: checks a bearer token and returns its claims as they stand now (the
//! token's user must still exist and be active, and is an administrator only if both the token
//! and the user's current row say so); also the bearer check the other routes build on.

use crate::{Ctx, db};
use edge_auth::{HeaderError, VerifiedClaims};
use edge_spin::{ApiError, ApiResult, Head, Reply};

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    Ok(Reply::json(200, &current_claims(ctx, head)?))
}

fn unauthorized(error: &'static str, detail: String) -> ApiError {
    ApiError::new(401, error, detail).header("www-authenticate", "Bearer realm=\"mp3edge\"")
}

/// The verified claims of the request's `Authorization: Bearer` token, or a 401. Says nothing
/// about the user's current state: see [`current_claims`].
pub fn claims(ctx: &Ctx, head: &Head) -> Result<VerifiedClaims, ApiError> {
    let token = edge_auth::parse_bearer(head.header("authorization")).map_err(|e| match e {
        HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
        _ => unauthorized("invalid token", e.to_string()),
    })?;
    ctx.config.tokens.verify(token).map_err(|e| unauthorized("invalid token", e.to_string()))
}

/// The token's claims checked against the `users` table: 401 unless the user exists and is
/// active; `admin` only if the user is an administrator now as well as in the token.
pub fn current_claims(ctx: &Ctx, head: &Head) -> Result<VerifiedClaims, ApiError> {
    let mut claims = claims(ctx, head)?;
    claims.email = claims.email.to_lowercase();
    match db::find_user(&ctx.db, &claims.email)? {
        // A token issued before its user was (re)created is a deleted account's.
        Some(user) if user.active && claims.iat >= user.created_at => {
            claims.admin = claims.admin && user.admin;
            Ok(claims)
        }
        _ => Err(unauthorized("invalid token", "the token's user is unknown or deactivated".into())),
    }
}
