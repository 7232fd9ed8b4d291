//! The shared SQLite database: lazy schema and user status lookups. (The job index lives in
//! Redis beside the rest of the storage accounting, where the worker's sweeper can reach it.)

use edge_spin::ApiError;
use spin_sdk::sqlite::{Connection, Value};

pub use edge_spin::{db_error, default_callback, open_database as open};

/// `Some(admin)` for an existing, active user.
pub fn active_user_is_admin(db: &Connection, email: &str, issued_at: u64) -> Result<Option<bool>, ApiError> {
    let issued_at = Value::Integer(i64::try_from(issued_at).unwrap_or(i64::MAX));
    let result = db
        .execute("SELECT admin FROM users WHERE email = ?1 AND active = 1 AND created_at <= ?2", &[Value::Text(email.into()), issued_at])
        .map_err(db_error)?;
    Ok(result.rows().next().map(|row| row.get("admin").unwrap_or(false)))
}
