//! `mp3edge convert IN [OUT]`: one local conversion, for a user who just wants the mp3. The
//! same converter component and codec plugins as the platform run on one job whose key-value
//! store is the two files themselves (`local_store`): no server, no Redis, no copy.
//! A terminal gets a progress bar (`indicatif`); anything else gets a plain line per quarter.
//!
//! Exit codes: 0 converted; 1 the input cannot be converted (the job's reason is printed);
//! 2 the command line is wrong (unknown format or option, unreadable input, existing output).

mod local_store;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use job_model::lifecycle::human_bytes;
use job_model::{ConversionOptions, Delivery, Job, JobPolicy, JobStatus, StoredFile, layout, naming};

use crate::app_dir::{self, AppDir};
use codec_host::{CodecRegistry, PluginLimits};
use spin_host::engine::{Limits, Runtime};
use local_store::LocalFilesKeyValue;
use spin_host::interfaces::key_value::{KeyValueBackend, KeyValueStores};
use spin_host::outbound::OutboundPolicy;
use spin_host::state::{Grants, Services};
use job_worker::trigger::converter::Converter;
use spin_host::interfaces::variables::ComponentVariables;

/// `mp3edge convert`.
#[derive(Parser, Debug)]
pub struct ConvertArgs {
    /// The video or audio file to convert, or an `http(s)://` URL to fetch it from.
    pub input: PathBuf,
    /// Where to write the result (default: the input's name with the format's extension, beside
    /// the input; for a URL, in the current directory).
    pub output: Option<PathBuf>,
    /// Hosts a URL input may be fetched from even at loopback or private addresses, in Spin's
    /// `allowed_outbound_hosts` syntax, comma-separated; by default only public addresses.
    #[arg(long, env = "SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS", default_value = "", help_heading = "Files")]
    pub url_import_allowed_hosts: String,
    /// Output format, as `GET /formats` lists them (mp3, wav, …).
    #[arg(long, default_value = "mp3", help_heading = "Audio")]
    pub format: String,
    /// Constant bitrate in kbps (formats that have one).
    #[arg(long, help_heading = "Audio")]
    pub bitrate: Option<String>,
    /// Variable-bitrate quality, 0 (best) to 9 (smallest), instead of a bitrate.
    #[arg(long, help_heading = "Audio")]
    pub vbr: Option<String>,
    /// Replace OUT if it exists.
    #[arg(long, short = 'y', help_heading = "Files")]
    pub force: bool,
    /// The application directory (codec plugins and the converter component); see `up --help`.
    #[arg(long, help_heading = "Files")]
    pub app_dir: Option<PathBuf>,
    /// Directory of codec plugins with their `codecs.toml` (default: APP_DIR/plugins).
    #[arg(long, help_heading = "Files")]
    pub plugins: Option<PathBuf>,
    /// The converter component (default: APP_DIR/target/wasm32-wasip2/release/converter.wasm).
    #[arg(long, help_heading = "Files")]
    pub converter: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Speed")]
    pub segments: crate::worker::SegmentArgs,
}

/// Why `convert` stopped, with its exit code.
pub enum ConvertError {
    /// The command line is wrong: exit 2.
    Usage(anyhow::Error),
    /// The input could not be converted: exit 1.
    Failed(String),
}

