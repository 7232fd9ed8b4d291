//! Operations of the API description: the audio: by token, by `?fid=`, or by a signed link.

use api_model::ErrorBody;
use api_model::jobs::SignedLink;
use crate::types::Binary;

/// A signed download link that needs no token
#[utoipa::path(
    post,
    path = "/jobs/{id}/link",
    tag = "downloads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 200, description = "The link", body = SignedLink),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody)
    )
)]
pub fn create_link() {}

/// The audio (bearer token, or a signed link)
///
/// With a signed link (`POST /jobs/{id}/link`), `expires` and `sig` in the query stand for the token.
#[utoipa::path(
    get,
    path = "/jobs/{id}/audio",
    tag = "downloads",
    security(("bearer" = []), ("apiToken" = []), ("linkExpires" = [], "linkSignature" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 200, description = "The audio, as the format's type (`audio/mpeg`, `audio/flac`, …), or as `application/octet-stream` when `Accept` asks for that alone", content((Binary = "audio/*"), (Binary = "application/octet-stream")), headers(("ETag" = String, description = "A strong validator of the audio, for `If-None-Match` and `If-Range`"), ("Content-Disposition" = String, description = "`attachment` with the source's name and the format's extension"))),
        (status = 206, description = "A byte range of the audio (`Range`)", content((Binary = "audio/*"), (Binary = "application/octet-stream"))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 416, description = "Range not satisfiable (`Content-Range: bytes */size`)", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody)
    )
)]
pub fn download_audio() {}

/// The audio's headers
#[utoipa::path(
    head,
    path = "/jobs/{id}/audio",
    tag = "downloads",
    security(("bearer" = []), ("apiToken" = []), ("linkExpires" = [], "linkSignature" = [])),
    params(
        ("id" = String, Path, description = "Job id (32 hex digits)", pattern = "^[0-9a-f]{32}$")
    ),
    responses(
        (status = 200, description = "Headers only"),
        (status = 304, description = "Not modified"),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Forbidden", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody)
    )
)]
pub fn audio_headers() {}

/// The audio by `?fid=`
#[utoipa::path(
    get,
    path = "/download",
    tag = "downloads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("fid" = String, Query, description = "Job id")
    ),
    responses(
        (status = 200, description = "The audio, as the format's type (`audio/mpeg`, `audio/flac`, …), or as `application/octet-stream` when `Accept` asks for that alone", content((Binary = "audio/*"), (Binary = "application/octet-stream")), headers(("ETag" = String, description = "A strong validator of the audio, for `If-None-Match` and `If-Range`"), ("Content-Disposition" = String, description = "`attachment` with the source's name and the format's extension"))),
        (status = 206, description = "A byte range of the audio (`Range`)", content((Binary = "audio/*"), (Binary = "application/octet-stream"))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 416, description = "Range not satisfiable (`Content-Range: bytes */size`)", body = ErrorBody),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody)
    )
)]
pub fn download_by_fid() {}

/// The audio's headers by `?fid=`
#[utoipa::path(
    head,
    path = "/download",
    tag = "downloads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("fid" = String, Query, description = "Job id")
    ),
    responses(
        (status = 200, description = "Headers only"),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody),
        (status = 409, description = "Conflict with the resource's state", body = ErrorBody)
    )
)]
pub fn download_by_fid_headers() {}
