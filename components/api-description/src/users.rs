//! Operations of the API description: administrators manage users: `/users`, `/users/{email}`.

use api_model::ErrorBody;
use api_model::auth::CreatedUser;
use api_model::auth::NewUser;
use api_model::auth::User;
use api_model::auth::UserChange;

/// List users (admin)
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("limit" = Option<u64>, Query, description = "Page size (default 50)", minimum = 1, maximum = 200),
        ("offset" = Option<u64>, Query, description = "Users to skip", minimum = 0)
    ),
    responses(
        (status = 200, description = "One page of users", body = [User]),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 503, description = "The job queue is unreachable; retry after `Retry-After`", body = ErrorBody)
    )
)]
pub fn list_users() {}

/// Create a user (admin)
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    security(("bearer" = []), ("apiToken" = [])),
    request_body(content = NewUser, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CreatedUser),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody),
        (status = 413, description = "The body is larger than an account request can be", body = ErrorBody)
    )
)]
pub fn create_user() {}

/// Activate, deactivate, promote, demote or unlock a user (admin)
#[utoipa::path(
    patch,
    path = "/users/{email}",
    tag = "users",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("email" = String, Path, description = "Percent-encoded address")
    ),
    request_body(content = UserChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody)
    )
)]
pub fn update_user() {}

/// Delete a user with all their jobs (admin)
///
/// The user is deactivated at once (their sessions, links and event streams end), every job of theirs is deleted as `DELETE /jobs/{id}` deletes one (its stored bytes are gone within seconds), then the account. A token issued before an address is registered again opens nothing.
#[utoipa::path(
    delete,
    path = "/users/{email}",
    tag = "users",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("email" = String, Path, description = "Percent-encoded address")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Your own account, or the last active administrator", body = ErrorBody),
        (status = 503, description = "The job queue is unreachable; retry after `Retry-After`", body = ErrorBody)
    )
)]
pub fn delete_user() {}
