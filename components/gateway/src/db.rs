//! The shared SQLite database: lazy schema, user status lookups and the job ownership index.

use edge_spin::ApiError;
use spin_sdk::sqlite::{Connection, Value};

pub use edge_spin::{db_error, default_callback, open_database as open};

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
