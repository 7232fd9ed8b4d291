//! Operations of the API description: signing in and out: `POST /login`, `POST /logout`, `POST /validate`.

use api_model::ErrorBody;
use api_model::auth::Claims;

/// Log in
#[utoipa::path(
    post,
    path = "/login",
    tag = "session",
    security(("basic" = [])),
    params(
        ("Mp3edge-Device" = Option<String>, Header, description = "A device token from an earlier log-in to this account (or the `mp3edge_device` cookie): log-in throttling counts this device's failures on their own and never holds it to the account's ceiling, which strangers share", nullable = false)
    ),
    responses(
        (status = 200, description = "The session token (JWT)", body = String, content_type = "text/plain", headers(("Mp3edge-Device" = String, description = "A device token for this client and account (renewed when the request carried a valid one); send it back on later log-ins"), ("Set-Cookie" = String, description = "The same device token as the `HttpOnly`, `SameSite=Strict` cookie `mp3edge_device`"))),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 429, description = "Throttled, or too many jobs/streams (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody),
        (status = 500, description = "The host's answer when the component failed (for example its memory cap refused argon2id's 19 MiB)", body = ErrorBody)
    )
)]
pub fn login() {}

/// Sign out: end the session token sent
///
/// Ends this session token alone (other sessions of the user go on); a session token from before tokens had ids ends all the user's sessions. Not for API tokens (403): revoke those with `DELETE /users/me/tokens/{id}`.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden: an API token cannot do this (sign in with the password and use that session)", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)
    )
)]
pub fn logout() {}

/// The credential's claims as they stand now
#[utoipa::path(
    post,
    path = "/validate",
    tag = "session",
    security(("bearer" = []), ("apiToken" = [])),
    responses(
        (status = 200, description = "Claims", body = Claims),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody)
    )
)]
pub fn validate() {}
