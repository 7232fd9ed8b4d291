//! The shared SQLite database with its lazy schema, and whether a user is active (for signed
//! links; who is calling is `edge_spin::session`'s). (The job index lives in Redis beside the
//! rest of the storage accounting, where the worker's sweeper can reach it.)

use edge_spin::ApiError;
use spin_sdk::sqlite::{Connection, Value};

pub use edge_spin::{db_error, default_callback, open_database as open};

/// Whether `email` is an existing, active user.
pub fn is_active_user(db: &Connection, email: &str) -> Result<bool, ApiError> {
    let result = db
        .execute("SELECT 1 FROM users WHERE email = ?1 AND active = 1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(result.rows().next().is_some())
}
