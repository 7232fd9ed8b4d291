//! The shared SQLite database: lazy schema, user status lookups and the job ownership index.

use crate::http_util::ApiError;
use spin_sdk::sqlite::{Connection, Error, Value};

/// The schema shared with the auth component; every statement is a cheap no-op once applied.
const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, password_hash TEXT NOT NULL, \
     admin INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS login_failures (subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, \
     window_start INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at)",
];

pub fn db_error(e: Error) -> ApiError {
    ApiError::internal("database error", e)
}

/// Opens the `default` database and makes sure the schema exists.
pub fn open() -> Result<Connection, ApiError> {
    let db = Connection::open("default").map_err(db_error)?;
    for statement in SCHEMA {
        db.execute(statement, &[]).map_err(db_error)?;
    }
    Ok(db)
}

/// `Some(admin)` for an existing, active user.
pub fn active_user_is_admin(db: &Connection, email: &str) -> Result<Option<bool>, ApiError> {
    let result = db
        .execute("SELECT admin FROM users WHERE email = ?1 AND active = 1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(result.rows().next().map(|row| row.get("admin").unwrap_or(false)))
}

pub fn insert_job(db: &Connection, id: &str, owner: &str, created_at: u64) -> Result<(), ApiError> {
    db.execute(
        "INSERT INTO jobs (id, owner, created_at) VALUES (?1, ?2, ?3)",
        &[Value::Text(id.into()), Value::Text(owner.into()), Value::Integer(created_at as i64)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Ids of `owner`'s jobs, newest first.
pub fn job_ids(db: &Connection, owner: &str, limit: u32) -> Result<Vec<String>, ApiError> {
    let result = db
        .execute(
            "SELECT id FROM jobs WHERE owner = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2",
            &[Value::Text(owner.into()), Value::Integer(limit.into())],
        )
        .map_err(db_error)?;
    Ok(result.rows().filter_map(|row| row.get::<&str>("id").map(str::to_string)).collect())
}
