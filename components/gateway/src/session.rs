//! Who is calling: a valid bearer token of a user who still exists and is active.

use crate::Ctx;
use crate::http_util::{ApiError, Head};
use edge_auth::HeaderError;

pub struct Caller {
    pub email: String,
    /// Admins may read every job.
    pub admin: bool,
}

pub fn authenticate(ctx: &Ctx, head: &Head) -> Result<Caller, ApiError> {
    let unauthorized = |error, detail: String| {
        ApiError::new(401, error, detail).header("www-authenticate", "Bearer realm=\"mp3edge\"")
    };
    let token = edge_auth::parse_bearer(head.header("authorization")).map_err(|e| match e {
        HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
        _ => unauthorized("invalid token", e.to_string()),
    })?;
    let claims = ctx.config.tokens.verify(token).map_err(|e| unauthorized("invalid token", e.to_string()))?;
    let email = claims.email.to_lowercase();
    match crate::db::active_user_is_admin(&ctx.db, &email)? {
        // Admin rights need both the token and the current user record.
        Some(admin) => Ok(Caller { admin: admin && claims.admin, email }),
        None => Err(unauthorized("invalid token", "the token's user is unknown or deactivated".into())),
    }
}
