//! Assembling the conversion worker: the converter component with its grants, the codec
//! plugin registry and the Redis trigger; `mp3edge worker` runs it alone, `mp3edge up` beside
//! the HTTP components (sharing their key-value backends).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::app_dir::{self, AppDir};
use codec_host::{CodecRegistry, PluginLimits, SegmentPolicy};
use spin_host::engine::{Limits, Runtime};
use spin_host::interfaces::key_value::KeyValueStores;
use spin_host::outbound::OutboundPolicy;
use spin_host::interfaces::redis::RedisClients;
use spin_host::runtime_config::RuntimeConfig;
use spin_host::interfaces::sqlite::SqliteDatabases;
use spin_host::state::{Grants, Services};
use job_worker::trigger::converter::Converter;
use job_worker::trigger::{RedisTrigger, TriggerConfig};
use spin_host::interfaces::variables::ComponentVariables;

/// Worker settings shared by `mp3edge up` and `mp3edge worker`.
#[derive(Parser, Debug, Clone)]
pub struct WorkerOptions {
    /// Directory of codec plugins with their `codecs.toml` mapping (default: APP_DIR/plugins).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// The converter component (default: APP_DIR/target/wasm32-wasip2/release/converter.wasm).
    #[arg(long)]
    pub converter: Option<PathBuf>,
    /// Jobs converted at once (default: the number of cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Attempts before a job is failed and dead-lettered.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Seconds a job may go without a heartbeat before another worker takes it over.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout_secs: u64,
    /// Linear memory cap of one codec plugin instance, in MiB.
    #[arg(long, default_value_t = 64)]
    pub plugin_max_memory_mib: usize,
    /// Wall-clock budget of one call into a codec plugin, in seconds.
    #[arg(long, default_value_t = 60)]
    pub plugin_timeout_secs: u64,
    #[command(flatten, next_help_heading = "Speed")]
    pub segments: SegmentArgs,
    /// Wall-clock deadline of one conversion, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub job_timeout_secs: u64,
    /// Once asked to stop, how long conversions in progress may go on before they are
    /// interrupted and put back on the queue (not counted as attempts), in seconds.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Hosts that imports by URL (`POST /upload?url=`) may reach even at loopback or private
    /// addresses, in Spin's `allowed_outbound_hosts` syntax, comma-separated (e.g.
    /// `http://media.internal:8080`); by default only public addresses.
    #[arg(long, env = "SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS", default_value = "")]
    pub url_import_allowed_hosts: String,
    /// Imports by URL fetched at once.
    #[arg(long, default_value_t = 2)]
    pub import_concurrency: usize,
    /// Memory cap of one media process (FFmpeg reading an upload, confined), in MiB.
    #[arg(long, default_value_t = 512)]
    pub media_max_memory_mib: u64,
    /// How often acknowledged entries are trimmed from the job stream, in seconds.
    #[arg(long, default_value_t = 60)]
    pub stream_trim_secs: u64,
    /// A worker of the group that holds no job and was idle this long (it is gone) is removed
    /// from the group, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub idle_consumer_secs: u64,
    #[command(flatten, next_help_heading = "Notifications")]
    pub notify: job_worker::notify::NotifyOptions,
}

/// How long inputs are encoded in segments (`mp3edge up`, `worker` and `convert`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SegmentArgs {
    /// Segments of long inputs encoded at the same time, over all jobs (default: the number of
    /// cores); 1 encodes every input serially.
    #[arg(long)]
    pub segment_threads: Option<usize>,
    /// Length of a segment, in seconds (default: from the input's length, 30 s to 1 min).
    #[arg(long, value_parser = parse_segment_secs)]
    pub segment_secs: Option<f64>,
}

fn parse_segment_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 1.0 => Ok(secs),
        _ => Err("a segment length is a number of seconds, at least 1".into()),
    }
}

impl SegmentArgs {
    /// The segmented-encoding policy these options ask for.
    pub fn policy(&self) -> SegmentPolicy {
        let default = SegmentPolicy::default();
        SegmentPolicy { threads: self.segment_threads.unwrap_or(default.threads), segment_secs: self.segment_secs }
    }
}

impl WorkerOptions {
    /// The plugin directory and converter component: as given, else under the application
    /// directory (found only when one of them is not given); both must exist.
    pub fn worker_files(&self, app_dir: Option<&std::path::Path>) -> Result<(PathBuf, PathBuf)> {
        let (plugins, converter) = match (&self.plugins, &self.converter) {
            (Some(p), Some(c)) => (p.clone(), c.clone()),
            _ => {
                let app = AppDir::locate(app_dir)?;
                (app.or_default(self.plugins.as_deref(), app_dir::PLUGINS), app.or_default(self.converter.as_deref(), app_dir::CONVERTER))
            }
        };
        app_dir::check_worker_files(&converter, &plugins)?;
        Ok((plugins, converter))
    }
}

/// `mp3edge worker`.
#[derive(Parser, Debug)]
pub struct WorkerArgs {
    #[command(flatten, next_help_heading = "Conversion worker")]
    pub options: WorkerOptions,
    /// The application directory, for the default --plugins and --converter (see `up --help`).
    #[arg(long, help_heading = "Files")]
    pub app_dir: Option<PathBuf>,
    /// Spin runtime-config file: the key-value store must be the edge's (Redis when the edge
    /// runs elsewhere).
    #[arg(long, help_heading = "Files")]
    pub runtime_config_file: Option<PathBuf>,
    /// Directory for local state (used by SQLite-backed stores).
    #[arg(long, default_value = ".mp3edge", help_heading = "Files")]
    pub data_dir: PathBuf,
    /// The job queue's Redis as host:port (default: SPIN_VARIABLE_REDIS_HOST, as the edge).
    #[arg(long, help_heading = "Files", env = "SPIN_VARIABLE_REDIS_HOST", default_value = "127.0.0.1:6379")]
    pub redis_host: String,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "127.0.0.1:9090", help_heading = "Operations")]
    pub admin_listen: std::net::SocketAddr,
}

fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "worker".into());
    let mut salt = [0u8; 4];
    let _ = getrandom::fill(&mut salt);
    format!("{}-{}-{:08x}", host.trim(), std::process::id(), u32::from_le_bytes(salt))
}

/// Builds the worker on top of existing services, with an engine of its own: its instance pool
/// and deadlines are separate from the HTTP components', so busy HTTP clients can never keep a
/// conversion or a codec plugin from starting, and a conversion runs under the job deadline.
pub async fn start(
    services: Arc<Services>,
    redis_host: &str,
    options: &WorkerOptions,
    files: &(PathBuf, PathBuf),
    default_public_url: &str,
) -> Result<Arc<RedisTrigger>> {
    let (plugins, converter) = files;
    start_media_sandbox(options.media_max_memory_mib << 20, Duration::from_secs(options.job_timeout_secs)).await?;
    let redis_url = format!("redis://{redis_host}");
    let runtime = Runtime::new(Limits { deadline: Duration::from_secs(options.job_timeout_secs), ..Limits::default() })?;
    let codecs = CodecRegistry::new(
        runtime.clone(),
        plugins.clone(),
        PluginLimits {
            max_memory_bytes: options.plugin_max_memory_mib << 20,
            call_timeout: Duration::from_secs(options.plugin_timeout_secs),
            segments: options.segments.policy(),
        },
    )?;
    let component = runtime.compile(converter)?;
    let grants = Grants {
        component: "converter".into(),
        key_value_stores: HashSet::from(["default".to_string()]),
        sqlite_databases: HashSet::new(),
        outbound: OutboundPolicy::parse(std::slice::from_ref(&redis_url))?,
        variables: ComponentVariables::new(BTreeMap::from([("redis_address".to_string(), redis_url.clone())])),
    };
    let store = services.key_value.get("default").context("the runtime config has no default key-value store")?;
    let converter = Converter::new(runtime, &component, grants, services, codecs.clone())?;
    let config = TriggerConfig {
        redis_url,
        concurrency: options.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        max_attempts: options.max_attempts.max(1),
        visibility_timeout: Duration::from_secs(options.visibility_timeout_secs.max(1)),
        poll_interval: Duration::from_secs(1),
        consumer: consumer_name(),
        cancel_poll: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(options.shutdown_grace_secs),
        url_import_allowed_hosts: options.url_import_allowed_hosts.clone(),
        import_concurrency: options.import_concurrency,
        sweeper: job_worker::lifecycle::sweeper::SweeperConfig {
            tidy_every: Duration::from_secs(options.stream_trim_secs.max(1)),
            idle_consumer: Duration::from_secs(options.idle_consumer_secs),
            ..Default::default()
        },
    };
    let notifier = Arc::new(job_worker::notify::Notifier::new(&options.notify, default_public_url, store.clone())?);
    RedisTrigger::new(config, converter, store, codecs, notifier, Arc::default()).await
}

/// Sets how uploads are parsed (FFmpeg in confined processes of `memory_bytes` each, for at
/// most `max_duration`) and starts one process to see that it does, and how it is confined
/// (logged, loudly when the kernel does not confine it fully).
pub async fn start_media_sandbox(memory_bytes: u64, max_duration: Duration) -> Result<()> {
    media::sandbox::configure(media::sandbox::SandboxConfig { memory_bytes, max_duration, ..Default::default() });
    tokio::task::spawn_blocking(media::sandbox::check)
        .await?
        .map_err(|reason| anyhow::anyhow!("the media sandbox (FFmpeg in a confined process) does not start: {reason}"))?;
    Ok(())
}

/// `mp3edge worker`: the worker alone.
pub async fn run(args: WorkerArgs, shutdown: CancellationToken) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    spin_host::private_dir::restrict_to_owner(&args.data_dir)?;
    let data_dir = args.data_dir.canonicalize()?;
    spin_host::module_cache::set_default_dir(data_dir.join("module-cache"));
    let files = args.options.worker_files(args.app_dir.as_deref())?;
    let runtime_config = RuntimeConfig::load(args.runtime_config_file.as_deref(), &data_dir)?;
    let services = Arc::new(Services {
        key_value: KeyValueStores::open(&runtime_config.key_value_stores).await?,
        sqlite: SqliteDatabases::default(),
        redis: RedisClients::default(),
    });
    let trigger = start(services, &args.redis_host, &args.options, &files, "http://127.0.0.1:3000").await?;
    let stopped = CancellationToken::new();
    // Converting matters more than being probed: a taken admin address is a warning.
    let admin = match job_worker::admin::bind(args.admin_listen).await {
        Ok(listener) => {
            let probes = job_worker::admin::Probes::worker(trigger.clone());
            Some(tokio::spawn(job_worker::admin::serve(listener, probes, shutdown.clone(), stopped.clone())))
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "admin endpoints not served; pass a free --admin-listen");
            None
        }
    };
    let result = trigger.run(shutdown).await;
    stopped.cancel();
    if let Some(admin) = admin {
        admin.await??;
    }
    result
}
