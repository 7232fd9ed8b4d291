//! Compiled-component cache: a start or a plugin swap does not recompile what has not changed.
//!
//! Owns the directory of precompiled components (`Engine::precompile_component` output) and the
//! rule for trusting them. Compiling the converter, the edge components and seven codec plugins
//! with Cranelift costs seconds of CPU at every start; loading the native code back is a file
//! map. An entry's name is a SHA-256 of the wasm bytes, the engine's compatibility hash (its
//! settings and target) and this binary's version, so a changed plugin, a changed engine
//! setting or a new build never loads stale code.
//!
//! Safety: deserializing is `unsafe` in Wasmtime because the file is executed as native code.
//! Only files this process's user wrote are loaded: the directory is made owner-only (0700),
//! entries are written owner-only (0600) under a temporary name and renamed into place (never
//! half-written), and before loading, the entry must be a regular file owned by this user with
//! no group or other permission bits. Anything else is ignored and recompiled. Wasmtime itself
//! also refuses an artifact of another version or configuration, which then is recompiled too.
//! The build's own artifacts beside each wasm are tried before the cache (`precompiled`), so a
//! first start after `make build` leaves the cache empty.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Environment variable naming the cache directory; `off` disables the cache.
pub const CACHE_ENV: &str = "MP3EDGE_MODULE_CACHE";

/// The directory `for_process` uses when the environment names none (`up` sets its data dir's
/// `module-cache`); set once, before the first engine is made.
static DEFAULT_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the process's default cache directory (first call wins).
pub fn set_default_dir(dir: PathBuf) {
    let _ = DEFAULT_DIR.set(dir);
}

/// Where compiled components are kept, when caching is on.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// How a component was obtained, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The build's artifact beside the wasm (`precompiled`).
    Precompiled,
    Cached,
    Compiled,
}

impl ModuleCache {
    /// The cache for this process: `$MP3EDGE_MODULE_CACHE`, else `default_dir`, else
    /// `$XDG_CACHE_HOME/mp3edge/modules` or `~/.cache/mp3edge/modules`. `None` when turned off or
    /// when no directory can be made owner-only (the engine then compiles every time).
    pub fn for_process() -> Option<ModuleCache> {
        let default_dir = DEFAULT_DIR.get();
        let dir = match std::env::var_os(CACHE_ENV) {
            Some(v) if v == "off" || v.is_empty() => return None,
            Some(v) => PathBuf::from(v),
            None => match default_dir {
                Some(d) => d.to_path_buf(),
                None => {
                    let base = std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
                    base.join("mp3edge").join("modules")
                }
            },
        };
        match ModuleCache::open(&dir) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %format!("{e:#}"), "compiled-module cache off");
                None
            }
        }
    }

    /// Creates the directory if needed and makes it owner-only.
    pub fn open(dir: &Path) -> Result<ModuleCache> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let meta = std::fs::metadata(dir)?;
        // SAFETY: geteuid has no preconditions.
        if meta.uid() != unsafe { libc::geteuid() } {
            anyhow::bail!("{} belongs to another user", dir.display());
        }
        crate::private_dir::restrict_to_owner(dir)?;
        Ok(ModuleCache { dir: dir.to_path_buf() })
    }

    /// The component of `wasm` (read from `source`): from the cache when an entry this user wrote
    /// matches, else compiled and stored.
    pub fn load_or_compile(&self, engine: &Engine, source: &Path, wasm: &[u8]) -> Result<(Component, Origin)> {
        let entry = self.dir.join(format!("{}.cwasm", entry_key(engine, wasm)));
        if is_trusted_entry(&entry) {
            // SAFETY: the entry was written by this user into an owner-only directory by
            // `store` below from `Engine::precompile_component` of these very bytes (its name
            // is their hash); Wasmtime checks its version and engine settings on load.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, Origin::Cached)),
                Err(e) => tracing::warn!(entry = %entry.display(), error = %e, "cached component unusable; recompiling"),
            }
        }
        let compiled = engine
            .precompile_component(wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling component {}", source.display()))?;
        if let Err(e) = store(&entry, &compiled) {
            tracing::warn!(entry = %entry.display(), error = %format!("{e:#}"), "cannot cache compiled component");
        }
        // SAFETY: `compiled` was produced just now by this engine from `wasm`.
        let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)?;
        Ok((component, Origin::Compiled))
    }
}

/// SHA-256 of the wasm bytes, the engine's compatibility hash and this binary's version.
pub(crate) fn entry_key(engine: &Engine, wasm: &[u8]) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut sha = Sha(Sha256::new());
    sha.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.0.update(wasm);
    engine.precompile_compatibility_hash().hash(&mut sha);
    hex::encode(sha.0.finalize())
}

/// A regular file owned by this user that nobody else may read or write.
fn is_trusted_entry(entry: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(entry) else { return false };
    // SAFETY: geteuid has no preconditions.
    meta.file_type().is_file() && meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o077 == 0
}

/// Writes an entry owner-only under a temporary name and renames it into place.
fn store(entry: &Path, compiled: &[u8]) -> Result<()> {
    let mut salt = [0u8; 8];
    let _ = getrandom::fill(&mut salt);
    let temporary = entry.with_extension(format!("tmp-{}-{}", std::process::id(), hex::encode(salt)));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
    let written = file.write_all(compiled).and_then(|_| file.sync_all());
    if let Err(e) = written.and_then(|_| std::fs::rename(&temporary, entry)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_back_what_it_stored_and_ignores_entries_others_may_write() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::open(&dir.path().join("modules")).unwrap();
        let engine = Engine::default();
        let wasm = wat_component();
        let (_, first) = cache.load_or_compile(&engine, Path::new("t.wasm"), &wasm).unwrap();
        let (_, second) = cache.load_or_compile(&engine, Path::new("t.wasm"), &wasm).unwrap();
        assert_eq!((first, second), (Origin::Compiled, Origin::Cached));

        let entry = std::fs::read_dir(&cache.dir).unwrap().next().unwrap().unwrap().path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, third) = cache.load_or_compile(&engine, Path::new("t.wasm"), &wasm).unwrap();
        assert_eq!(third, Origin::Compiled, "a world-writable entry is not trusted");
    }

    /// The smallest component: the component-model preamble with no sections.
    fn wat_component() -> Vec<u8> {
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }
}
