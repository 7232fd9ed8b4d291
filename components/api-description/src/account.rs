//! Operations of the API description: the caller's own settings, password and webhook test: `/users/me…`.

use api_model::ErrorBody;
use api_model::auth::Me;
use api_model::auth::NewSession;
use api_model::auth::PasswordChange;
use api_model::auth::Settings;
use job_model::callback_test::CallbackTestStatus;

/// Own settings and storage
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "account",
    security(("bearer" = []), ("apiToken" = [])),
    responses(
        (status = 200, description = "Settings", body = Me),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn get_me() {}

/// Set the default webhook
#[utoipa::path(
    put,
    path = "/users/me",
    tag = "account",
    security(("bearer" = []), ("apiToken" = [])),
    request_body(content = Settings, content_type = "application/json"),
    responses(
        (status = 200, description = "Settings", body = Me),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn update_me() {}

/// Change own password
///
/// Ends every session of the user issued before (on every device): the answer carries a new session token for the client that made the change. API tokens are not sessions and stay until revoked. Not with an API token (403).
#[utoipa::path(
    put,
    path = "/users/me/password",
    tag = "account",
    security(("bearer" = [])),
    params(
        ("Mp3edge-Device" = Option<String>, Header, description = "A device token from an earlier log-in to this account (or the `mp3edge_device` cookie): log-in throttling counts this device's failures on their own and never holds it to the account's ceiling, which strangers share", nullable = false)
    ),
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Wrong current password, or an API token (sign in with the password)", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords: throttled as log-ins are (`Retry-After`)", body = ErrorBody),
        (status = 200, description = "Changed: a new session token (the one sent has ended)", body = NewSession)
    )
)]
pub fn change_password() {}

/// Send a test event to the default webhook
///
/// A worker sends a signed `ping` event (`Mp3edge-Event: ping`) to the caller's `default_callback`, once; the outcome shows in `GET /users/me` as `callback_test`.
#[utoipa::path(
    post,
    path = "/users/me/callback/test",
    tag = "account",
    security(("bearer" = []), ("apiToken" = [])),
    responses(
        (status = 202, description = "On its way", body = CallbackTestStatus),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 409, description = "No default webhook is set, or the last test still waits for a worker", body = ErrorBody),
        (status = 503, description = "The job queue is unreachable; retry after `Retry-After`", body = ErrorBody)
    )
)]
pub fn test_callback() {}
