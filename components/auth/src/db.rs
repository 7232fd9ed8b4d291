//! The shared SQLite database: lazy schema, the `users` table (lookups, creation, changes that
//! never leave the platform without an active administrator) and the first administrator.

use crate::config::Config;
use edge_spin::ApiError;
use serde::Serialize;
use spin_sdk::sqlite::{Connection, Error, Value};

pub use edge_spin::{db_error, default_callback, open_database as open};

pub struct User {
    pub password_hash: String,
    pub admin: bool,
    pub active: bool,
}

#[derive(Serialize)]
pub struct UserInfo {
    pub email: String,
    pub admin: bool,
    pub active: bool,
    pub created_at: u64,
}

pub fn find_user(db: &Connection, email: &str) -> Result<Option<User>, ApiError> {
    let result = db
        .execute("SELECT password_hash, admin, active FROM users WHERE email = ?1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(result.rows().next().map(|row| User {
        password_hash: row.get::<&str>("password_hash").unwrap_or_default().to_string(),
        admin: row.get("admin").unwrap_or(false),
        active: row.get("active").unwrap_or(false),
    }))
}

pub fn set_default_callback(db: &Connection, email: &str, url: Option<&str>) -> Result<(), ApiError> {
    let value = url.map_or(Value::Null, |u| Value::Text(u.into()));
    db.execute(
        "INSERT INTO user_settings (email, default_callback) VALUES (?1, ?2) \
         ON CONFLICT (email) DO UPDATE SET default_callback = excluded.default_callback",
        &[Value::Text(email.into()), value],
    )
    .map_err(db_error)?;
    Ok(())
}

fn user_infos(result: &spin_sdk::sqlite::QueryResult) -> Vec<UserInfo> {
    result
        .rows()
        .map(|row| UserInfo {
            email: row.get::<&str>("email").unwrap_or_default().to_string(),
            admin: row.get("admin").unwrap_or(false),
            active: row.get("active").unwrap_or(false),
            created_at: row.get("created_at").unwrap_or(0),
        })
        .collect()
}

/// One page of the users, oldest first.
pub fn list_users(db: &Connection, limit: u32, offset: u32) -> Result<Vec<UserInfo>, ApiError> {
    let result = db
        .execute(
            "SELECT email, admin, active, created_at FROM users ORDER BY created_at, email LIMIT ?1 OFFSET ?2",
            &[Value::Integer(limit.into()), Value::Integer(offset.into())],
        )
        .map_err(db_error)?;
    Ok(user_infos(&result))
}

pub fn set_password_hash(db: &Connection, email: &str, hash: &str) -> Result<(), ApiError> {
    db.execute(
        "UPDATE users SET password_hash = ?2 WHERE email = ?1",
        &[Value::Text(email.into()), Value::Text(hash.into())],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn user_info(db: &Connection, email: &str) -> Result<Option<UserInfo>, ApiError> {
    let result = db
        .execute("SELECT email, admin, active, created_at FROM users WHERE email = ?1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(user_infos(&result).into_iter().next())
}

/// Sets what is given of `active` and `admin` on an existing user, in one statement that
/// refuses (`false`) to take away the last active administrator, so that two administrators
/// demoting each other at once cannot both succeed.
pub fn update_user(db: &Connection, email: &str, active: Option<bool>, admin: Option<bool>) -> Result<bool, ApiError> {
    let flag = |v: Option<bool>| v.map_or(Value::Null, |b| Value::Integer(b.into()));
    let result = db
        .execute(
            "UPDATE users SET active = COALESCE(?2, active), admin = COALESCE(?3, admin)
             WHERE email = ?1 AND (
                  (COALESCE(?2, active) = 1 AND COALESCE(?3, admin) = 1)
               OR NOT (active = 1 AND admin = 1)
               OR EXISTS (SELECT 1 FROM users o WHERE o.email <> ?1 AND o.admin = 1 AND o.active = 1))
             RETURNING email",
            &[Value::Text(email.into()), flag(active), flag(admin)],
        )
        .map_err(db_error)?;
    Ok(result.rows().next().is_some())
}

/// Inserts a user; `false` when the e-mail is taken.
pub fn insert_user(
    db: &Connection,
    email: &str,
    password_hash: String,
    admin: bool,
    now: u64,
) -> Result<bool, ApiError> {
    let inserted = db.execute(
        "INSERT INTO users (email, password_hash, admin, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        &[
            Value::Text(email.into()),
            Value::Text(password_hash),
            Value::Integer(admin.into()),
            Value::Integer(now as i64),
        ],
    );
    match inserted {
        Ok(_) => Ok(true),
        Err(Error::Io(msg)) if msg.contains("UNIQUE") => Ok(false),
        Err(e) => Err(db_error(e)),
    }
}

/// An argon2id hash of `password` with a fresh random salt.
pub fn hash_new_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal("no randomness available", e))?;
    Ok(edge_auth::hash_password(password, &salt))
}

/// Creates the configured administrator when there is no administrator yet (and the configured
/// address is not already taken by an ordinary user). Cheap once an administrator exists. An
/// address that could not log in or a password that new users could not choose is refused,
/// with the reason in the log.
pub fn ensure_admin(db: &Connection, config: &Config, now: u64) -> Result<(), ApiError> {
    if config.admin_email.is_empty() || config.admin_password.is_empty() {
        return Ok(());
    }
    let result = db
        .execute(
            "SELECT EXISTS (SELECT 1 FROM users WHERE admin = 1) OR EXISTS (SELECT 1 FROM users WHERE email = ?1) AS present",
            &[Value::Text(config.admin_email.clone())],
        )
        .map_err(db_error)?;
    if result.rows().next().and_then(|row| row.get::<bool>("present")).unwrap_or(true) {
        return Ok(());
    }
    if let Err(reason) = edge_auth::check_email(&config.admin_email) {
        eprintln!("admin_email {:?} is refused: {reason}; no administrator created", config.admin_email);
        return Ok(());
    }
    if let Err(reason) = edge_auth::check_password(&config.admin_password, &config.admin_email) {
        eprintln!("admin_password is refused: {reason}; no administrator created (set a stronger admin_password)");
        return Ok(());
    }
    let hash = hash_new_password(&config.admin_password)?;
    db.execute(
        "INSERT OR IGNORE INTO users (email, password_hash, admin, active, created_at) VALUES (?1, ?2, 1, 1, ?3)",
        &[Value::Text(config.admin_email.clone()), Value::Text(hash), Value::Integer(now as i64)],
    )
    .map_err(db_error)?;
    eprintln!("created the first administrator {}", config.admin_email);
    Ok(())
}
