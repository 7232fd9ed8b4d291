//! `mp3edge precompile`: the last step of `make build`, so that a first start serves at once.
//!
//! Compiles every component the platform loads — the manifest's HTTP components, the converter
//! and each codec plugin `codecs.toml` maps — for this machine's engine (the one
//! `spin_host::engine::new_engine` makes for `up`, `worker` and `convert` alike) and writes the
//! native code beside each `.wasm` (`spin_host::precompiled`, which also says when a start
//! trusts it). A component whose artifact is already there is not compiled again; artifacts of
//! earlier builds of it are removed, so a directory (or an image) holds only current ones.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::app_dir::{self, AppDir};
use spin_host::engine::{Limits, new_engine};
use spin_host::manifest::Manifest;
use spin_host::precompiled::{self, Written};

/// `mp3edge precompile`.
#[derive(Parser, Debug)]
pub struct PrecompileArgs {
    /// The application directory (default: as `mp3edge up` finds it).
    #[arg(long)]
    app_dir: Option<PathBuf>,
    /// The Spin manifest whose components to compile (default: spin.toml in the application
    /// directory).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The converter component (default: the one `mp3edge worker` loads).
    #[arg(long)]
    converter: Option<PathBuf>,
    /// The codec plugin directory with codecs.toml (default: plugins/ in the application
    /// directory).
    #[arg(long)]
    plugins: Option<PathBuf>,
}

/// Every component the platform loads, each once, in a stable order.
fn components(args: &PrecompileArgs) -> Result<Vec<PathBuf>> {
    let app = match (&args.manifest, &args.converter, &args.plugins) {
        (Some(_), Some(_), Some(_)) => None,
        _ => Some(AppDir::locate(args.app_dir.as_deref())?),
    };
    let or_default = |given: &Option<PathBuf>, default: &str| match (&app, given) {
        (_, Some(path)) => path.clone(),
        (Some(app), None) => app.or_default(None, default),
        (None, None) => PathBuf::from(default),
    };
    let manifest = Manifest::load(&or_default(&args.manifest, app_dir::MANIFEST))?;
    let mut files = Vec::new();
    for name in manifest.components.keys() {
        files.push(manifest.component_source(name)?);
    }
    files.push(or_default(&args.converter, app_dir::CONVERTER));
    let plugins = or_default(&args.plugins, app_dir::PLUGINS);
    files.extend(codec_host::mapped_plugin_files(&plugins)?);
    let mut unique = Vec::new();
    for file in files {
        if !file.is_file() {
            bail!("the component {} is missing\nhint: build the components first (`make components`)", file.display());
        }
        let canonical = file.canonicalize().with_context(|| format!("resolving {}", file.display()))?;
        if !unique.contains(&canonical) {
            unique.push(canonical);
        }
    }
    Ok(unique)
}

pub fn run(args: PrecompileArgs) -> Result<()> {
    let started = Instant::now();
    let files = components(&args)?;
    let engine = new_engine(&Limits::default())?;
    let mut compiled = 0;
    for file in &files {
        let one = Instant::now();
        let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let written = precompiled::precompile(&engine, file, &wasm)?;
        let (artifact, verb) = match &written {
            Written::Compiled(path) => {
                compiled += 1;
                (path, format!("compiled in {:.1} s", one.elapsed().as_secs_f64()))
            }
            Written::UpToDate(path) => (path, "up to date".to_string()),
        };
        for stale in precompiled::remove_stale(file, &[precompiled::artifact_key(&engine, &wasm)])? {
            println!("mp3edge precompile: removed {} (an earlier build's)", stale.display());
        }
        println!("mp3edge precompile: {} ({verb})", artifact.display());
    }
    println!(
        "mp3edge precompile: {} components for this machine's engine, {compiled} compiled, {} up to date ({:.1} s)",
        files.len(),
        files.len() - compiled,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
