//! `mp3edge convert IN [OUT]`, `convert IN… --output-dir DIR`: local conversions, for a user who
//! just wants the audio. The same converter component and codec plugins as the platform run on
//! one job per input whose key-value store is the two files themselves (`local_store`): no
//! server, no Redis, no copy. The format comes from OUT's extension or `--format`, the audio
//! options are the API's (`flags`); `-` reads standard input (spooled to an unnamed temporary
//! file, bounded like an upload) or writes standard output (nothing else goes there). Several
//! inputs are converted `--jobs` at a time, each with a progress bar on a terminal (plain lines
//! otherwise), and a summary at the end.
//!
//! Exit codes: 0 converted; 1 an input cannot be converted (each reason is printed);
//! 2 the command line is wrong (unknown format or option, unreadable input, existing output).

mod flags;
mod local_store;

use std::io::{IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use job_model::lifecycle::human_bytes;
use job_model::{ConversionOptions, Delivery, Job, JobPolicy, JobStatus, StoredFile, layout};
use wasmtime::component::Component;

use crate::app_dir::{self, AppDir};
use codec_host::{CodecRegistry, PluginLimits};
use job_worker::trigger::converter::Converter;
use local_store::LocalFilesKeyValue;
use spin_host::engine::{Limits, Runtime};
use spin_host::interfaces::key_value::{KeyValueBackend, KeyValueStores};
use spin_host::interfaces::variables::ComponentVariables;
use spin_host::outbound::OutboundPolicy;
use spin_host::state::{Grants, Services};

/// `mp3edge convert`.
#[derive(Parser, Debug)]
pub struct ConvertArgs {
    /// IN [OUT]: the video or audio file to convert (an `http(s)://` URL to fetch it from, or
    /// `-` for standard input) and where to write the result (`-`: standard output; default:
    /// the input's name with the format's extension, beside the input; for a URL, in the
    /// current directory). With --output-dir, every path is an input (a directory: its files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Convert every PATH into this directory, named after the input with the format's
    /// extension.
    #[arg(long, short = 'o', help_heading = "Files")]
    pub output_dir: Option<PathBuf>,
    /// Inputs converted at the same time (default: the number of cores).
    #[arg(long, short = 'j', help_heading = "Speed")]
    pub jobs: Option<usize>,
    /// Hosts a URL input may be fetched from even at loopback or private addresses, in Spin's
    /// `allowed_outbound_hosts` syntax, comma-separated; by default only public addresses.
    #[arg(long, env = "SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS", default_value = "", help_heading = "Files")]
    pub url_import_allowed_hosts: String,
    /// Largest standard input accepted, in bytes (the platform's largest upload).
    #[arg(long, env = "SPIN_VARIABLE_MAX_UPLOAD_BYTES", default_value_t = 2 << 30, help_heading = "Files")]
    pub max_upload_bytes: u64,
    #[command(flatten)]
    pub audio: flags::AudioFlags,
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

/// Where an input comes from.
enum Source {
    File(PathBuf),
    Url(url::Url),
    Stdin,
}

/// Where its audio goes.
#[derive(Clone)]
enum Sink {
    File(PathBuf),
    Stdout,
}

impl Sink {
    fn display(&self) -> String {
        match self {
            Sink::File(path) => path.display().to_string(),
            Sink::Stdout => "standard output".into(),
        }
    }
}

/// One input's conversion.
struct Task {
    /// The input as the user wrote it (or found in a directory they gave).
    label: String,
    source: Source,
    /// The name the output and the job's source name are derived from.
    named: PathBuf,
    sink: Sink,
}

/// How OUT was given.
enum Out {
    /// Beside the input (in the current directory for a URL).
    Beside,
    Dir(PathBuf),
    File(PathBuf),
    Stdout,
}

fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The input when it is a URL.
fn url_input(input: &Path) -> Option<url::Url> {
    let text = input.to_str()?;
    (text.starts_with("http://") || text.starts_with("https://")).then(|| url::Url::parse(text).ok()).flatten()
}

/// The inputs and how OUT was given; a directory among several inputs stands for its files.
fn plan(args: &ConvertArgs) -> Result<(Vec<(String, Source, PathBuf)>, Out)> {
    let (paths, out): (Vec<&PathBuf>, Out) = match (&args.output_dir, args.paths.as_slice()) {
        (Some(dir), paths) => (paths.iter().collect(), Out::Dir(dir.clone())),
        (None, [input]) => (vec![input], Out::Beside),
        (None, [input, output]) if is_dash(output) => (vec![input], Out::Stdout),
        (None, [input, output]) => (vec![input], Out::File(output.clone())),
        (None, _) => bail!("give IN [OUT], or several inputs with --output-dir DIR"),
    };
    let mut inputs = Vec::new();
    for path in paths {
        let label = path.display().to_string();
        if is_dash(path) {
            if inputs.iter().any(|(_, source, _)| matches!(source, Source::Stdin)) {
                bail!("standard input (-) can be read only once");
            }
            if matches!(out, Out::Beside) {
                bail!("standard input has no name to name OUT after\nhint: give OUT (a file, or - for standard output)");
            }
            inputs.push((label, Source::Stdin, PathBuf::from("stdin")));
        } else if let Some(url) = url_input(path) {
            let named = PathBuf::from(job_model::net::import_source_name(&url));
            inputs.push((label, Source::Url(url), named));
        } else if path.is_dir() && matches!(out, Out::Dir(_)) {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {label}"))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{label} holds no file to convert");
            }
            inputs.extend(files.into_iter().map(|file| (file.display().to_string(), Source::File(file.clone()), file)));
        } else {
            let meta = std::fs::metadata(path).with_context(|| format!("cannot read {label}"))?;
            if !meta.is_file() {
                bail!("{label} is not a file");
            }
            inputs.push((label, Source::File(path.clone()), path.clone()));
        }
    }
    Ok((inputs, out))
}

