//! Operations of the API description: jobs: lists, records, deletion, retries and the live event stream.

use api_model::ErrorBody;
use api_model::jobs::Accepted;
use api_model::jobs::JobView;
use crate::types::ConversionParams;

/// Own jobs, newest first
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("limit" = Option<u64>, Query, description = "Page size (default 50)", minimum = 1, maximum = 200),
        ("offset" = Option<u64>, Query, description = "Jobs to skip", minimum = 0)
    ),
    responses(
        (status = 200, description = "Jobs", body = [JobView]),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn list_jobs() {}

/// A job
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody)
    )
)]
pub fn get_job() {}

/// Delete (and cancel) a job and everything it stored
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    tag = "jobs",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 500, description = "A store write failed half-way: the deletion is recorded first, and the sweeper finishes it within seconds", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn delete_job() {}

/// Run a job that failed again
#[utoipa::path(
    post,
    path = "/jobs/{id}/retry",
    tag = "jobs",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ConversionParams,
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 202, description = "Queued again", body = Accepted),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody),
        (status = 429, description = "Throttled, or too many jobs/streams (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn retry_job() {}

/// Live status (Server-Sent Events)
#[utoipa::path(
    get,
    path = "/jobs/{id}/events",
    tag = "jobs",
    security(("bearer" = []), ("accessToken" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 200, description = "Events queued, converting, done, failed, gone, timeout (the token expired: reconnect with a fresh one), revoked (the caller was deactivated or lost the rights to see the job); the stream ends after done, failed, gone, timeout or revoked, and follows a job for as long as it converts", body = String, content_type = "text/event-stream"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 429, description = "Throttled, or too many jobs/streams (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn job_events() {}
