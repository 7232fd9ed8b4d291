//! Where the application lives, so `mp3edge` runs from any directory: the directory with
//! `spin.toml` (its components), `plugins/codecs.toml` (the codec plugins) and the converter
//! component. It is `--app-dir` when given; otherwise the current directory when it holds a
//! `spin.toml`; otherwise the first directory at or above the binary's that does (an installed
//! `bin/mp3edge` beside the application, or `target/release/mp3edge` in a checkout). Paths the
//! user gives on the command line stay relative to the current directory; the defaults are
//! relative to the application directory.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The manifest's file name.
pub const MANIFEST: &str = "spin.toml";
/// The codec plugin directory, under the application directory.
pub const PLUGINS: &str = "plugins";
/// The converter component, under the application directory.
pub const CONVERTER: &str = "target/wasm32-wasip2/release/converter.wasm";
/// The state directory, under the application directory.
pub const DATA_DIR: &str = ".mp3edge";

/// The application directory, found as the module doc says.
#[derive(Debug, Clone)]
pub struct AppDir(PathBuf);

impl AppDir {
    /// Finds the application directory; `explicit` is `--app-dir`.
    pub fn locate(explicit: Option<&Path>) -> Result<AppDir> {
        if let Some(dir) = explicit {
            if !dir.join(MANIFEST).is_file() {
                bail!(
                    "--app-dir {}: no {MANIFEST} there\nhint: give the directory that holds the mp3edge application \
                     (spin.toml, plugins/, target/wasm32-wasip2/release/)",
                    dir.display()
                );
            }
            return Ok(AppDir(dir.to_path_buf()));
        }
        let cwd = std::env::current_dir()?;
        let beside_binary = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
        let candidates = std::iter::once(cwd.clone()).chain(beside_binary.iter().flat_map(|dir| dir.ancestors().take(4).map(Path::to_path_buf)));
        for dir in candidates {
            if dir.join(MANIFEST).is_file() {
                return Ok(AppDir(dir));
            }
        }
        bail!(
            "no {MANIFEST} in the current directory ({}) or beside the mp3edge binary{}\n\
             hint: run mp3edge from the application's directory, or pass --app-dir DIR",
            cwd.display(),
            beside_binary.map(|dir| format!(" ({})", dir.display())).unwrap_or_default()
        )
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `given` when the user gave it (relative to the current directory), else `default` under
    /// the application directory.
    pub fn or_default(&self, given: Option<&Path>, default: &str) -> PathBuf {
        match given {
            Some(path) => path.to_path_buf(),
            None => self.0.join(default),
        }
    }
}

/// Checks that the converter component and the plugin mapping exist, with a hint when not.
pub fn check_worker_files(converter: &Path, plugins: &Path) -> Result<()> {
    if !converter.is_file() {
        bail!(
            "the converter component {} is missing\nhint: build it with `make build`, or pass --converter FILE",
            converter.display()
        );
    }
    if !plugins.join("codecs.toml").is_file() {
        bail!(
            "no codec plugin mapping at {}\nhint: pass --plugins DIR (the directory with codecs.toml)",
            plugins.join("codecs.toml").display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_directory_must_hold_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = AppDir::locate(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("no spin.toml") && err.contains("hint"), "{err}");
        std::fs::write(dir.path().join(MANIFEST), "").unwrap();
        let app = AppDir::locate(Some(dir.path())).unwrap();
        assert_eq!(app.or_default(None, PLUGINS), dir.path().join("plugins"));
        assert_eq!(app.or_default(Some(Path::new("mine")), PLUGINS), PathBuf::from("mine"));
    }
}
