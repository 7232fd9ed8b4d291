//! Operations of the API description: what needs no account: the formats on offer, the web app and this description.

use api_model::ErrorBody;
use job_model::FormatInfo;

/// Formats the worker's plugins provide
#[utoipa::path(
    get,
    path = "/formats",
    tag = "service",
    security(),
    responses(
        (status = 200, description = "Formats", body = [FormatInfo]),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn list_formats() {}

/// The web app (the catch-all route `/...` serves its static files)
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    security(),
    responses(
        (status = 200, description = "HTML", body = String, content_type = "text/html"),
        (status = 304, description = "Not modified")
    )
)]
pub fn web_app() {}

/// This description
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    security(),
    responses(
        (status = 200, description = "OpenAPI 3.1", body = serde_json::Value),
        (status = 304, description = "Not modified")
    )
)]
pub fn api_description() {}

/// The web app's headers
#[utoipa::path(
    head,
    path = "/",
    tag = "service",
    security(),
    responses(
        (status = 200, description = "Headers only (`ETag`, `Content-Length`)"),
        (status = 304, description = "Not modified")
    )
)]
pub fn web_app_headers() {}

/// This description's headers
#[utoipa::path(
    head,
    path = "/openapi.json",
    tag = "service",
    security(),
    responses(
        (status = 200, description = "Headers only (`ETag`, `Content-Length`)"),
        (status = 304, description = "Not modified")
    )
)]
pub fn api_description_headers() {}