impl From<anyhow::Error> for ConvertError {
    fn from(e: anyhow::Error) -> Self {
        ConvertError::Usage(e)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The options as the platform's upload would take them, checked against the plugin.
fn options(args: &ConvertArgs, registry: &CodecRegistry) -> Result<(ConversionOptions, job_model::FormatInfo)> {
    let format = args.format.to_ascii_lowercase();
    if !naming::is_valid_format_name(&format) {
        bail!("--format {:?} is not a format name", args.format);
    }
    let formats = registry.formats();
    let Some((_, info)) = formats.iter().find(|(name, _)| *name == format) else {
        let names: Vec<&str> = formats.iter().map(|(name, _)| name.as_str()).collect();
        bail!("no plugin serves format {format:?}; available: {}", names.join(", "));
    };
    let bitrate_kbps = args.bitrate.as_deref().map(naming::parse_bitrate).transpose().map_err(|e| anyhow::anyhow!("--bitrate: {e}"))?;
    let vbr_quality = args.vbr.as_deref().map(naming::parse_vbr_quality).transpose().map_err(|e| anyhow::anyhow!("--vbr: {e}"))?;
    if bitrate_kbps.is_some() && vbr_quality.is_some() {
        bail!("give --bitrate or --vbr, not both");
    }
    let options: ConversionOptions =
        serde_json::from_value(serde_json::json!({ "format": format, "bitrate_kbps": bitrate_kbps, "vbr_quality": vbr_quality }))?;
    let info = codec_host::format_info(format, info.clone());
    info.check_options(&options).map_err(|detail| anyhow::anyhow!("{detail}"))?;
    Ok((options, info))
}

/// OUT, or `named`'s name with `extension` (the input's, beside it; a URL's, here).
fn output_path(args: &ConvertArgs, named: &Path, extension: &str) -> PathBuf {
    match &args.output {
        Some(path) => path.clone(),
        None => named.with_extension(extension),
    }
}

/// The input when it is a URL.
fn url_input(input: &Path) -> Option<url::Url> {
    let text = input.to_str()?;
    (text.starts_with("http://") || text.starts_with("https://")).then(|| url::Url::parse(text).ok()).flatten()
}

/// Fetches `url` into `into` under the outbound rules of imports (`import::fetch`).
async fn download(url: &url::Url, allowed_hosts: &str, into: &Path) -> Result<(), ConvertError> {
    use tokio::io::AsyncWriteExt;
    let fetcher = job_worker::import::fetch::Fetcher::new(allowed_hosts).context("--url-import-allowed-hosts")?;
    let (_, mut response) = match fetcher.open(url).await {
        Ok(opened) => opened,
        Err(job_worker::import::fetch::FetchError::Refused(reason)) => return Err(anyhow::anyhow!("url not allowed: {reason}").into()),
        Err(job_worker::import::fetch::FetchError::Failed(reason)) => return Err(ConvertError::Failed(reason)),
    };
    if !response.status().is_success() {
        return Err(ConvertError::Failed(format!("the link answered HTTP {}", response.status().as_u16())));
    }
    let mut file = tokio::fs::File::create(into).await.with_context(|| format!("cannot write {}", into.display()))?;
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => file.write_all(&bytes).await.with_context(|| format!("writing {}", into.display()))?,
            Ok(None) => break,
            Err(e) => return Err(ConvertError::Failed(job_worker::import::fetch::describe(&e, url))),
        }
    }
    file.flush().await.context("writing the download")?;
    Ok(())
}

