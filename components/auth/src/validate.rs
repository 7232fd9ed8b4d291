//! `POST /validate`: checks a bearer token and returns its claims; also the bearer check the
//! other routes build on.

use crate::Ctx;
use edge_auth::{HeaderError, VerifiedClaims};
use edge_spin::{ApiError, ApiResult, Head, Reply};

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    Ok(Reply::json(200, &claims(ctx, head)?))
}

/// The verified claims of the request's `Authorization: Bearer` token, or a 401.
pub fn claims(ctx: &Ctx, head: &Head) -> Result<VerifiedClaims, ApiError> {
    let unauthorized = |error, detail: String| {
        ApiError::new(401, error, detail).header("www-authenticate", "Bearer realm=\"mp3edge\"")
    };
    let token = edge_auth::parse_bearer(head.header("authorization")).map_err(|e| match e {
        HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
        _ => unauthorized("invalid token", e.to_string()),
    })?;
    ctx.config.tokens.verify(token).map_err(|e| unauthorized("invalid token", e.to_string()))
}
