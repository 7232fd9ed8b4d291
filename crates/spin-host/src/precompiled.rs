//! Precompiled build artifacts: a first start loads native code the build wrote instead of
//! compiling every component with Cranelift (seconds of CPU and a hundred MiB of peak memory).
//!
//! Owns the artifacts' names, how `mp3edge precompile` (the end of `make build`) writes them and
//! the rule for trusting one at load. An artifact lies beside its component, in the directory an
//! image or a checkout ships it in: `NAME.KEY.DIGEST.cwasm` beside `NAME.wasm`, where KEY is the
//! module cache's entry key (SHA-256 of this crate's version, the wasm bytes and the engine's
//! compatibility hash: its compiler settings, the CPU features it targets and its tunables) and
//! DIGEST the SHA-256 of the artifact's own bytes, each cut to 32 hex digits (128 bits).
//!
//! Safety: deserializing is `unsafe` in Wasmtime because the file is executed as native code.
//! An artifact is loaded only when
//! - its KEY is the one computed from the wasm bytes just read and the running engine, so a
//!   changed component, another engine setting, another CPU or another build finds none;
//! - it is a regular file (not a symlink) owned by this user or by root that neither group nor
//!   others may write, in a directory of which the same holds (nobody else can swap it);
//! - its bytes hash to DIGEST (a damaged or edited artifact is refused).
//!
//! Wasmtime checks its own version and the engine's settings once more on load. Anything else
//! is logged and the caller compiles (through the module cache). Unlike the cache's entries,
//! artifacts are readable by everyone (0644, as the wasm beside them), so that an image's
//! unprivileged user loads what root built; `MP3EDGE_PRECOMPILED=off` ignores them.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Environment variable that, set to `off`, makes the host ignore precompiled artifacts.
pub const PRECOMPILED_ENV: &str = "MP3EDGE_PRECOMPILED";

/// Hex digits of the key and of the digest in an artifact's name.
const NAME_HEX: usize = 32;

/// Whether precompiled artifacts are looked for (`MP3EDGE_PRECOMPILED` is not `off`).
pub fn enabled() -> bool {
    std::env::var_os(PRECOMPILED_ENV).is_none_or(|v| v != "off")
}

/// The KEY part of the artifact names of `wasm` for `engine`.
pub fn artifact_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut key = crate::module_cache::entry_key(engine, wasm);
    key.truncate(NAME_HEX);
    key
}

/// An artifact found beside a component.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Artifact {
    path: PathBuf,
    key: String,
    digest: String,
}

/// The artifacts beside `source` (`NAME.KEY.DIGEST.cwasm` for `NAME.wasm`), whatever their key.
fn artifacts_beside(source: &Path) -> Vec<Artifact> {
    let (Some(dir), Some(stem)) = (source.parent(), source.file_stem().and_then(|s| s.to_str())) else { return Vec::new() };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<Artifact> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let middle = name.strip_prefix(stem)?.strip_prefix('.')?.strip_suffix(".cwasm")?;
            let (key, digest) = middle.split_once('.')?;
            let hex = |s: &str| s.len() == NAME_HEX && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            (hex(key) && hex(digest)).then(|| Artifact { path: entry.path(), key: key.to_string(), digest: digest.to_string() })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Why an artifact with the right key is not loaded.
fn refusal(artifact: &Artifact) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let meta = match std::fs::symlink_metadata(&artifact.path) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    if !meta.file_type().is_file() {
        return Some("not a regular file".into());
    }
    if !is_trusted_owner_and_mode(meta.uid(), meta.mode(), euid) {
        return Some(format!("owner {} and mode {:o}: only this user's or root's, written by nobody else", meta.uid(), meta.mode() & 0o7777));
    }
    let dir = artifact.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if is_trusted_owner_and_mode(meta.uid(), meta.mode(), euid) => {}
        Ok(meta) => return Some(format!("its directory's owner {} and mode {:o} let someone else replace it", meta.uid(), meta.mode() & 0o7777)),
        Err(e) => return Some(format!("its directory: {e}")),
    }
    match file_digest(&artifact.path) {
        Ok(digest) if digest == artifact.digest => None,
        Ok(digest) => Some(format!("its bytes hash to {digest}, not to the {} of its name (damaged or edited)", artifact.digest)),
        Err(e) => Some(format!("unreadable: {e:#}")),
    }
}

