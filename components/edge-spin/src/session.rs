//! Who is calling: the bearer credential of every authenticated route of both components,
//! checked against the database as it is now (so one change there ends it everywhere at once).
//!
//! Two kinds of bearer: a session token (JWT from `POST /login`), which holds while its user
//! exists, is active, was not re-created after it was issued, its session version is the
//! user's current one and it was not signed out; and a personal API token (`mp3e_…`), which
//! holds while it exists (deactivation and deletion delete them), has not expired and its
//! user is active. Admin rights need the user's current row (and, for a session token, the
//! token's own claim too). Using an API token records when it was last used.

use edge_auth::api_tokens;
use edge_auth::{HeaderError, TokenAuthority};
use spin_sdk::sqlite::{Connection, Value};

use crate::{ApiError, Head, db_error};

/// The credential a request came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A session token from `POST /login`.
    Session {
        /// Issued and expires at, Unix seconds.
        iat: u64,
        exp: u64,
        /// The session version it was issued under.
        version: u64,
        /// Its own id (`jti`), if it has one.
        id: Option<String>,
    },
    /// A personal API token.
    ApiToken {
        id: String,
        /// Unix seconds.
        created_at: u64,
        /// Unix seconds; `None` never.
        expires_at: Option<u64>,
    },
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Lower case.
    pub email: String,
    pub admin: bool,
    pub credential: Credential,
}

impl Caller {
    /// When the credential stops working by itself (Unix seconds), if ever.
    pub fn expires_at(&self) -> Option<u64> {
        match &self.credential {
            Credential::Session { exp, .. } => Some(*exp),
            Credential::ApiToken { expires_at, .. } => *expires_at,
        }
    }

    pub fn is_api_token(&self) -> bool {
        matches!(self.credential, Credential::ApiToken { .. })
    }

    /// The caller's admin rights as the database says now, `None` once the credential no
    /// longer holds (for long-lived answers, which ask again while they run).
    pub fn current_admin(&self, db: &Connection, now: u64) -> Result<Option<bool>, ApiError> {
        Ok(match &self.credential {
            Credential::Session { iat, version, id, .. } => {
                session_state(db, &self.email, *iat, *version, id.as_deref())?.ok().map(|admin| admin && self.admin)
            }
            Credential::ApiToken { id, .. } => api_token_by_id(db, id, now)?,
        })
    }
}

fn unauthorized(error: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(401, error, detail).header("www-authenticate", "Bearer realm=\"mp3edge\"")
}

/// The bearer of `Authorization` (or `query_token` when there is no such header and the route
/// takes one), checked: the caller, or a 401 that says what is wrong.
pub fn authenticate(
    db: &Connection,
    tokens: &TokenAuthority,
    head: &Head,
    query_token: Option<&str>,
    now: u64,
) -> Result<Caller, ApiError> {
    let authorization = head.header("authorization");
    let bearer = match (authorization, query_token) {
        (None, Some(token)) => token,
        _ => edge_auth::parse_bearer(authorization).map_err(|e| match e {
            HeaderError::Missing => unauthorized("missing credentials", e.to_string()),
            _ => unauthorized("invalid token", e.to_string()),
        })?,
    };
    if api_tokens::is_api_token(bearer) {
        return authenticate_api_token(db, bearer, now);
    }
    let claims = tokens.verify(bearer).map_err(|e| unauthorized("invalid token", e.to_string()))?;
    let email = claims.email.to_lowercase();
    match session_state(db, &email, claims.iat, claims.sv, claims.jti.as_deref())? {
        Ok(admin) => Ok(Caller {
            admin: admin && claims.admin,
            email,
            credential: Credential::Session { iat: claims.iat, exp: claims.exp, version: claims.sv, id: claims.jti },
        }),
        Err(detail) => Err(unauthorized("invalid token", detail)),
    }
}

