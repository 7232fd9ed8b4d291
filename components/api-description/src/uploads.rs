//! Operations of the API description: uploads: `POST /upload` (one request, a form, or an import by URL) and tus 1.0.0 at `/uploads`.

use api_model::ErrorBody;
use api_model::jobs::Accepted;
use api_model::jobs::ImportRequest;
use crate::types::Binary;
use crate::types::ConversionParams;
use crate::types::UploadForm;

/// Upload a video to convert
#[utoipa::path(
    post,
    path = "/upload",
    tag = "uploads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ConversionParams,
        ("filename" = Option<String>, Query, description = "File name of a raw (non-multipart) body"),
        ("callback" = Option<String>, Query, description = "Webhook called when the job ends"),
        ("url" = Option<String>, Query, description = "Import the file from this `http(s)` URL instead of uploading it: a worker fetches it (only from public addresses, unless the operator's `url_import_allowed_hosts` names the host; at most 5 redirects, each checked). A refused URL is a 400 `url not allowed`, a source over the upload limit or the quota a 413; a source that fails later (404, silence, not media) fails the job with its reason. The job is `uploading` (`received_bytes`, `source_url`) while it is fetched.", max_length = 2048)
    ),
    request_body(content((UploadForm = "multipart/form-data"), (Binary = "application/octet-stream"), (ImportRequest = "application/json"))),
    responses(
        (status = 202, description = "Accepted and queued", body = Accepted),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 408, description = "The request body stopped arriving", body = ErrorBody),
        (status = 413, description = "Too large, or `quota_exceeded`", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody),
        (status = 429, description = "Throttled, or too many jobs/streams (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody),
        (status = 507, description = "The storage is full", body = ErrorBody)
    )
)]
pub fn upload() {}

/// What the tus server supports
///
/// tus discovery (and a CORS preflight when it carries `Access-Control-Request-Method`).
#[utoipa::path(
    options,
    path = "/uploads",
    tag = "uploads",
    responses(
        (status = 204, description = "Supported", headers(("Tus-Resumable" = String, description = "1.0.0"), ("Tus-Version" = String, description = "1.0.0"), ("Tus-Extension" = String, description = "creation,creation-with-upload,termination,expiration"), ("Tus-Max-Size" = u64, description = "The largest upload, in bytes (`max_upload_bytes`)")))
    )
)]
pub fn resumable_upload_options() {}

