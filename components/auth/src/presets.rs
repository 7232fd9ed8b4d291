//! `GET /users/me/presets`, `PUT` and `DELETE /users/me/presets/{name}`: a user's saved
//! conversion settings, stored on the user (so they follow them from browser to browser) as the
//! upload options they stand for (`format`, `bitrate`, … as `POST /upload` takes them).
//!
//! Each option is checked as an upload parses it; whether the format's plugin takes it is
//! checked when the preset is used, since plugins can change after it was saved.

use std::collections::BTreeMap;

use crate::Ctx;
use crate::db::db_error;
use edge_spin::{ApiError, ApiResult, BodyStream, Head, Reply, media_type, read_body};
use job_model::options;
use api_model::auth::{Preset, PresetBody};
use spin_sdk::sqlite::Value;

/// Most presets one user keeps.
pub const MAX_PRESETS: u64 = 50;
/// Longest preset name, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Largest accepted `PUT` body.
const MAX_BODY: usize = 16 * 1024;

/// The preset name in the path, decoded and checked: 1–64 characters, no control or
/// direction-changing characters, no leading or trailing space.
fn preset_name(raw: &str) -> Result<String, ApiError> {
    let name = edge_http::query::path_segment(raw);
    let invalid = |detail: &str| ApiError::bad_request("invalid preset name", detail.to_string());
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("a preset name has 1 to 64 characters"));
    }
    if name.trim() != name {
        return Err(invalid("a preset name does not start or end with spaces"));
    }
    if name.chars().any(|c| c == '/' || options::is_refused_in_tags(c)) {
        return Err(invalid("a preset name has no '/', control or direction-changing characters"));
    }
    Ok(name)
}

/// The options as text, each checked as an upload checks it, and their combinations.
fn checked_params(params: BTreeMap<String, serde_json::Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = |detail: String| ApiError::bad_request("invalid preset", detail);
    if params.is_empty() {
        return Err(invalid("a preset holds at least one option, e.g. {\"params\": {\"format\": \"mp3\"}}".into()));
    }
    let mut checked = BTreeMap::new();
    for (name, value) in params {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => return Err(invalid(format!("option {name:?} must be a string or a number, not {other}"))),
        };
        options::check_param(&name, &text).map_err(invalid)?;
        checked.insert(name, text);
    }
    if checked.contains_key("bitrate") && checked.contains_key("vbr") {
        return Err(invalid("give either bitrate (constant) or vbr (variable), not both".into()));
    }
    if checked.contains_key("true_peak") && !checked.contains_key("normalize") {
        return Err(invalid("true_peak is the ceiling of normalize; give both".into()));
    }
    let time = |name: &str| checked.get(name).and_then(|raw| options::parse_time(name, raw).ok());
    options::check_trim(time("start"), time("end")).map_err(invalid)?;
    Ok(checked)
}

fn presets_of(ctx: &Ctx, email: &str, name: Option<&str>) -> Result<Vec<Preset>, ApiError> {
    let result = ctx
        .db
        .execute(
            "SELECT name, params, updated_at FROM user_presets WHERE email = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
            &[Value::Text(email.into()), name.map_or(Value::Null, |n| Value::Text(n.into()))],
        )
        .map_err(db_error)?;
    Ok(result
        .rows()
        .map(|row| Preset {
            name: row.get::<&str>("name").unwrap_or_default().to_string(),
            params: serde_json::from_str(row.get::<&str>("params").unwrap_or("{}")).unwrap_or_default(),
            updated_at: row.get("updated_at").unwrap_or(0),
        })
        .collect())
}

pub fn list(ctx: &Ctx, email: &str) -> ApiResult {
    Ok(Reply::json(200, &presets_of(ctx, email, None)?))
}

/// Creates or replaces a preset, in one statement that refuses a new one past
/// [`MAX_PRESETS`] (parallel saves cannot pass a count made before the others were stored).
pub async fn save(ctx: &Ctx, head: &Head, body: &mut BodyStream, email: &str, raw_name: &str) -> ApiResult {
    let name = preset_name(raw_name)?;
    if media_type(head.header("content-type").unwrap_or("")) != "application/json" {
        return Err(ApiError::new(415, "unsupported media type", "the body must be application/json"));
    }
    let body = read_body(head, body, MAX_BODY).await?;
    let preset: PresetBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid body", format!("expected {{\"params\": {{\"format\": \"mp3\", …}}}}: {e}")))?;
    let params = checked_params(preset.params)?;
    let stored = ctx
        .db
        .execute(
            "INSERT INTO user_presets (email, name, params, updated_at)
             SELECT ?1, ?2, ?3, ?4 WHERE (SELECT COUNT(*) FROM user_presets WHERE email = ?1) < ?5
                OR EXISTS (SELECT 1 FROM user_presets WHERE email = ?1 AND name = ?2)
             ON CONFLICT (email, name) DO UPDATE SET params = excluded.params, updated_at = excluded.updated_at
             RETURNING name",
            &[
                Value::Text(email.into()),
                Value::Text(name.clone()),
                Value::Text(serde_json::to_string(&params).unwrap_or_default()),
                Value::Integer(i64::try_from(ctx.now).unwrap_or(i64::MAX)),
                Value::Integer(MAX_PRESETS as i64),
            ],
        )
        .map_err(db_error)?;
    if stored.rows().next().is_none() {
        return Err(ApiError::new(409, "too many presets", format!("a user keeps at most {MAX_PRESETS} presets; delete one first")));
    }
    Ok(Reply::json(200, &Preset { name, params, updated_at: ctx.now }))
}

pub fn delete(ctx: &Ctx, email: &str, raw_name: &str) -> ApiResult {
    let name = preset_name(raw_name)?;
    let deleted = ctx
        .db
        .execute(
            "DELETE FROM user_presets WHERE email = ?1 AND name = ?2 RETURNING name",
            &[Value::Text(email.into()), Value::Text(name.clone())],
        )
        .map_err(db_error)?;
    if deleted.rows().next().is_none() {
        return Err(ApiError::new(404, "not found", format!("no preset named {name:?}")));
    }
    Ok(Reply::empty(204))
}
