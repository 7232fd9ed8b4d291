//! `POST /login`: Basic credentials in, a session token out, with failed-login throttling.

use crate::{Ctx, db, throttle};
use edge_auth::HeaderError;
use edge_spin::{ApiError, ApiResult, Head, Reply};

/// A well-formed argon2id hash (default parameters) that matches no password: verified against
/// for unknown users so that they cost as much time as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn unauthorized(error: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(401, error, detail).header("www-authenticate", "Basic realm=\"mp3edge\"")
}

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    let (user, password) = edge_auth::parse_basic(head.header("authorization")).map_err(|e| match e {
        HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
        _ => unauthorized("invalid credentials", e.to_string()),
    })?;
    let email = user.to_lowercase();
    let account = format!("account:{email}");
    let client = format!("client:{}", head.header("spin-client-addr").map_or("unknown", throttle::client_ip));
    let limits = &ctx.config.limits;

    let subjects = [(account.as_str(), limits.per_account), (client.as_str(), limits.per_client)];
    if let Some(secs) = throttle::blocked(&ctx.db, &subjects, limits.window_secs, ctx.now)? {
        return Err(ApiError::new(429, "too many attempts", format!("too many failed log-ins; retry in {secs} s"))
            .header("retry-after", secs.to_string()));
    }

    let user = db::find_user(&ctx.db, &email)?;
    // The password is always verified, so unknown and inactive users take as long as others.
    let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
    let password_ok = edge_auth::verify_password(&password, hash);
    let Some(user) = user.filter(|u| password_ok && u.active) else {
        for (subject, _) in subjects {
            throttle::record_failure(&ctx.db, subject, limits.window_secs, ctx.now)?;
        }
        return Err(unauthorized("invalid credentials", "unknown user, wrong password or deactivated account"));
    };
    throttle::clear(&ctx.db, &account)?;
    let token =
        ctx.config.tokens.issue(&email, user.admin).map_err(|e| ApiError::internal("could not issue a token", e))?;
    Ok(Reply::text(200, token))
}
