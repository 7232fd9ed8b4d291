//! SQLite databases: the `fermyon:spin/sqlite` host interface and its backend.
//!
//! Each database label of the runtime config is one local SQLite file (WAL mode, busy timeout)
//! behind [`SqlDatabase`]. A component may open only the labels its manifest lists. Statements
//! run off the async executor; results are capped so a runaway query cannot exhaust the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use crate::handles::HandleTable;

use host_world::fermyon::spin::sqlite::{self, Error, QueryResult, RowResult, Value};
use crate::state::ComponentState;

/// Most rows one statement may return to a guest.
const MAX_ROWS: usize = 100_000;

/// One database's storage.
pub trait SqlDatabase: Send + Sync {
    fn execute(&self, statement: &str, parameters: &[Value]) -> Result<QueryResult, Error>;
}

/// A SQLite file on local disk.
pub struct LocalSqlite {
    conn: Mutex<rusqlite::Connection>,
}

impl LocalSqlite {
    pub fn open(path: &Path) -> Result<LocalSqlite> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = rusqlite::Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Ok(LocalSqlite { conn: Mutex::new(conn) })
    }
}

fn to_sql(value: &Value) -> ToSqlOutput<'_> {
    match value {
        Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
        Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
        Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn sql_error(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => Error::DatabaseFull,
        _ => Error::Io(e.to_string()),
    }
}

impl SqlDatabase for LocalSqlite {
    fn execute(&self, statement: &str, parameters: &[Value]) -> Result<QueryResult, Error> {
        let conn = self.conn.lock().map_err(|_| Error::Io("database connection poisoned".into()))?;
        let mut stmt = conn.prepare_cached(statement).map_err(sql_error)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let params: Vec<ToSqlOutput<'_>> = parameters.iter().map(to_sql).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).map_err(sql_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            if out.len() == MAX_ROWS {
                return Err(Error::Io(format!("query returned more than {MAX_ROWS} rows")));
            }
            let values = (0..columns.len())
                .map(|i| row.get_ref(i).map(from_sql))
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            out.push(RowResult { values });
        }
        Ok(QueryResult { columns, rows: out })
    }
}

/// Every configured database, by label.
#[derive(Clone, Default)]
pub struct SqliteDatabases {
    databases: BTreeMap<String, Arc<dyn SqlDatabase>>,
}

impl SqliteDatabases {
    pub fn open(config: &BTreeMap<String, PathBuf>) -> Result<SqliteDatabases> {
        let mut databases: BTreeMap<String, Arc<dyn SqlDatabase>> = BTreeMap::new();
        for (label, path) in config {
            databases.insert(label.clone(), Arc::new(LocalSqlite::open(path)?));
        }
        Ok(SqliteDatabases { databases })
    }
}

/// The guest's handle to an opened database.
pub struct ConnectionHandle {
    db: Arc<dyn SqlDatabase>,
}

impl sqlite::Host for ComponentState {}

impl sqlite::HostConnection for ComponentState {
    async fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<sqlite::Connection>, Error>> {
        if !self.grants.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(db) = self.services.sqlite.databases.get(&database).cloned() else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        Ok(Ok(self.table.push_handle(ConnectionHandle { db })?))
    }

    async fn execute(
        &mut self,
        this: Resource<sqlite::Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let db = self.table.handle::<_, ConnectionHandle>(&this)?.db.clone();
        Ok(tokio::task::spawn_blocking(move || db.execute(&statement, &parameters)).await?)
    }

    async fn drop(&mut self, this: Resource<sqlite::Connection>) -> wasmtime::Result<()> {
        self.table.delete_handle::<_, ConnectionHandle>(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executes_with_parameters_and_maps_types() {
        let dir = std::env::temp_dir().join(format!("sqlite-host-{}", std::process::id()));
        let db = LocalSqlite::open(&dir.join("t.db")).unwrap();
        db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)", &[]).unwrap();
        db.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            &[Value::Integer(7), Value::Real(1.5), Value::Text("x".into()), Value::Blob(vec![1, 2]), Value::Null],
        )
        .unwrap();
        let r = db.execute("SELECT * FROM t WHERE i = ?", &[Value::Integer(7)]).unwrap();
        assert_eq!(r.columns, vec!["i", "r", "s", "b", "n"]);
        assert_eq!(r.rows.len(), 1);
        assert!(matches!(r.rows[0].values[2], Value::Text(ref s) if s == "x"));
        assert!(matches!(db.execute("SELEC nonsense", &[]), Err(Error::Io(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
