//! Operations of the API description: saved conversion presets: `/users/me/presets`.

use api_model::ErrorBody;
use api_model::auth::Preset;
use api_model::auth::PresetBody;

/// The caller's saved conversion presets
#[utoipa::path(
    get,
    path = "/users/me/presets",
    tag = "presets",
    security(("bearer" = []), ("apiToken" = [])),
    responses(
        (status = 200, description = "The presets, by name", body = [Preset]),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody)
    )
)]
pub fn list_presets() {}

/// Save a preset (create or replace)
#[utoipa::path(
    put,
    path = "/users/me/presets/{name}",
    tag = "presets",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("name" = String, Path, description = "Percent-encoded preset name", min_length = 1, max_length = 64)
    ),
    request_body(content = PresetBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The preset as saved", body = Preset),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 409, description = "The user keeps 50 presets already", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Unsupported media type", body = ErrorBody)
    )
)]
pub fn save_preset() {}

/// Delete a preset
#[utoipa::path(
    delete,
    path = "/users/me/presets/{name}",
    tag = "presets",
    security(("bearer" = []), ("apiToken" = [])),
    params(
        ("name" = String, Path, description = "Percent-encoded preset name", min_length = 1, max_length = 64)
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed request or option", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 404, description = "No such resource (or another user's: ids do not leak)", body = ErrorBody)
    )
)]
pub fn delete_preset() {}
