//! Who is calling: a valid bearer token of a user who still exists and is active.

use crate::Ctx;
use edge_auth::HeaderError;
use edge_spin::{ApiError, Head};

#[derive(Clone)]
pub struct Caller {
    pub email: String,
    /// Admins may read every job.
    pub admin: bool,
    /// When the caller's token expires (Unix seconds): a long-lived answer (the event stream)
    /// ends then.
    pub token_expires_at: u64,
    /// When the caller's token was issued (Unix seconds): a token issued before its user was
    /// (re)created belongs to a deleted account of the same address and opens nothing.
    pub token_issued_at: u64,
}

/// Where a route accepts the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TokenFrom {
    /// `Authorization: Bearer` only.
    Header,
    /// `Authorization: Bearer`, or else `?access_token=` (for `EventSource`, which cannot send
    /// headers). Only for routes whose URL is not handed around (the event stream).
    HeaderOrQuery,
}

impl Caller {
    /// Whether the caller may still see a job of `owner`, by the users table as it is now: a
    /// deactivated user sees nothing, a demoted administrator only their own jobs. A long-lived
    /// answer (the event stream) asks again while it runs.
    pub fn still_sees(&self, db: &spin_sdk::sqlite::Connection, owner: &str) -> Result<bool, ApiError> {
        Ok(match crate::db::active_user_is_admin(db, &self.email, self.token_issued_at)? {
            None => false,
            Some(admin) => owner == self.email || (admin && self.admin),
        })
    }
}

pub fn authenticate(ctx: &Ctx, head: &Head, from: TokenFrom) -> Result<Caller, ApiError> {
    let unauthorized = |error, detail: String| {
        ApiError::new(401, error, detail).header("www-authenticate", "Bearer realm=\"mp3edge\"")
    };
    let authorization = head.header("authorization");
    let query_token = match from {
        TokenFrom::HeaderOrQuery if authorization.is_none() => head.query_param("access_token"),
        _ => None,
    };
    let token = match &query_token {
        Some(token) => token.as_str(),
        None => edge_auth::parse_bearer(authorization).map_err(|e| match e {
            HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
            _ => unauthorized("invalid token", e.to_string()),
        })?,
    };
    let claims = ctx.config.tokens.verify(token).map_err(|e| unauthorized("invalid token", e.to_string()))?;
    let email = claims.email.to_lowercase();
    match crate::db::active_user_is_admin(&ctx.db, &email, claims.iat)? {
        // Admin rights need both the token and the current user record.
        Some(admin) => Ok(Caller { admin: admin && claims.admin, email, token_expires_at: claims.exp, token_issued_at: claims.iat }),
        None => Err(unauthorized("invalid token", "the token's user is unknown or deactivated".into())),
    }
}
