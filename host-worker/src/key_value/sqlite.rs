//! Spin's SQLite key-value layout: one table `spin_key_value(store, key, value)` shared by all
//! labels of a file, so a database written by `spin up` is read by `mp3edge up` and back.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::KeyValueBackend;

pub struct SqliteKeyValue {
    conn: Arc<Mutex<Connection>>,
    store: String,
}

impl SqliteKeyValue {
    pub fn open(path: &Path, store: &str) -> Result<SqliteKeyValue> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening key-value file {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        Ok(SqliteKeyValue { conn: Arc::new(Mutex::new(conn)), store: store.to_string() })
    }

    /// Runs `f` on the connection off the async executor.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| anyhow::anyhow!("key-value connection poisoned"))?;
            Ok(f(&conn, &store)?)
        })
        .await?
    }
}

#[async_trait]
impl KeyValueBackend for SqliteKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.with_conn(move |c, store| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![store, key], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.with_conn(move |c, store| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![store, key, value])
            .map(|_| ())
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.with_conn(move |c, store| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![store, key])
                .map(|_| ())
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.with_conn(move |c, store| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])
        })
        .await
    }

    async fn get_keys(&self) -> Result<Vec<String>> {
        self.with_conn(|c, store| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            stmt.query_map(params![store], |row| row.get(0))?.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_share_a_file_but_not_keys() {
        let dir = std::env::temp_dir().join(format!("kv-sqlite-{}", std::process::id()));
        let path = dir.join("kv.db");
        let a = SqliteKeyValue::open(&path, "a").unwrap();
        let b = SqliteKeyValue::open(&path, "b").unwrap();
        a.set("k", b"1").await.unwrap();
        a.set("k", b"2").await.unwrap();
        assert_eq!(a.get("k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(b.get("k").await.unwrap(), None);
        assert!(a.exists("k").await.unwrap());
        assert_eq!(a.get_keys().await.unwrap(), vec!["k".to_string()]);
        a.delete("k").await.unwrap();
        a.delete("k").await.unwrap();
        assert!(!a.exists("k").await.unwrap());
        // Spin's table, readable by anyone who knows the layout.
        let raw = Connection::open(&path).unwrap();
        let n: i64 = raw.query_row("SELECT COUNT(*) FROM spin_key_value", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
