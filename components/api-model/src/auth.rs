//! Bodies of the accounts API: log-in and sessions, users, personal API tokens, presets.

use std::collections::BTreeMap;

use job_model::callback_test::CallbackTestStatus;
use serde::{Deserialize, Serialize};

/// What a bearer credential stands for now (`POST /validate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claims {
    pub email: String,
    /// The user's current row says administrator (and, for a session, the session too).
    pub admin: bool,
    /// Unix seconds the credential was issued (an API token's creation).
    pub iat: u64,
    /// Unix seconds it ends; `null` for an API token without expiry.
    pub exp: Option<u64>,
    pub kind: CredentialKind,
    /// The API token's id (`kind` = `api_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A JWT from `POST /login`.
    Session,
    /// A personal API token (`mp3e_…`).
    ApiToken,
}

/// A user as the administrators' list shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub email: String,
    pub admin: bool,
    pub active: bool,
    /// Unix seconds.
    pub created_at: u64,
    /// Log-in throttling holds the account now (`unlock` clears it).
    pub locked: bool,
    /// Unix seconds until which it holds.
    pub locked_until: Option<u64>,
    /// Bytes the user's jobs hold now.
    pub used_bytes: u64,
    /// The per-user quota (0: none).
    pub quota_bytes: u64,
}

/// `POST /users` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"})))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    /// At least 10 characters, not a common password, not the e-mail address.
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

/// The user `POST /users` created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedUser {
    pub email: String,
    pub admin: bool,
}

/// `PATCH /users/{email}` (admin): what to change; absent fields stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"active": false})))]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// `true` clears the account's failed-log-in throttling (`false` is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock: Option<bool>,
}

/// The caller's own settings and storage (`GET /users/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub email: String,
    pub admin: bool,
    /// The webhook a job without `?callback=` reports to.
    pub default_callback: Option<String>,
    pub used_bytes: u64,
    /// 0: no quota.
    pub quota_bytes: u64,
    /// The largest upload accepted (0: no limit).
    pub max_upload_bytes: u64,
    /// The last test event sent to the default webhook and its outcome.
    pub callback_test: Option<CallbackTestStatus>,
}

/// `PUT /users/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"default_callback": "https://example.com/hooks/mp3edge"})))]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A public `http(s)` URL; `null` or empty removes it.
    pub default_callback: Option<String>,
}

/// `PUT /users/me/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// A new session token: the password change ended every other session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewSession {
    /// A JWT for `Authorization: Bearer`.
    pub token: String,
}

/// A personal API token as lists show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; `null`: never.
    pub expires_at: Option<u64>,
    /// Unix seconds of its last use; `null`: not used yet.
    pub last_used_at: Option<u64>,
}

/// `POST /users/me/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "nightly backup", "expires_in_days": 90})))]
#[serde(deny_unknown_fields)]
pub struct NewApiTokenRequest {
    /// 1–64 characters, unique among the caller's tokens.
    pub name: String,
    /// 1–3650 days; absent or `null`: the token does not expire.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<serde_json::Value>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewApiToken {
    pub id: String,
    pub name: String,
    /// `mp3e_` and 43 base64url characters, for `Authorization: Bearer`. Stored only as a hash.
    pub token: String,
    pub created_at: u64,
    pub expires_at: Option<u64>,
}

/// A saved set of conversion options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preset {
    pub name: String,
    /// Upload parameters by name (`format`, `bitrate`, `vbr`, `level`, `start`, `end`, `rate`,
    /// `channels`, `track`, `normalize`, `true_peak`, `title`, `artist`, `album`, `cover`), as
    /// `POST /upload` takes them.
    pub params: BTreeMap<String, String>,
    /// Unix seconds.
    pub updated_at: u64,
}

/// `PUT /users/me/presets/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"params": {"format": "opus", "bitrate": "96", "normalize": "-16"}})))]
#[serde(deny_unknown_fields)]
pub struct PresetBody {
    /// Upload parameters by name; values are strings or numbers, checked as `POST /upload`
    /// checks them.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub params: BTreeMap<String, serde_json::Value>,
}
