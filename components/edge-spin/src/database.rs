//! The edge's shared SQLite database (`default`): opening it with the schema in place, and the
//! lookups both components make.

use spin_sdk::sqlite::{Connection, Error, Value};

use crate::ApiError;

pub fn db_error(e: Error) -> ApiError {
    ApiError::internal("database error", e)
}

/// Opens the `default` database and makes sure the schema exists: when its `user_version` is
/// not this schema's, every statement runs (each a no-op if applied already) and the version is
/// recorded; otherwise one read was all it took.
pub fn open_database() -> Result<Connection, ApiError> {
    let db = Connection::open("default").map_err(db_error)?;
    let version = db.execute("PRAGMA user_version", &[]).map_err(db_error)?;
    let applied = version.rows().next().and_then(|row| row.get::<i64>("user_version"));
    if applied != Some(edge_http::schema::VERSION) {
        for statement in edge_http::schema::STATEMENTS {
            db.execute(statement, &[]).map_err(db_error)?;
        }
        db.execute(&format!("PRAGMA user_version = {}", edge_http::schema::VERSION), &[]).map_err(db_error)?;
    }
    Ok(db)
}

/// The webhook a user asked for on every upload, if any.
pub fn default_callback(db: &Connection, email: &str) -> Result<Option<String>, ApiError> {
    let result = db
        .execute("SELECT default_callback FROM user_settings WHERE email = ?1", &[Value::Text(email.into())])
        .map_err(db_error)?;
    Ok(result.rows().next().and_then(|row| row.get::<&str>("default_callback").map(String::from)))
}
