//! The shared SQLite database: lazy schema and user status lookups. (The job index lives in
//! Redis beside the rest of the storage accounting, where the worker's sweeper can reach it.)

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
