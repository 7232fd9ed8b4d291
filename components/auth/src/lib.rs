//! The `auth` component: log-in with failed-login throttling (`/login`), signing out
//! (`/logout`), token validation (`/validate`), user management (`/users`, `/users/{email}`),
//! personal API tokens (`/users/me/tokens`, `/users/{email}/tokens`) and the caller's own
//! settings (`/users/me`, their presets and their webhook's test event) over the shared SQLite
//! database.

mod callback_test;
mod config;
mod db;
mod login;
mod logout;
mod presets;
mod redis;
mod removal;
mod throttle;
mod tokens;
mod usage;
mod users;
mod validate;

use config::Config;
use edge_spin::{ApiError, ApiResult, BodyStream, Cors, Head, Reply};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::sqlite::Connection;

/// Most request-body bytes read and discarded after an early answer (see `edge_spin::drain`).
const DRAIN_LIMIT: u64 = 1 << 20;

/// What every route needs: configuration, the database and the time of the request.
pub struct Ctx {
    pub config: Config,
    pub db: Connection,
    /// Unix seconds.
    pub now: u64,
}

impl Ctx {
    fn load() -> Result<Ctx, ApiError> {
        let config = Config::load()?;
        let db = db::open()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        db::ensure_admin(&db, &config, now)?;
        Ok(Ctx { config, db, now })
    }
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = Head::of(&req);
    let cors = Cors::of(&head);
    let mut body: BodyStream = Box::pin(req.into_body_stream());
    let reply = match (methods(&head.path), &head.method) {
        // Preflights carry no credentials and need nothing else.
        (Some(methods), Method::Options) => cors.preflight(methods),
        _ => cors.apply(route(&head, &mut body).await.unwrap_or_else(Reply::from)),
    };
    reply.send(out).await;
    edge_spin::drain(&mut body, DRAIN_LIMIT).await;
}

/// The methods a path supports (`None`: no such resource).
fn methods(path: &str) -> Option<&'static str> {
    match path {
        "/login" | "/logout" | "/validate" => Some("POST"),
        "/users" => Some("GET, POST"),
        "/users/me" => Some("GET, PUT"),
        "/users/me/password" => Some("PUT"),
        "/users/me/presets" => Some("GET"),
        "/users/me/callback/test" => Some("POST"),
        "/users/me/tokens" => Some("GET, POST"),
        path if preset_path(path).is_some() => Some("PUT, DELETE"),
        path if token_path(path).is_some() => Some("DELETE"),
        path => match user_tokens_path(path) {
            Some((_, None)) => Some("GET"),
            Some((_, Some(_))) => Some("DELETE"),
            None if user_path(path).is_some() => Some("PATCH, DELETE"),
            None => None,
        },
    }
}

async fn route(head: &Head, body: &mut BodyStream) -> ApiResult {
    let ctx = Ctx::load()?;
    match (head.path.as_str(), &head.method) {
        ("/login", Method::Post) => login::handle(&ctx, head),
        ("/login", _) => Err(ApiError::method_not_allowed("POST")),
        ("/logout", Method::Post) => logout::handle(&ctx, head),
        ("/logout", _) => Err(ApiError::method_not_allowed("POST")),
        ("/validate", Method::Post) => validate::handle(&ctx, head),
        ("/validate", _) => Err(ApiError::method_not_allowed("POST")),
        ("/users", Method::Get) => users::list(&ctx, head),
        ("/users", Method::Post) => users::create(&ctx, head, body).await,
        ("/users", _) => Err(ApiError::method_not_allowed("GET, POST")),
        ("/users/me", Method::Get) => users::me(&ctx, head),
        ("/users/me", Method::Put) => users::update_me(&ctx, head, body).await,
        ("/users/me", _) => Err(ApiError::method_not_allowed("GET, PUT")),
        ("/users/me/password", Method::Put) => users::change_password(&ctx, head, body).await,
        ("/users/me/password", _) => Err(ApiError::method_not_allowed("PUT")),
        ("/users/me/presets", Method::Get) => presets::list(&ctx, &users::require_user(&ctx, head)?.0),
        ("/users/me/presets", _) => Err(ApiError::method_not_allowed("GET")),
        ("/users/me/callback/test", Method::Post) => callback_test::request(&ctx, &users::require_user(&ctx, head)?.0),
        ("/users/me/callback/test", _) => Err(ApiError::method_not_allowed("POST")),
        ("/users/me/tokens", Method::Get) => tokens::list_own(&ctx, head),
        ("/users/me/tokens", Method::Post) => tokens::create(&ctx, head, body).await,
        ("/users/me/tokens", _) => Err(ApiError::method_not_allowed("GET, POST")),
        (path, method) if token_path(path).is_some() => match method {
            Method::Delete => tokens::revoke_own(&ctx, head, token_path(path).unwrap_or_default()),
            _ => Err(ApiError::method_not_allowed("DELETE")),
        },
        (path, method) if user_tokens_path(path).is_some() => match (user_tokens_path(path).unwrap_or_default(), method) {
            ((email, None), Method::Get) => tokens::list_of_user(&ctx, head, email),
            ((_, None), _) => Err(ApiError::method_not_allowed("GET")),
            ((email, Some(id)), Method::Delete) => tokens::revoke_of_user(&ctx, head, email, id),
            ((_, Some(_)), _) => Err(ApiError::method_not_allowed("DELETE")),
        },
        (path, method) if preset_path(path).is_some() => {
            let name = preset_path(path).unwrap_or_default();
            match method {
                Method::Put => presets::save(&ctx, head, body, &users::require_user(&ctx, head)?.0, name).await,
                Method::Delete => presets::delete(&ctx, &users::require_user(&ctx, head)?.0, name),
                _ => Err(ApiError::method_not_allowed("PUT, DELETE")),
            }
        }
        (path, method) => match (user_path(path), method) {
            (Some(email), Method::Patch) => users::update(&ctx, head, body, email).await,
            (Some(email), Method::Delete) => removal::delete_user(&ctx, &users::require_admin(&ctx, head)?, email),
            (Some(_), _) => Err(ApiError::method_not_allowed("PATCH, DELETE")),
            (None, _) => Err(ApiError::not_found()),
        },
    }
}

/// The (still percent-encoded) name in `/users/me/presets/{name}`.
fn preset_path(path: &str) -> Option<&str> {
    path.strip_prefix("/users/me/presets/").filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The id in `/users/me/tokens/{id}`.
fn token_path(path: &str) -> Option<&str> {
    path.strip_prefix("/users/me/tokens/").filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The (still percent-encoded) address in `/users/{email}/tokens`, and the id in
/// `/users/{email}/tokens/{id}`.
fn user_tokens_path(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/users/")?;
    let (email, rest) = rest.split_once('/')?;
    if email.is_empty() || email == "me" {
        return None;
    }
    match rest.strip_prefix("tokens")? {
        "" => Some((email, None)),
        id => id.strip_prefix('/').filter(|id| !id.is_empty() && !id.contains('/')).map(|id| (email, Some(id))),
    }
}

/// The (still percent-encoded) address in `/users/{email}`.
fn user_path(path: &str) -> Option<&str> {
    path.strip_prefix("/users/").filter(|rest| !rest.is_empty() && !rest.contains('/') && *rest != "me")
}