/// Start a resumable upload (tus creation)
///
/// Creates the upload and its job (`uploading`, with `received_bytes`), reserving `Upload-Length` against the quota. `Upload-Metadata` carries `filename`, `filetype` and the conversion options under the names `POST /upload` takes in its query (`format`, `bitrate`, `vbr`, `level`, `start`, `end`, `rate`, `channels`, `track`, `normalize`, `true_peak`, `title`, `artist`, `album`, `cover`, `callback`), each value Base64. With a body of type `application/offset+octet-stream`, its bytes are the file's first (creation-with-upload). Send the rest with `PATCH` to `Location`.
#[utoipa::path(
    post,
    path = "/uploads",
    tag = "uploads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("Tus-Resumable" = String, Header, description = "The tus protocol version the client speaks (412 otherwise)", example = "1.0.0"),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes", minimum = 1),
        ("Upload-Metadata" = Option<String>, Header, description = "Comma-separated `key base64value` pairs (see above)", nullable = false)
    ),
    request_body(content = Binary, content_type = "application/offset+octet-stream"),
    responses(
        (status = 201, description = "Created", headers(("Location" = String, description = "`/uploads/{id}`"), ("Tus-Resumable" = String, description = "1.0.0"), ("Upload-Expires" = String, description = "When the upload expires without progress (an HTTP date)"), ("Upload-Offset" = u64, description = "With a body: the bytes kept"))),
        (status = 400, description = "Malformed `Upload-Length` or `Upload-Metadata`, an invalid option, or an empty upload", body = ErrorBody),
        (status = 413, description = "`Upload-Length` over `max_upload_bytes`, or over the quota (`quota_exceeded`)", body = ErrorBody),
        (status = 415, description = "`filetype` is not a video or audio type", body = ErrorBody),
        (status = 429, description = "Too many jobs in flight (`Retry-After`)", body = ErrorBody),
        (status = 507, description = "The service's storage is full", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 412, description = "Not a tus 1.0.0 request: `Tus-Resumable` missing or another version (`Tus-Version` says which this server speaks)", body = ErrorBody, headers(("Tus-Version" = String, description = "1.0.0"))),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn create_resumable_upload() {}

/// How much of a resumable upload is stored
#[utoipa::path(
    head,
    path = "/uploads/{id}",
    tag = "uploads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "The upload's id, which is its job's id (32 hex digits)", pattern = "^[0-9a-f]{32}$"),
        ("Tus-Resumable" = String, Header, description = "The tus protocol version the client speaks (412 otherwise)", example = "1.0.0")
    ),
    responses(
        (status = 200, description = "The offset (the upload's length once complete)", headers(("Tus-Resumable" = String, description = "1.0.0"), ("Upload-Offset" = u64, description = "Bytes stored so far"), ("Upload-Expires" = String, description = "When the upload expires if it makes no more progress (an HTTP date); absent once complete"), ("Upload-Length" = u64, description = "The announced size"), ("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such upload (or another user's: ids do not leak)", body = ErrorBody),
        (status = 412, description = "Not a tus 1.0.0 request: `Tus-Resumable` missing or another version (`Tus-Version` says which this server speaks)", body = ErrorBody, headers(("Tus-Version" = String, description = "1.0.0"))),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn resumable_upload_offset() {}

/// Append to a resumable upload
///
/// The body goes at `Upload-Offset`, which must be the stored offset. What arrives is kept even when the request ends early; the last byte queues the job. One append at a time.
#[utoipa::path(
    patch,
    path = "/uploads/{id}",
    tag = "uploads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "The upload's id, which is its job's id (32 hex digits)", pattern = "^[0-9a-f]{32}$"),
        ("Tus-Resumable" = String, Header, description = "The tus protocol version the client speaks (412 otherwise)", example = "1.0.0"),
        ("Upload-Offset" = u64, Header, description = "Where the body's bytes go", minimum = 0)
    ),
    request_body(content = Binary, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended", headers(("Tus-Resumable" = String, description = "1.0.0"), ("Upload-Offset" = u64, description = "Bytes stored so far"), ("Upload-Expires" = String, description = "When the upload expires if it makes no more progress (an HTTP date); absent once complete"))),
        (status = 400, description = "Malformed `Upload-Offset`, or a body that could not be read", body = ErrorBody),
        (status = 408, description = "The body stopped arriving (what arrived is kept)", body = ErrorBody),
        (status = 409, description = "`Upload-Offset` is not the stored offset (`Upload-Offset` says it), another request is appending, or the upload is complete", body = ErrorBody, headers(("Upload-Offset" = u64, description = "The stored offset"))),
        (status = 413, description = "The body goes past `Upload-Length`", body = ErrorBody),
        (status = 415, description = "The body is not `application/offset+octet-stream`", body = ErrorBody),
        (status = 507, description = "The service's storage is full", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such upload (or another user's: ids do not leak)", body = ErrorBody),
        (status = 412, description = "Not a tus 1.0.0 request: `Tus-Resumable` missing or another version (`Tus-Version` says which this server speaks)", body = ErrorBody, headers(("Tus-Version" = String, description = "1.0.0"))),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn append_resumable_upload() {}

/// End a resumable upload (tus termination)
///
/// Ends the upload, or the job it became, and frees everything it stored.
#[utoipa::path(
    delete,
    path = "/uploads/{id}",
    tag = "uploads",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("id" = String, Path, description = "The upload's id, which is its job's id (32 hex digits)", pattern = "^[0-9a-f]{32}$"),
        ("Tus-Resumable" = String, Header, description = "The tus protocol version the client speaks (412 otherwise)", example = "1.0.0")
    ),
    responses(
        (status = 204, description = "Ended", headers(("Tus-Resumable" = String, description = "1.0.0"))),
        (status = 500, description = "A store write failed half-way: the deletion is recorded first, and the sweeper finishes it within seconds", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such upload (or another user's: ids do not leak)", body = ErrorBody),
        (status = 412, description = "Not a tus 1.0.0 request: `Tus-Resumable` missing or another version (`Tus-Version` says which this server speaks)", body = ErrorBody, headers(("Tus-Version" = String, description = "1.0.0"))),
        (status = 503, description = "A backend is unreachable or the server is at capacity (`Retry-After`)", body = ErrorBody)
    )
)]
pub fn terminate_resumable_upload() {}