/// What every conversion of one run shares: the engine, the plugins and the converter.
struct Shared {
    runtime: Arc<Runtime>,
    registry: Arc<CodecRegistry>,
    component: Component,
    options: ConversionOptions,
    allowed_hosts: String,
    max_upload_bytes: u64,
    force: bool,
}

/// Runs the conversions; prints what they did.
pub async fn run(args: ConvertArgs) -> Result<(), ConvertError> {
    let started = Instant::now();
    // The command line first: nothing is loaded for a wrong one.
    let (inputs, out) = plan(&args)?;
    args.audio.options("mp3")?;
    if matches!(out, Out::Stdout) && std::io::stdout().is_terminal() {
        return Err(anyhow::anyhow!("standard output is a terminal, not a place for audio\nhint: redirect it (`> out.mp3`) or give OUT").into());
    }
    let (plugins, converter_file) = match (&args.plugins, &args.converter) {
        (Some(p), Some(c)) => (p.clone(), c.clone()),
        _ => {
            let app = AppDir::locate(args.app_dir.as_deref())?;
            (app.or_default(args.plugins.as_deref(), app_dir::PLUGINS), app.or_default(args.converter.as_deref(), app_dir::CONVERTER))
        }
    };
    app_dir::check_worker_files(&converter_file, &plugins)?;

    crate::worker::start_media_sandbox(512 << 20, Duration::from_secs(24 * 3600)).await?;
    let runtime = Runtime::new(Limits { deadline: Duration::from_secs(24 * 3600), ..Limits::default() })?;
    let limits = PluginLimits { max_memory_bytes: 64 << 20, call_timeout: Duration::from_secs(60), segments: args.segments.policy() };
    let registry = CodecRegistry::new(runtime.clone(), plugins, limits)?;
    // Components come from the build's precompiled artifacts; without them the first run
    // compiles every one (seconds) and later ones load them from the cache.
    let preparing = Preparing::start();
    let loaded = async {
        registry.refresh().await?;
        runtime.compile(&converter_file)
    }
    .await;
    preparing.finish();
    let component = loaded?;

    let formats: Vec<job_model::FormatInfo> = registry.format_infos();
    let named_output = match &out {
        Out::File(path) => Some(path.as_path()),
        _ => None,
    };
    let format = flags::choose_format(args.audio.format.as_deref(), named_output, matches!(out, Out::Stdout), &formats)?;
    let Some(info) = formats.iter().find(|info| info.format == format).filter(|_| job_model::naming::is_valid_format_name(&format)) else {
        let mut names: Vec<&str> = formats.iter().map(|info| info.format.as_str()).collect();
        names.sort();
        return Err(anyhow::anyhow!("unsupported format: format must be one of: {}", names.join(", ")).into());
    };
    let options = args.audio.options(&format)?;
    info.check_options(&options).map_err(|detail| anyhow::anyhow!("unsupported option: {detail}"))?;

    // Every output is known and free before anything is converted.
    let mut tasks = Vec::new();
    for (label, source, named) in inputs {
        let sink = match &out {
            Out::Beside => Sink::File(named.with_extension(&info.extension)),
            Out::File(path) => Sink::File(path.clone()),
            Out::Stdout => Sink::Stdout,
            Out::Dir(dir) => {
                let stem = named.file_stem().map(|s| s.to_os_string()).unwrap_or_else(|| "audio".into());
                Sink::File(dir.join(stem).with_extension(&info.extension))
            }
        };
        if let (Source::File(input), Sink::File(output)) = (&source, &sink) {
            if same_file(input, output) {
                return Err(anyhow::anyhow!("the output of {label} would be the input itself").into());
            }
        }
        if let Sink::File(output) = &sink {
            if output.exists() && !args.force {
                return Err(anyhow::anyhow!("{} exists\nhint: pass --force to replace it", output.display()).into());
            }
            if let Some(other) = tasks.iter().find(|t: &&Task| matches!(&t.sink, Sink::File(o) if o == output)) {
                return Err(anyhow::anyhow!("{} and {label} would both be written to {}", other.label, output.display()).into());
            }
        }
        tasks.push(Task { label, source, named, sink });
    }
    if let Out::Dir(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let shared = Arc::new(Shared {
        runtime,
        registry,
        component,
        options,
        allowed_hosts: args.url_import_allowed_hosts.clone(),
        max_upload_bytes: args.max_upload_bytes,
        force: args.force,
    });
    let batch = tasks.len() > 1;
    let multi = std::io::stderr().is_terminal().then(indicatif::MultiProgress::new);
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut running = tokio::task::JoinSet::new();
    let count = tasks.len();
    for (index, task) in tasks.into_iter().enumerate() {
        let (shared, slots, multi) = (shared.clone(), slots.clone(), multi.clone());
        running.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore stays open");
            let progress = Progress::start(multi.as_ref(), &task, batch);
            let outcome = convert_one(&shared, &task, &progress).await;
            match &outcome {
                Ok(_) => progress.finish(),
                Err(_) => progress.abandon(),
            }
            (index, task, outcome)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = running.join_next().await {
        results.push(joined.map_err(|e| anyhow::anyhow!("a conversion crashed: {e}"))?);
    }
    results.sort_by_key(|(index, _, _)| *index);

    let mut failures = Vec::new();
    for (_, task, outcome) in &results {
        match outcome {
            Ok(done) => {
                let line = format!("{} → {} ({}{}) in {:.1} s", task.label, task.sink.display(), human_bytes(done.size), done.duration, done.elapsed);
                // Standard output carries the audio alone when it is the output.
                if matches!(task.sink, Sink::Stdout) { eprintln!("{line}") } else { println!("{line}") }
            }
            Err(reason) => failures.push((task, reason)),
        }
    }
    if !batch {
        return match failures.pop() {
            Some((_, Failure::Refused(reason))) => Err(ConvertError::Usage(anyhow::anyhow!("{reason}"))),
            Some((_, failure)) => Err(ConvertError::Failed(failure.reason().to_string())),
            None => Ok(()),
        };
    }
    let summary = format!("converted {} of {count} in {:.1} s", count - failures.len(), started.elapsed().as_secs_f64());
    if failures.is_empty() {
        println!("{summary}");
        return Ok(());
    }
    let reasons: Vec<String> = failures.iter().map(|(task, failure)| format!("\n  {}: {}", task.label, failure.reason())).collect();
    Err(ConvertError::Failed(format!("{} of {count} failed:{}\n{summary}", failures.len(), reasons.concat())))
}

/// A finished conversion, for its summary line.
struct Done {
    size: u64,
    duration: String,
    elapsed: f64,
}

/// Why one input was not converted.
enum Failure {
    /// Its URL is not one imports may fetch: a command-line error when it is the only input.
    Refused(String),
    Failed(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Failed(reason)
    }
}

impl Failure {
    fn reason(&self) -> &str {
        match self {
            Failure::Refused(reason) | Failure::Failed(reason) => reason,
        }
    }
}

/// Converts one input; `Err` is why it could not be.
async fn convert_one(shared: &Shared, task: &Task, progress: &Progress) -> Result<Done, Failure> {
    let started = Instant::now();
    let describe = |e: anyhow::Error| format!("{e:#}");
    // A URL is fetched into an unnamed file of our own first, under the same rules as the
    // platform's imports; standard input is spooled into one, up to the largest upload.
    let (source, size) = match &task.source {
        Source::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", task.label))?;
            let size = file.metadata().map_err(|e| format!("cannot read {}: {e}", task.label))?.len();
            (file, size)
        }
        Source::Url(url) => {
            progress.note(&format!("downloading {url}"));
            let mut file = tempfile::tempfile().map_err(|e| format!("no temporary file: {e}"))?;
            download(url, &shared.allowed_hosts, &mut file).await?;
            let size = file.metadata().map_err(|e| format!("reading the download: {e}"))?.len();
            (file, size)
        }
        Source::Stdin => {
            let limit = shared.max_upload_bytes;
            tokio::task::spawn_blocking(move || spool_stdin(limit)).await.map_err(|e| e.to_string())??
        }
    };
    if size == 0 {
        return Err(format!("{} is empty", task.label).into());
    }
    // A file is written next to OUT and renamed at the end, so a failure never leaves half a
    // file at OUT; standard output gets the audio only once it is whole.
    let (output, partial) = match &task.sink {
        Sink::File(path) => {
            let partial = partial_path(path);
            let file = std::fs::File::create(&partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            (file, Some(RemoveOnDrop(partial)))
        }
        Sink::Stdout => (tempfile::tempfile().map_err(|e| format!("no temporary file: {e}"))?, None),
    };
    let mut spooled = output.try_clone().map_err(|e| e.to_string())?;

    let mut id_bits = [0u8; 16];
    getrandom::fill(&mut id_bits).map_err(|e| format!("no randomness: {e}"))?;
    let job_id = layout::job_id_from_bits(u128::from_le_bytes(id_bits));
    let chunk_size = layout::CHUNK_SIZE as u64;
    let store: Arc<dyn KeyValueBackend> = Arc::new(LocalFilesKeyValue::new(&job_id, source, output, chunk_size).map_err(describe)?);
    let source_name = task.named.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Built from JSON, so the record's optional fields keep their defaults.
    let job: Job = serde_json::from_value(serde_json::json!({
        "id": job_id,
        "owner": "local",
        "source_name": source_name,
        "source": StoredFile {
            size,
            chunks: layout::chunk_count(size, chunk_size),
            chunk_size: chunk_size as u32,
            content_type: "application/octet-stream".into(),
        },
        "options": shared.options,
        "status": JobStatus::Queued,
        "created_at": now(),
        "updated_at": now(),
        "attempts": 1,
        // No quota, output or duration cap: the user's own machine.
        "policy": JobPolicy { retention_secs: 0, quota_bytes: 0, max_output_bytes: 0, max_duration_secs: 0, max_source_bytes: 0 },
    }))
    .map_err(|e| e.to_string())?;
    store.set(&layout::job_key(&job_id), &job.to_json()).await.map_err(describe)?;

    let services = Arc::new(Services {
        key_value: KeyValueStores::single("default", store.clone()),
        sqlite: Default::default(),
        redis: Default::default(),
    });
    let grants = Grants {
        component: "converter".into(),
        key_value_stores: ["default".to_string()].into(),
        sqlite_databases: Default::default(),
        outbound: OutboundPolicy::parse(&[]).map_err(describe)?,
        // No job queue: the converter counts no quota and publishes nothing.
        variables: ComponentVariables::new([("redis_address".to_string(), String::new())].into()),
    };
    let converter = Converter::new(shared.runtime.clone(), &shared.component, grants, services, shared.registry.clone()).map_err(describe)?;

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
    let job = match store.get(&layout::job_key(&job_id)).await.map_err(describe)? {
        Some(bytes) => Job::from_json(&bytes).map_err(|e| e.to_string())?,
        None => return Err(Failure::Failed("the job record vanished".into())),
    };
    let out = match (job.status, job.output) {
        (JobStatus::Done, Some(out)) => out,
        _ => return Err(Failure::Failed(job.error.or(attempt.err()).unwrap_or_else(|| "the conversion did not finish".into()))),
    };
    match &task.sink {
        Sink::File(path) => {
            if path.exists() && !shared.force {
                return Err(format!("{} appeared while converting; kept it (pass --force to replace it)", path.display()).into());
            }
            std::fs::rename(partial_path(path), path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            drop(partial);
        }
        Sink::Stdout => {
            spooled.seek(std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut spooled, &mut stdout).and_then(|_| stdout.flush()).map_err(|e| format!("writing standard output: {e}"))?;
        }
    }
    Ok(Done {
        size: out.file.size,
        duration: out.duration_secs.map(|d| format!(", {d:.1} s of audio")).unwrap_or_default(),
        elapsed: started.elapsed().as_secs_f64(),
    })
}

/// Standard input in an unnamed temporary file, refused past `limit` bytes.
fn spool_stdin(limit: u64) -> Result<(std::fs::File, u64), String> {
    let mut file = tempfile::tempfile().map_err(|e| format!("no temporary file: {e}"))?;
    let copied = std::io::copy(&mut std::io::stdin().lock().take(limit + 1), &mut file).map_err(|e| format!("reading standard input: {e}"))?;
    if copied > limit {
        return Err(format!("standard input is larger than {} (--max-upload-bytes)", human_bytes(limit)));
    }
    Ok((file, copied))
}

/// Fetches `url` into `into` under the outbound rules of imports (`import::fetch`).
async fn download(url: &url::Url, allowed_hosts: &str, into: &mut std::fs::File) -> Result<(), Failure> {
    let fetcher = job_worker::import::fetch::Fetcher::new(allowed_hosts)
        .map_err(|e| Failure::Refused(format!("--url-import-allowed-hosts: {e:#}")))?;
    let (_, mut response) = match fetcher.open(url).await {
        Ok(opened) => opened,
        Err(job_worker::import::fetch::FetchError::Refused(reason)) => return Err(Failure::Refused(format!("url not allowed: {reason}"))),
        Err(job_worker::import::fetch::FetchError::Failed(reason)) => return Err(Failure::Failed(reason)),
    };
    if !response.status().is_success() {
        return Err(format!("the link answered HTTP {}", response.status().as_u16()).into());
    }
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => into.write_all(&bytes).map_err(|e| format!("writing the download: {e}"))?,
            Ok(None) => break,
            Err(e) => return Err(job_worker::import::fetch::describe(&e, url).into()),
        }
    }
    Ok(())
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

/// While the codecs load: nothing when they come from the module cache at once; when they take
/// longer (compiled, the first time), a spinner on a terminal, else one line.
struct Preparing(tokio::task::JoinHandle<()>, Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>);

impl Preparing {
    const MESSAGE: &str = "preparing codecs (once)…";

    fn start() -> Preparing {
        let spinner = Arc::new(std::sync::Mutex::new(None));
        let shown = spinner.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if std::io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new_spinner().with_message(Preparing::MESSAGE);
                bar.enable_steady_tick(Duration::from_millis(100));
                *shown.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
            } else {
                eprintln!("{}", Preparing::MESSAGE);
            }
        });
        Preparing(task, spinner)
    }

    fn finish(self) {
        self.0.abort();
        if let Some(bar) = self.1.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Removes the partial output unless it was renamed into place.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A progress bar on a terminal (one per input, under a `MultiProgress`), plain lines at
/// 25/50/75 % otherwise (prefixed with the input when there are several).
#[derive(Clone)]
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines { shown: Arc<std::sync::atomic::AtomicU8>, prefix: String },
}