/// Owned by this user or root, and writable by neither group nor others.
fn is_trusted_owner_and_mode(uid: u32, mode: u32, euid: u32) -> bool {
    (uid == euid || uid == 0) && mode & 0o022 == 0
}

/// The first `NAME_HEX` hex digits of the SHA-256 of a file's bytes.
fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        sha.update(&buffer[..read]);
    }
    let mut digest = hex::encode(sha.finalize());
    digest.truncate(NAME_HEX);
    Ok(digest)
}

/// The component of `wasm` (read from `source`) from the build's artifact beside it, when one
/// for this engine is there and trusted (see the module doc); `None` otherwise, with the reason
/// logged when artifacts are there but not used.
pub fn load(engine: &Engine, source: &Path, wasm: &[u8]) -> Option<Component> {
    if !enabled() {
        return None;
    }
    let artifacts = artifacts_beside(source);
    if artifacts.is_empty() {
        return None;
    }
    let key = artifact_key(engine, wasm);
    let Some(artifact) = artifacts.iter().find(|a| a.key == key) else {
        tracing::info!(
            path = %source.display(),
            "the precompiled artifacts beside it are for another engine or another build of it; compiling (run `make build` again)"
        );
        return None;
    };
    if let Some(reason) = refusal(artifact) {
        tracing::warn!(artifact = %artifact.path.display(), %reason, "precompiled artifact not trusted; compiling");
        return None;
    }
    // SAFETY: the artifact's name holds the hash of these very wasm bytes and of this engine's
    // compatibility hash, its bytes hash to the digest its name holds, and only this user or
    // root can have written it or its directory (checked just above); Wasmtime checks its
    // version and engine settings once more.
    match unsafe { Component::deserialize_file(engine, &artifact.path) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(artifact = %artifact.path.display(), error = %e, "precompiled artifact unusable; compiling");
            None
        }
    }
}

/// What `precompile` did for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A trusted artifact for this engine was already there.
    UpToDate(PathBuf),
    /// Compiled and written now.
    Compiled(PathBuf),
}

/// Makes sure the artifact of `wasm` (read from `source`) for `engine` is beside it: kept when a
/// trusted one is there already, else compiled and written (readable by all, under a temporary
/// name renamed into place, so never half-written).
pub fn precompile(engine: &Engine, source: &Path, wasm: &[u8]) -> Result<Written> {
    let key = artifact_key(engine, wasm);
    if let Some(artifact) = artifacts_beside(source).into_iter().find(|a| a.key == key && refusal(a).is_none()) {
        return Ok(Written::UpToDate(artifact.path));
    }
    let compiled = engine
        .precompile_component(wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling component {}", source.display()))?;
    let mut digest = hex::encode(Sha256::digest(&compiled));
    digest.truncate(NAME_HEX);
    let stem = source.file_stem().and_then(|s| s.to_str()).with_context(|| format!("{}: not a UTF-8 file name", source.display()))?;
    let path = source.with_file_name(format!("{stem}.{key}.{digest}.cwasm"));
    let mut salt = [0u8; 8];
    let _ = getrandom::fill(&mut salt);
    let temporary = source.with_file_name(format!(".{stem}.cwasm-tmp-{}-{}", std::process::id(), hex::encode(salt)));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temporary)?;
        // Readable by all whatever the umask (an image's unprivileged user loads root's).
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(&compiled)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(anyhow::Error::from(e).context(format!("writing {}", path.display())));
    }
    Ok(Written::Compiled(path))
}

