//! The plugin directory: `codecs.toml` plus `.wasm` files, reloaded when they change.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::Deserialize;
use wasmtime::component::{Component, Linker};

use super::sandbox::{self, PluginState};
use host_world::worker::mp3edge::codec::types::CodecInfo;
use spin_host::engine::Runtime;

/// The mapping file in the plugin directory.
pub const MAPPING_FILE: &str = "codecs.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mapping {
    #[serde(default)]
    formats: BTreeMap<String, FormatDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatDecl {
    /// Plugin file, relative to the plugin directory.
    plugin: PathBuf,
}

/// The plugin files `codecs.toml` in `dir` maps formats to (each once, in format order), for
/// `mp3edge precompile`; an absent mapping maps none.
pub fn mapped_plugin_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mapping_path = dir.join(MAPPING_FILE);
    let text = match std::fs::read_to_string(&mapping_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {}", mapping_path.display()))),
    };
    let mapping: Mapping = toml::from_str(&text).with_context(|| format!("in {}", mapping_path.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for decl in mapping.formats.into_values() {
        let path = dir.join(decl.plugin);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Bounds of every plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct PluginLimits {
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one call into the plugin.
    pub call_timeout: Duration,
    /// How long inputs are split for plugins that encode in segments.
    pub segments: SegmentPolicy,
}

/// When and how a long input is encoded as segments at the same time.
#[derive(Debug, Clone, Copy)]
pub struct SegmentPolicy {
    /// Segments encoded at the same time by this process, over all its jobs (its cores by
    /// default); below 2, everything is encoded serially.
    pub threads: usize,
    /// Length of a segment; `None`: chosen from the input's length (30 s to 1 min).
    pub segment_secs: Option<f64>,
}

impl Default for SegmentPolicy {
    fn default() -> Self {
        SegmentPolicy { threads: std::thread::available_parallelism().map_or(1, |n| n.get()), segment_secs: None }
    }
}

/// When a file last changed, to notice edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp(meta.modified().ok(), meta.len()))
}

/// A compiled plugin and what it says about itself.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub component: Component,
    pub info: CodecInfo,
    /// The plugin exports `segments`.
    pub segments: bool,
    /// The bitrates it takes at each rate, for a plugin with `bitrate-rules` (else empty).
    pub bitrates_by_rate: BTreeMap<u32, Vec<u32>>,
}

#[derive(Default)]
struct Loaded {
    mapping_stamp: Option<Stamp>,
    formats: BTreeMap<String, LoadedPlugin>,
    /// Compiled plugins by file, with the stamp they were compiled at.
    compiled: HashMap<PathBuf, (Stamp, LoadedPlugin)>,
}

pub struct CodecRegistry {
    dir: PathBuf,
    pub(super) runtime: Arc<Runtime>,
    pub(super) linker: Linker<PluginState>,
    pub(super) limits: PluginLimits,
    /// Segments being encoded at once, over every job (`SegmentPolicy::threads`).
    pub(super) segment_slots: Arc<tokio::sync::Semaphore>,
    /// The queue that shares segments with other workers, in a worker.
    segment_queue: std::sync::OnceLock<Arc<super::SegmentQueue>>,
    loaded: Mutex<Loaded>,
}

impl CodecRegistry {
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf, limits: PluginLimits) -> Result<Arc<CodecRegistry>> {
        let linker = sandbox::linker(&runtime)?;
        let segment_slots = Arc::new(tokio::sync::Semaphore::new(limits.segments.threads.max(1)));
        Ok(Arc::new(CodecRegistry { dir, runtime, linker, limits, segment_slots, segment_queue: Default::default(), loaded: Mutex::new(Loaded::default()) }))
    }

    /// Re-reads the mapping and recompiles changed plugins. Returns whether anything changed.
    /// A plugin that fails to load is left out (and logged); the others stay available.
    pub async fn refresh(&self) -> Result<bool> {
        let mapping_path = self.dir.join(MAPPING_FILE);
        let mapping_stamp = stamp(&mapping_path);
        let (old_stamp, compiled) = {
            let loaded = self.loaded.lock().expect("registry lock");
            (loaded.mapping_stamp, loaded.compiled.clone())
        };
        let mapping: Mapping = match &mapping_stamp {
            Some(_) => {
                let text = std::fs::read_to_string(&mapping_path)?;
                toml::from_str(&text).with_context(|| format!("in {}", mapping_path.display()))?
            }
            None => Mapping { formats: BTreeMap::new() },
        };
        let mut changed = old_stamp != mapping_stamp;
        let mut formats = BTreeMap::new();
        let mut next_compiled = HashMap::new();
        for (format, decl) in mapping.formats {
            if !job_model::naming::is_valid_format_name(&format) {
                tracing::warn!(%format, "ignoring invalid format name in {MAPPING_FILE}");
                continue;
            }
            let path = self.dir.join(&decl.plugin);
            let Some(file_stamp) = stamp(&path) else {
                tracing::warn!(%format, path = %path.display(), "plugin file missing");
                continue;
            };
            let plugin = match compiled.get(&path).or_else(|| next_compiled.get(&path)) {
                Some((s, plugin)) if *s == file_stamp => plugin.clone(),
                _ => {
                    changed = true;
                    match self.load(&path).await {
                        Ok(plugin) => plugin,
                        Err(e) => {
                            tracing::warn!(%format, path = %path.display(), error = %format!("{e:#}"), "plugin failed to load");
                            continue;
                        }
                    }
                }
            };
            next_compiled.insert(path, (file_stamp, plugin.clone()));
            formats.insert(format, plugin);
        }
        let mut loaded = self.loaded.lock().expect("registry lock");
        changed |= loaded.formats.keys().ne(formats.keys());
        *loaded = Loaded { mapping_stamp, formats, compiled: next_compiled };
        if changed {
            tracing::info!(formats = ?loaded.formats.keys().collect::<Vec<_>>(), dir = %self.dir.display(), "codec plugins loaded");
        }
        Ok(changed)
    }

    async fn load(&self, path: &Path) -> Result<LoadedPlugin> {
        let component = self.runtime.compile(path)?;
        let (info, bitrates_by_rate) = sandbox::describe(self, &component).await?;
        let segments = component.get_export_index(None, sandbox::SEGMENTS_EXPORT).is_some();
        Ok(LoadedPlugin { component, info, segments, bitrates_by_rate })
    }

    /// Formats available now, with their plugin's description.
    pub fn formats(&self) -> Vec<(String, CodecInfo)> {
        let loaded = self.loaded.lock().expect("registry lock");
        loaded.formats.iter().map(|(f, p)| (f.clone(), p.info.clone())).collect()
    }

    /// Formats available now, as the edge and `mp3edge convert` check options against them.
    pub fn format_infos(&self) -> Vec<job_model::FormatInfo> {
        let loaded = self.loaded.lock().expect("registry lock");
        loaded.formats.iter().map(|(f, p)| super::format_info(f.clone(), p.info.clone(), &p.bitrates_by_rate)).collect()
    }

    /// Shares segments through `queue` from now on (a worker sets it once, at start).
    pub fn share_segments(&self, queue: Arc<super::SegmentQueue>) {
        let _ = self.segment_queue.set(queue);
    }

    /// Segments this process encodes at once.
    pub fn segment_threads(&self) -> usize {
        self.limits.segments.threads.max(1)
    }

    pub fn segment_queue(&self) -> Option<Arc<super::SegmentQueue>> {
        self.segment_queue.get().cloned()
    }

    pub fn plugin(&self, format: &str) -> Option<LoadedPlugin> {
        self.loaded.lock().expect("registry lock").formats.get(format).cloned()
    }
}
