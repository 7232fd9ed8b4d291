//! `POST /login`: Basic credentials in, a session token out, with failed-login throttling (see
//! `throttle`): the attempt is counted before the password is checked, and taken back when it
//! succeeds. A successful log-in also hands the client a device token (`Mp3edge-Device` header
//! and an `HttpOnly` cookie; renewed, same device, when it showed a valid one), by which its
//! later log-ins are the owner's and not a stranger's.

use crate::throttle::Attempt;
use crate::{Ctx, db};
use edge_auth::{HeaderError, SessionStamp};
use edge_auth::devices;
use edge_spin::{ApiError, ApiResult, Head, Reply};

/// A well-formed argon2id hash (default parameters) that matches no password: verified against
/// for unknown users so that they cost as much time as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

const WRONG_CREDENTIALS: &str = "unknown user, wrong password or deactivated account";

fn unauthorized(error: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(401, error, detail).header("www-authenticate", "Basic realm=\"mp3edge\"")
}

/// A new session token for `email`, under the user's current session version and with an id
/// of its own (what `POST /logout` ends).
pub fn issue_session(ctx: &Ctx, email: &str, admin: bool) -> Result<String, ApiError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| ApiError::internal("no randomness available", e))?;
    let stamp = SessionStamp::new(edge_spin::session::session_version(&ctx.db, email)?, random);
    ctx.config.tokens.issue(email, admin, &stamp).map_err(|e| ApiError::internal("could not issue a token", e))
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
    let attempt = Attempt::of(ctx, head, &email)?;
    attempt.admit(ctx, "log-ins")?;

    let user = db::find_user(&ctx.db, &email)?;
    // The password is always verified, so unknown and inactive users take as long as others.
    let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
    let password_ok = edge_auth::verify_password(&password, hash);
    let Some(user) = user.filter(|u| password_ok && u.active) else {
        // The attempt stays counted as a failure.
        return Err(unauthorized("invalid credentials", WRONG_CREDENTIALS));
    };
    attempt.succeeded(ctx, &email)?;
    let token = issue_session(ctx, &email, user.admin)?;
    let device = match attempt.device {
        Some(device) => device,
        None => {
            let mut random = [0u8; 16];
            getrandom::fill(&mut random).map_err(|e| ApiError::internal("no randomness available", e))?;
            devices::new_device_id(random)
        }
    };
    let device_token = ctx.config.devices.issue(&email, &device, ctx.now);
    let secure = head.last_header("spin-full-url").is_some_and(|url| url.starts_with("https://"));
    Ok(Reply::text(200, token)
        .header(devices::DEVICE_HEADER, device_token.clone())
        .header("set-cookie", devices::cookie(&device_token, secure))
        .for_log(Some(&email), None))
}