/// Removes the artifacts beside `source` whose key is not in `keep` (left by earlier builds);
/// returns them.
pub fn remove_stale(source: &Path, keep: &[String]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for artifact in artifacts_beside(source) {
        if !keep.contains(&artifact.key) {
            std::fs::remove_file(&artifact.path).with_context(|| format!("removing {}", artifact.path.display()))?;
            removed.push(artifact.path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        crate::engine::new_engine(&crate::engine::Limits { max_instances: 4, ..Default::default() }).unwrap()
    }

    /// The smallest component: the component-model preamble with no sections.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn writes_once_loads_back_and_refuses_edited_or_foreign_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("empty.wasm");
        std::fs::write(&source, EMPTY_COMPONENT).unwrap();
        let engine = engine();
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_none(), "nothing written yet");
        let Written::Compiled(path) = precompile(&engine, &source, EMPTY_COMPONENT).unwrap() else { panic!("compiled the first time") };
        assert_eq!(precompile(&engine, &source, EMPTY_COMPONENT).unwrap(), Written::UpToDate(path.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_some());

        // Other bytes under the same name: another key, so not this artifact.
        let other = [EMPTY_COMPONENT, &[0x00, 0x00]].concat();
        assert_ne!(artifact_key(&engine, &other), artifact_key(&engine, EMPTY_COMPONENT));
        assert!(load(&engine, &source, &other).is_none());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(refusal(&artifacts_beside(&source)[0]).unwrap().contains("mode 664"));
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_none(), "group-writable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(refusal(&artifacts_beside(&source)[0]).unwrap().contains("damaged or edited"));
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_none(), "one bit changed");
        let Written::Compiled(again) = precompile(&engine, &source, EMPTY_COMPONENT).unwrap() else { panic!("an edited artifact is replaced") };
        assert_eq!(again, path, "same bytes, same name");
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_some());

        let stale = source.with_file_name(format!("empty.{}.{}.cwasm", "0".repeat(32), "1".repeat(32)));
        std::fs::write(&stale, b"old").unwrap();
        let key = artifact_key(&engine, EMPTY_COMPONENT);
        assert_eq!(remove_stale(&source, &[key]).unwrap(), vec![stale]);
        assert_eq!(artifacts_beside(&source).len(), 1);
    }

    #[test]
    fn an_artifact_of_another_engine_is_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("empty.wasm");
        std::fs::write(&source, EMPTY_COMPONENT).unwrap();
        // Another engine setting: no epoch interruption (the host's checks need it).
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let other = Engine::new(&config).unwrap();
        let host = engine();
        let key = artifact_key(&host, EMPTY_COMPONENT);
        assert_ne!(artifact_key(&other, EMPTY_COMPONENT), key, "the compatibility hash is in the key");
        let Written::Compiled(path) = precompile(&other, &source, EMPTY_COMPONENT).unwrap() else { panic!("compiled") };
        assert!(load(&host, &source, EMPTY_COMPONENT).is_none(), "another engine's key");

        // Renamed to carry the host engine's key (its digest still right): Wasmtime's own check
        // of the engine settings refuses it.
        let digest = artifacts_beside(&source)[0].digest.clone();
        let renamed = source.with_file_name(format!("empty.{key}.{digest}.cwasm"));
        std::fs::rename(&path, &renamed).unwrap();
        assert_eq!(refusal(&artifacts_beside(&source)[0]), None, "name, owner, mode and digest pass");
        assert!(load(&host, &source, EMPTY_COMPONENT).is_none(), "Wasmtime refuses another engine's code");
        assert!(load(&other, &source, EMPTY_COMPONENT).is_none(), "and the other engine another key");
    }

    #[test]
    fn a_symlink_is_not_an_artifact_to_trust() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("empty.wasm");
        std::fs::write(&source, EMPTY_COMPONENT).unwrap();
        let engine = engine();
        let Written::Compiled(path) = precompile(&engine, &source, EMPTY_COMPONENT).unwrap() else { panic!("compiled") };
        let elsewhere = dir.path().join("elsewhere.bin");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(refusal(&artifacts_beside(&source)[0]).as_deref(), Some("not a regular file"));
        assert!(load(&engine, &source, EMPTY_COMPONENT).is_none());
    }

    #[test]
    fn only_this_user_or_root_may_own_an_artifact_and_nobody_else_write_it() {
        assert!(is_trusted_owner_and_mode(1000, 0o100644, 1000));
        assert!(is_trusted_owner_and_mode(0, 0o100644, 1000), "root's, as in an image");
        assert!(is_trusted_owner_and_mode(1000, 0o100600, 1000));
        assert!(!is_trusted_owner_and_mode(1001, 0o100644, 1000), "another user's");
        assert!(!is_trusted_owner_and_mode(1000, 0o100664, 1000), "group-writable");
        assert!(!is_trusted_owner_and_mode(0, 0o100646, 1000), "world-writable");
        assert!(!is_trusted_owner_and_mode(65534, 0o100644, 0), "root does not trust other users' files either");
    }
}
