//! Spin's SQLite key-value layout: one table `spin_key_value(store, key, value)` shared by all
//! labels of a file, so a database written by `spin up` is read by `mp3edge up` and back.
//!
//! The file gives space back: it uses `auto_vacuum = INCREMENTAL` (an older file is converted
//! once, at open), and shortly after deletes a background task frees the emptied pages and
//! truncates the write-ahead log, so the file shrinks after deleted, expired and refused uploads.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyValueBackend, ValueRange};

pub struct SqliteKeyValue {
    conn: Arc<Mutex<Connection>>,
    store: String,
    /// Set by deletes; the reclaimer frees pages when it finds it set.
    deleted: Arc<AtomicBool>,
}

/// How soon after deletes the freed pages are given back.
const RECLAIM_EVERY: Duration = Duration::from_millis(500);
/// The write-ahead log is cut back to this size after checkpoints.
const WAL_SIZE_LIMIT: i64 = 16 << 20;
/// SQLite's page cache for the file, in KiB. The values are mostly 1 MiB chunks, each
/// written or read once, so a larger cache only held recently passed chunks: at SQLite's
/// default (2,000 KiB) it filled within the first upload and stayed that size.
const PAGE_CACHE_KIB: i64 = 256;

/// Frees the pages of deleted rows and truncates the write-ahead log.
fn reclaim(conn: &Connection) -> rusqlite::Result<()> {
    // Each step of the pragma frees one page (as an empty row): step it to the end.
    let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut pages = vacuum.raw_query();
    while pages.next()?.is_some() {}
    drop(pages);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Runs [`reclaim`] after deletes until the store is dropped.
fn spawn_reclaimer(conn: Weak<Mutex<Connection>>, deleted: Arc<AtomicBool>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(RECLAIM_EVERY).await;
            let Some(conn) = conn.upgrade() else { return };
            if !deleted.swap(false, Ordering::Relaxed) {
                continue;
            }
            let result = tokio::task::spawn_blocking(move || match conn.lock() {
                Ok(conn) => reclaim(&conn),
                Err(_) => Ok(()),
            })
            .await;
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "could not give back the key-value file's free pages");
            }
        }
    });
}

impl SqliteKeyValue {
    pub fn open(path: &Path, store: &str) -> Result<SqliteKeyValue> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening key-value file {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // auto_vacuum is chosen before the first table exists; an older file is converted once.
        let auto_vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |row| row.get(0))?;
        if auto_vacuum != 2 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            let has_tables: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master)", [], |row| row.get(0))?;
            if has_tables {
                conn.execute_batch("VACUUM")?;
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        let conn = Arc::new(Mutex::new(conn));
        let deleted = Arc::new(AtomicBool::new(false));
        spawn_reclaimer(Arc::downgrade(&conn), deleted.clone());
        Ok(SqliteKeyValue { conn, store: store.to_string(), deleted })
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

    /// Reads only the pages of the range (SQLite's incremental blob I/O): neither SQLite nor
    /// this process holds the whole value.
    async fn get_range(&self, key: &str, offset: u64, len: usize) -> Result<Option<ValueRange>> {
        let key = key.to_string();
        self.with_conn(move |c, store| {
            let rowid: Option<i64> = c
                .prepare_cached("SELECT rowid FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![store, key], |row| row.get(0))
                .optional()?;
            let Some(rowid) = rowid else { return Ok(None) };
            let blob = c.blob_open(rusqlite::MAIN_DB, c"spin_key_value", c"value", rowid, true)?;
            let value_len = blob.len() as u64;
            let span = ValueRange::span(value_len, offset, len);
            let mut bytes = vec![0; (span.end - span.start) as usize];
            blob.read_at_exact(&mut bytes, span.start as usize)?;
            Ok(Some(ValueRange { bytes, value_len }))
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
        let deleted = self
            .with_conn(move |c, store| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?.execute(params![store, key])
            })
            .await?;
        if deleted > 0 {
            self.deleted.store(true, Ordering::Relaxed);
        }
        Ok(())
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

    #[tokio::test]
    async fn ranges_of_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SqliteKeyValue::open(&dir.path().join("kv.db"), "default").unwrap();
        crate::interfaces::key_value::tests::ranges_are_read_as_stored(&kv).await;
    }

    #[tokio::test]
    async fn chunks_passing_through_leave_a_small_page_cache() {
        let dir = std::env::temp_dir().join(format!("kv-sqlite-cache-{}", std::process::id()));
        let kv = SqliteKeyValue::open(&dir.join("kv.db"), "default").unwrap();
        let chunk = vec![3u8; 1 << 20];
        for n in 0..8 {
            kv.set(&format!("chunk:{n}"), &chunk).await.unwrap();
        }
        for n in 0..8 {
            assert_eq!(kv.get(&format!("chunk:{n}")).await.unwrap().as_deref(), Some(&chunk[..]));
        }
        let (mut used, mut highest) = (0, 0);
        let conn = kv.conn.lock().unwrap();
        // SAFETY: the handle is the live connection's, held under its lock for the call.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(conn.handle(), rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED, &mut used, &mut highest, 0)
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        assert!(used > 0, "the cache is in use");
        assert!(used <= (PAGE_CACHE_KIB as i32 + 64) << 10, "page cache holds {used} bytes after 16 MiB passed through");
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_file_shrinks_after_deletes() {
        let dir = std::env::temp_dir().join(format!("kv-sqlite-shrink-{}", std::process::id()));
        let path = dir.join("kv.db");
        let kv = SqliteKeyValue::open(&path, "default").unwrap();
        let mode: i64 = kv.conn.lock().unwrap().pragma_query_value(None, "auto_vacuum", |r| r.get(0)).unwrap();
        assert_eq!(mode, 2, "incremental auto-vacuum");
        let size = || {
            let wal = std::fs::metadata(dir.join("kv.db-wal")).map_or(0, |m| m.len());
            std::fs::metadata(&path).unwrap().len() + wal
        };
        let empty = size();
        let chunk = vec![7u8; 1 << 20];
        for n in 0..20 {
            kv.set(&format!("chunk:{n}"), &chunk).await.unwrap();
        }
        assert!(size() > 20 << 20);
        for n in 0..20 {
            kv.delete(&format!("chunk:{n}")).await.unwrap();
        }
        let started = std::time::Instant::now();
        while size() > empty + (1 << 20) {
            assert!(started.elapsed() < Duration::from_secs(10), "file still {} bytes (empty: {empty})", size());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
