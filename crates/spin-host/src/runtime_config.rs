//! Spin runtime configuration (`--runtime-config-file`): where each key-value store and SQLite
//! database label actually lives.
//!
//! Follows Spin's file format and defaults: with no file, the `default` key-value store is a
//! SQLite file `sqlite_key_value.db` and the `default` database is `sqlite_db.db`, both in the
//! state directory; relative paths in a file are relative to that file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreDecl>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, DatabaseDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum StoreDecl {
    Spin { path: Option<PathBuf> },
    Redis { url: String },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum DatabaseDecl {
    Spin { path: Option<PathBuf> },
    Libsql {
        #[allow(dead_code)]
        url: String,
        #[allow(dead_code)]
        token: String,
    },
}

/// Where a key-value store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueLocation {
    /// Spin's SQLite layout: table `spin_key_value(store, key, value)` in this file.
    Sqlite(PathBuf),
    /// A Redis server; keys are stored raw, as Spin does.
    Redis(String),
}

/// The resolved runtime configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, KeyValueLocation>,
    pub sqlite_databases: BTreeMap<String, PathBuf>,
}

impl RuntimeConfig {
    /// Reads `file` (if any) and fills in Spin's defaults under `state_dir`.
    pub fn load(file: Option<&Path>, state_dir: &Path) -> Result<RuntimeConfig> {
        let (raw, base) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading runtime config {}", path.display()))?;
                let raw: RawRuntimeConfig =
                    toml::from_str(&text).with_context(|| format!("in runtime config {}", path.display()))?;
                (raw, path.parent().map(Path::to_path_buf).unwrap_or_default())
            }
            None => (RawRuntimeConfig::default(), state_dir.to_path_buf()),
        };
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let mut key_value_stores = BTreeMap::new();
        for (label, decl) in raw.key_value_store {
            let location = match decl {
                StoreDecl::Spin { path } => KeyValueLocation::Sqlite(match path {
                    Some(p) => resolve(p),
                    None => state_dir.join("sqlite_key_value.db"),
                }),
                StoreDecl::Redis { url } => {
                    if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                        bail!("key_value_store.{label}: url must start with redis:// or rediss://");
                    }
                    KeyValueLocation::Redis(url)
                }
            };
            key_value_stores.insert(label, location);
        }
        key_value_stores
            .entry("default".to_string())
            .or_insert_with(|| KeyValueLocation::Sqlite(state_dir.join("sqlite_key_value.db")));

        let mut sqlite_databases = BTreeMap::new();
        for (label, decl) in raw.sqlite_database {
            let path = match decl {
                DatabaseDecl::Spin { path } => match path {
                    Some(p) => resolve(p),
                    None => state_dir.join(format!("{label}.db")),
                },
                DatabaseDecl::Libsql { .. } => bail!(
                    "sqlite_database.{label}: type \"libsql\" is for real Spin/SpinKube; mp3edge's host supports type \"spin\""
                ),
            };
            sqlite_databases.insert(label, path);
        }
        sqlite_databases.entry("default".to_string()).or_insert_with(|| state_dir.join("sqlite_db.db"));

        Ok(RuntimeConfig { key_value_stores, sqlite_databases })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spin() {
        let rc = RuntimeConfig::load(None, Path::new("/state")).unwrap();
        assert_eq!(rc.key_value_stores["default"], KeyValueLocation::Sqlite("/state/sqlite_key_value.db".into()));
        assert_eq!(rc.sqlite_databases["default"], PathBuf::from("/state/sqlite_db.db"));
    }

    #[test]
    fn reads_redis_and_relative_paths() {
        let dir = std::env::temp_dir().join(format!("rc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rc.toml");
        std::fs::write(
            &file,
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:7000\"\n\
             [sqlite_database.default]\ntype = \"spin\"\npath = \"db/app.db\"\n",
        )
        .unwrap();
        let rc = RuntimeConfig::load(Some(&file), Path::new("/state")).unwrap();
        assert_eq!(rc.key_value_stores["default"], KeyValueLocation::Redis("redis://127.0.0.1:7000".into()));
        assert_eq!(rc.sqlite_databases["default"], dir.join("db/app.db"));
        std::fs::write(&file, "[key_value_store.default]\ntype = \"redis\"\nurl = \"http://x\"\n").unwrap();
        assert!(RuntimeConfig::load(Some(&file), Path::new("/state")).is_err());
        std::fs::write(&file, "[key_value_store.default]\ntype = \"mystery\"\n").unwrap();
        assert!(RuntimeConfig::load(Some(&file), Path::new("/state")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_projects_runtime_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-config");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                RuntimeConfig::load(Some(&path), Path::new("/state"))
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            }
        }
    }
}
