//! `POST /login`: Basic credentials in, a session token out, with failed-login throttling (see
//! `throttle`): the attempt is counted before the password is checked, and taken back when it
//! succeeds.

use crate::{Ctx, db, throttle};
use edge_auth::HeaderError;
use edge_http::client::{client_address, throttle_key};
use edge_spin::{ApiError, ApiResult, Head, Reply};

/// A well-formed argon2id hash (default parameters) that matches no password: verified against
/// for unknown users so that they cost as much time as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

const WRONG_CREDENTIALS: &str = "unknown user, wrong password or deactivated account";

fn unauthorized(error: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(401, error, detail).header("www-authenticate", "Basic realm=\"mp3edge\"")
}

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    let (user, password) = edge_auth::parse_basic(head.header("authorization")).map_err(|e| match e {
        HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
        _ => unauthorized("invalid credentials", e.to_string()),
    })?;
    let email = user.to_lowercase();
    if email.len() > edge_auth::MAX_EMAIL_LEN {
        // No account can have this name: no throttling row (its subject would be as long as the
        // header) and no password hash to spend time on; the answer is a wrong password's.
        return Err(unauthorized("invalid credentials", WRONG_CREDENTIALS));
    }
    let client = client_key(ctx, head);
    let limits = &ctx.config.limits;
    let subjects = throttle::Subjects::new(&email, &client);

    throttle::purge(&ctx.db, limits.window_secs, ctx.now)?;
    if let Some(secs) = throttle::admit(&ctx.db, &subjects, limits, ctx.now)? {
        return Err(ApiError::new(429, "too many attempts", format!("too many failed log-ins; retry in {secs} s"))
            .header("retry-after", secs.to_string()));
    }

    let user = db::find_user(&ctx.db, &email)?;
    // The password is always verified, so unknown and inactive users take as long as others.
    let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
    let password_ok = edge_auth::verify_password(&password, hash);
    let Some(user) = user.filter(|u| password_ok && u.active) else {
        // The attempt stays counted as a failure.
        return Err(unauthorized("invalid credentials", WRONG_CREDENTIALS));
    };
    throttle::succeeded(&ctx.db, &subjects)?;
    let token =
        ctx.config.tokens.issue(&email, user.admin).map_err(|e| ApiError::internal("could not issue a token", e))?;
    Ok(Reply::text(200, token).for_log(Some(&email), None))
}

/// The client's throttling key: the address the runtime saw (the LAST `spin-client-addr`, as
/// Spin appends its own after any a client sends), or behind a trusted proxy the address it
/// forwarded for.
fn client_key(ctx: &Ctx, head: &Head) -> String {
    let peer: Vec<&str> = head.header_values("spin-client-addr").collect();
    let forwarded: Vec<&str> = head.header_values("x-forwarded-for").collect();
    client_address(&peer, &forwarded, &ctx.config.trusted_proxies).map_or_else(|| "unknown".to_string(), throttle_key)
}
