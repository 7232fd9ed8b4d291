//! The API description, `GET /openapi.json`, made from code.
//!
//! Schemas are derived (`utoipa::ToSchema`) from the serde types the components serialize and
//! parse (`api_model`, `job_model`); each operation is declared once, in the module of its tag,
//! beside the types it names. The web component's build script writes [`json`] into the wasm,
//! so the description served is the one this crate makes at build time: nothing hand-written
//! to keep in step. The end-to-end test `tests/tests/openapi.rs` holds it to the routes the
//! components serve and to the bodies they send.

pub mod account;
pub mod downloads;
pub mod jobs;
pub mod presets;
pub mod service;
pub mod session;
pub mod tokens;
mod types;
pub mod uploads;
pub mod users;

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mp3edge",
        description = "Upload a video, get its audio back. Every error is JSON `{error, detail}`. Routes that answer cross-origin requests also answer `OPTIONS` preflights (CORS allow-list `cors_allowed_origins`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        session::login, session::logout, session::validate,
        users::list_users, users::create_user, users::update_user, users::delete_user,
        account::get_me, account::update_me, account::change_password, account::test_callback,
        presets::list_presets, presets::save_preset, presets::delete_preset,
        tokens::list_tokens, tokens::create_token, tokens::revoke_token, tokens::list_user_tokens, tokens::revoke_user_token,
        uploads::upload, uploads::resumable_upload_options, uploads::create_resumable_upload, uploads::resumable_upload_offset,
        uploads::append_resumable_upload, uploads::terminate_resumable_upload,
        jobs::list_jobs, jobs::get_job, jobs::delete_job, jobs::retry_job, jobs::job_events,
        downloads::create_link, downloads::download_audio, downloads::audio_headers, downloads::download_by_fid, downloads::download_by_fid_headers,
        service::list_formats, service::web_app, service::web_app_headers, service::api_description, service::api_description_headers,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Signing in and out, and what a credential stands for"),
        (name = "account", description = "The caller's own settings, password and webhook"),
        (name = "users", description = "Administrators manage users"),
        (name = "tokens", description = "Personal API tokens for scripts: `Authorization: Bearer mp3e_…`"),
        (name = "presets", description = "Saved sets of conversion options"),
        (name = "uploads", description = "Uploading a video (in one request, resumably with tus 1.0.0, or by URL)"),
        (name = "jobs", description = "Conversion jobs and their live status"),
        (name = "downloads", description = "The converted audio, by token or by a signed link"),
        (name = "service", description = "The formats on offer, the web app and this description"),
    ),
)]
pub struct ApiDoc;

/// The security schemes operations name.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let http = |scheme, format: Option<&str>, description: &str| {
            let builder = HttpBuilder::new().scheme(scheme).description(Some(description));
            SecurityScheme::Http(match format {
                Some(format) => builder.bearer_format(format).build(),
                None => builder.build(),
            })
        };
        components.add_security_scheme(
            "basic",
            http(HttpAuthScheme::Basic, None, "The user's e-mail address and password, only to `POST /login` (and its throttling)."),
        );
        components.add_security_scheme(
            "bearer",
            http(
                HttpAuthScheme::Bearer,
                Some("JWT"),
                "A session token: the JWT `POST /login` answers (24 h by default). Ends at `POST /logout`, at a password change and at the user's deactivation.",
            ),
        );
        components.add_security_scheme(
            "apiToken",
            http(
                HttpAuthScheme::Bearer,
                Some("mp3e_ API token"),
                "A personal API token (`mp3e_` and 43 base64url characters) from `POST /users/me/tokens`, sent as `Authorization: Bearer mp3e_…`. Works wherever a session token does, except creating tokens, changing the password and `POST /logout`. Ends when revoked, when it expires and at the user's deactivation.",
            ),
        );
        let query = |name: &str, description: &str| SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(name, description)));
        components.add_security_scheme(
            "accessToken",
            query("access_token", "A session or API token in the query, for `EventSource`, which cannot send headers."),
        );
        components.add_security_scheme(
            "linkExpires",
            query("expires", "A signed link's expiry (Unix seconds), from `POST /jobs/{id}/link`; with `linkSignature`."),
        );
        components.add_security_scheme(
            "linkSignature",
            query("sig", "A signed link's signature, from `POST /jobs/{id}/link`; with `linkExpires`."),
        );
    }
}

/// The description as the server sends it.
pub fn json() -> String {
    ApiDoc::openapi().to_pretty_json().expect("the description serializes")
}