/// Runs the conversion; prints what it did.
pub async fn run(args: ConvertArgs) -> Result<(), ConvertError> {
    let started = Instant::now();
    let (plugins, converter_file) = match (&args.plugins, &args.converter) {
        (Some(p), Some(c)) => (p.clone(), c.clone()),
        _ => {
            let app = AppDir::locate(args.app_dir.as_deref())?;
            (app.or_default(args.plugins.as_deref(), app_dir::PLUGINS), app.or_default(args.converter.as_deref(), app_dir::CONVERTER))
        }
    };
    app_dir::check_worker_files(&converter_file, &plugins)?;
    // A URL is fetched into a file of our own first (removed at the end), under the same rules
    // as the platform's imports; its output goes to the current directory, named after it.
    let (input, named, _downloaded) = match url_input(&args.input) {
        Some(url) => {
            let mut bits = [0u8; 8];
            getrandom::fill(&mut bits).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let temporary = std::env::temp_dir().join(format!("mp3edge-import-{}", hex::encode(bits)));
            let cleanup = RemoveOnDrop(temporary.clone());
            eprintln!("downloading {url}");
            download(&url, &args.url_import_allowed_hosts, &temporary).await?;
            (temporary, PathBuf::from(job_model::net::import_source_name(&url)), Some(cleanup))
        }
        None => (args.input.clone(), args.input.clone(), None),
    };
    let source = std::fs::File::open(&input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let meta = source.metadata().context("reading the input")?;
    if !meta.is_file() {
        return Err(anyhow::anyhow!("{} is not a file", args.input.display()).into());
    }
    if meta.len() == 0 {
        return Err(ConvertError::Failed(format!("{} is empty", args.input.display())));
    }

    crate::worker::start_media_sandbox(512 << 20, Duration::from_secs(24 * 3600)).await?;
    let runtime = Runtime::new(Limits { deadline: Duration::from_secs(24 * 3600), ..Limits::default() })?;
    let limits = PluginLimits { max_memory_bytes: 64 << 20, call_timeout: Duration::from_secs(60), segments: args.segments.policy() };
    let registry = CodecRegistry::new(runtime.clone(), plugins, limits)?;
    registry.refresh().await?;
    let (options, info) = options(&args, &registry)?;
    let extension = info.extension.clone();
    let output_path = output_path(&args, &named, &extension);
    if same_file(&input, &output_path) {
        return Err(anyhow::anyhow!("OUT is the input itself").into());
    }
    if output_path.exists() && !args.force {
        return Err(anyhow::anyhow!("{} exists\nhint: pass --force to replace it", output_path.display()).into());
    }
    // Written next to OUT and renamed at the end, so a failure never leaves half a file at OUT.
    let partial = partial_path(&output_path);
    let output = std::fs::File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    let _cleanup = RemoveOnDrop(partial.clone());

    let mut id_bits = [0u8; 16];
    getrandom::fill(&mut id_bits).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let job_id = layout::job_id_from_bits(u128::from_le_bytes(id_bits));
    let chunk_size = layout::CHUNK_SIZE as u64;
    let store: Arc<dyn KeyValueBackend> = Arc::new(LocalFilesKeyValue::new(&job_id, source, output, chunk_size)?);
    let source_name = named.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Built from JSON, so the record's optional fields keep their defaults.
    let job: Job = serde_json::from_value(serde_json::json!({
        "id": job_id,
        "owner": "local",
        "source_name": source_name,
        "source": StoredFile {
            size: meta.len(),
            chunks: layout::chunk_count(meta.len(), chunk_size),
            chunk_size: chunk_size as u32,
            content_type: "application/octet-stream".into(),
        },
        "options": options,
        "status": JobStatus::Queued,
        "created_at": now(),
        "updated_at": now(),
        "attempts": 1,
        // No quota, output or duration cap: the user's own machine.
        "policy": JobPolicy { retention_secs: 0, quota_bytes: 0, max_output_bytes: 0, max_duration_secs: 0, max_source_bytes: 0 },
    }))
    .map_err(anyhow::Error::from)?;
    store.set(&layout::job_key(&job_id), &job.to_json()).await?;

    let services = Arc::new(Services {
        key_value: KeyValueStores::single("default", store.clone()),
        sqlite: Default::default(),
        redis: Default::default(),
    });
    let grants = Grants {
        component: "converter".into(),
        key_value_stores: ["default".to_string()].into(),
        sqlite_databases: Default::default(),
        outbound: OutboundPolicy::parse(&[])?,
        // No job queue: the converter counts no quota and publishes nothing.
        variables: ComponentVariables::new([("redis_address".to_string(), String::new())].into()),
    };
    let component = runtime.compile(&converter_file)?;
    let converter = Converter::new(runtime, &component, grants, services, registry)?;

    let progress = Progress::start(&args.input, &output_path);
    let watch = {
        let (store, key, progress) = (store.clone(), layout::job_key(&job_id), progress.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(Some(bytes)) = store.get(&key).await
                    && let Ok(job) = Job::from_json(&bytes)
                {
                    progress.set(job.progress);
                }
            }
        })
    };
    let delivery = Delivery { job_id: job_id.clone(), attempt: 1, max_attempts: 1 };
    let attempt = converter.run(&delivery).await;
    watch.abort();
    let job = match store.get(&layout::job_key(&job_id)).await? {
        Some(bytes) => Job::from_json(&bytes).map_err(anyhow::Error::from)?,
        None => return Err(ConvertError::Failed("the job record vanished".into())),
    };
    match (job.status, job.output) {
        (JobStatus::Done, Some(out)) => {
            progress.finish();
            std::fs::rename(&partial, &output_path).with_context(|| format!("cannot write {}", output_path.display()))?;
            let duration = out.duration_secs.map(|d| format!(", {d:.1} s of audio")).unwrap_or_default();
            println!(
                "{} → {} ({}{duration}) in {:.1} s",
                args.input.display(),
                output_path.display(),
                human_bytes(out.file.size),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        _ => {
            progress.abandon();
            let reason = job.error.or(attempt.err()).unwrap_or_else(|| "the conversion did not finish".into());
            Err(ConvertError::Failed(reason))
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    output.with_file_name(name)
}

/// Removes the partial output unless it was renamed into place.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A progress bar on a terminal, plain lines at 25/50/75 % otherwise.
#[derive(Clone)]
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines(Arc<std::sync::atomic::AtomicU8>),
}

impl Progress {
    fn start(input: &Path, output: &Path) -> Progress {
        let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(100);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos:>3}% {elapsed_precise} (eta {eta})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(name);
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            eprintln!("converting {} → {}", input.display(), output.display());
            Progress::Lines(Arc::default())
        }
    }

    fn set(&self, percent: u8) {
        match self {
            Progress::Bar(bar) => bar.set_position(u64::from(percent)),
            Progress::Lines(shown) => {
                let quarter = percent / 25 * 25;
                if quarter > 0 && shown.fetch_max(quarter, std::sync::atomic::Ordering::Relaxed) < quarter {
                    eprintln!("{quarter}%");
                }
            }
        }
    }

    fn finish(&self) {
        match self {
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Lines(_) => eprintln!("100%"),
        }
    }

    fn abandon(&self) {
        if let Progress::Bar(bar) = self {
            bar.abandon();
        }
    }
}
