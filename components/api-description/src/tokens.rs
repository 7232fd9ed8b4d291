//! Operations of the API description: personal API tokens: `/users/me/tokens`, and an administrator's view of a user's.

use api_model::ErrorBody;
use api_model::auth::ApiToken;
use api_model::auth::NewApiToken;
use api_model::auth::NewApiTokenRequest;

/// Own personal API tokens
///
/// Oldest first, without secrets, with when each was last used.
#[utoipa::path(
    get,
    path = "/users/me/tokens",
    tag = "tokens",
    security(("bearer" = []), ("apiToken" = [])),
    responses(
        (status = 200, description = "The tokens", body = [ApiToken]),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)
    )
)]
pub fn list_tokens() {}

/// Create a personal API token
///
/// The secret is in this answer only. `expires_in_days` 1–3650; absent or null: the token does not expire. At most 50 unexpired tokens per user (409 beyond; expired ones are deleted now). Needs a session from signing in (an API token gets 403).
#[utoipa::path(
    post,
    path = "/users/me/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    request_body(content = NewApiTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = NewApiToken),
        (status = 400, description = "Malformed body (`invalid body`), name (`invalid name`) or expiry (`invalid expiry`)", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden: an API token cannot do this (sign in with the password and use that session)", body = ErrorBody),
        (status = 409, description = "`too many tokens`: the user holds 50 unexpired tokens", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody)
    )
)]
pub fn create_token() {}

/// Revoke an own API token
///
/// Refused at once everywhere. With any credential of the user (a token may revoke itself).
#[utoipa::path(
    delete,
    path = "/users/me/tokens/{id}",
    tag = "tokens",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "The token's id (24 hex digits)")
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)
    )
)]
pub fn revoke_token() {}

/// A user's personal API tokens (admin)
#[utoipa::path(
    get,
    path = "/users/{email}/tokens",
    tag = "tokens",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("email" = String, Path, description = "Percent-encoded address")
    ),
    responses(
        (status = 200, description = "The tokens", body = [ApiToken]),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden: administrators only", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)
    )
)]
pub fn list_user_tokens() {}

/// Revoke a user's API token (admin)
#[utoipa::path(
    delete,
    path = "/users/{email}/tokens/{id}",
    tag = "tokens",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("email" = String, Path, description = "Percent-encoded address"),
        ("id" = String, Path, description = "The token's id (24 hex digits)")
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden: administrators only", body = ErrorBody),
        (status = 404, description = "No such user, or no such token of theirs", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)
    )
)]
pub fn revoke_user_token() {}