impl Progress {
    fn start(multi: Option<&indicatif::MultiProgress>, task: &Task, batch: bool) -> Progress {
        match multi {
            Some(multi) => {
                let bar = multi.add(indicatif::ProgressBar::new(100));
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos:>3}% {elapsed_precise} (eta {eta})")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_message(task.label.clone());
                bar.enable_steady_tick(Duration::from_millis(200));
                Progress::Bar(bar)
            }
            None => {
                eprintln!("converting {} → {}", task.label, task.sink.display());
                let prefix = if batch { format!("{}: ", task.label) } else { String::new() };
                Progress::Lines { shown: Arc::default(), prefix }
            }
        }
    }

    fn note(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines { .. } => eprintln!("{line}"),
        }
    }

    fn set(&self, percent: u8) {
        match self {
            Progress::Bar(bar) => bar.set_position(u64::from(percent)),
            Progress::Lines { shown, prefix } => {
                let quarter = percent / 25 * 25;
                if quarter > 0 && shown.fetch_max(quarter, std::sync::atomic::Ordering::Relaxed) < quarter {
                    eprintln!("{prefix}{quarter}%");
                }
            }
        }
    }

    fn finish(&self) {
        match self {
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Lines { prefix, .. } => eprintln!("{prefix}100%"),
        }
    }

    fn abandon(&self) {
        if let Progress::Bar(bar) = self {
            bar.abandon();
        }
    }
}