/// `Ok(admin)` when a session token of `email` issued at `iat` under `version` with `id` still
/// holds; otherwise why not.
fn session_state(db: &Connection, email: &str, iat: u64, version: u64, id: Option<&str>) -> Result<Result<bool, &'static str>, ApiError> {
    let result = db
        .execute(
            "SELECT u.admin, u.active, u.created_at, \
                    COALESCE((SELECT version FROM user_sessions s WHERE s.email = u.email), 0) AS version, \
                    EXISTS (SELECT 1 FROM ended_sessions e WHERE e.jti = ?2) AS ended \
             FROM users u WHERE u.email = ?1",
            &[Value::Text(email.into()), id.map_or(Value::Null, |id| Value::Text(id.into()))],
        )
        .map_err(db_error)?;
    let Some(row) = result.rows().next() else { return Ok(Err("the token's user is unknown or deactivated")) };
    let active: bool = row.get("active").unwrap_or(false);
    let created_at: u64 = row.get("created_at").unwrap_or(u64::MAX);
    // A token issued before its user was (re)created is a deleted account's.
    if !active || iat < created_at {
        return Ok(Err("the token's user is unknown or deactivated"));
    }
    if row.get::<u64>("version").unwrap_or(u64::MAX) != version {
        return Ok(Err("this session has ended: the password was changed or the account deactivated since; sign in again"));
    }
    if row.get::<bool>("ended").unwrap_or(true) {
        return Ok(Err("this session has ended: it was signed out; sign in again"));
    }
    Ok(Ok(row.get("admin").unwrap_or(false)))
}

fn authenticate_api_token(db: &Connection, bearer: &str, now: u64) -> Result<Caller, ApiError> {
    let unknown = || unauthorized("invalid token", "unknown or revoked API token");
    if !api_tokens::is_well_formed(bearer) {
        return Err(unknown());
    }
    let result = db
        .execute(
            "SELECT t.id, t.email, t.created_at, t.expires_at, u.admin, u.active FROM api_tokens t JOIN users u ON u.email = t.email \
             WHERE t.secret_hash = ?1",
            &[Value::Text(api_tokens::secret_hash(bearer))],
        )
        .map_err(db_error)?;
    let Some(row) = result.rows().next() else { return Err(unknown()) };
    let id = row.get::<&str>("id").unwrap_or_default().to_string();
    let email = row.get::<&str>("email").unwrap_or_default().to_string();
    let expires_at: Option<u64> = row.get("expires_at");
    if !row.get::<bool>("active").unwrap_or(false) {
        // Deactivation deletes a user's tokens; this is one made in the meantime's race.
        return Err(unauthorized("invalid token", "the token's user is unknown or deactivated"));
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(unauthorized("invalid token", "this API token has expired; create another one"));
    }
    let admin = row.get("admin").unwrap_or(false);
    // At most one write a second per token, however busy the script using it is.
    db.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        &[Value::Text(id.clone()), Value::Integer(i64::try_from(now).unwrap_or(i64::MAX))],
    )
    .map_err(db_error)?;
    let created_at = row.get("created_at").unwrap_or(0);
    Ok(Caller { email, admin, credential: Credential::ApiToken { id, created_at, expires_at } })
}

/// `Some(admin)` while the API token `id` holds.
fn api_token_by_id(db: &Connection, id: &str, now: u64) -> Result<Option<bool>, ApiError> {
    let result = db
        .execute(
            "SELECT u.admin FROM api_tokens t JOIN users u ON u.email = t.email \
             WHERE t.id = ?1 AND u.active = 1 AND (t.expires_at IS NULL OR t.expires_at > ?2)",
            &[Value::Text(id.into()), Value::Integer(i64::try_from(now).unwrap_or(i64::MAX))],
        )
        .map_err(db_error)?;
    Ok(result.rows().next().map(|row| row.get("admin").unwrap_or(false)))
}

/// The user's current session version (0 until something moved it on).
pub fn session_version(db: &Connection, email: &str) -> Result<u64, ApiError> {
    let result = db
        .execute("SELECT version FROM user_sessions WHERE email = ?1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(result.rows().next().and_then(|row| row.get::<u64>("version")).unwrap_or(0))
}
