//! `mp3edge`: the project's own host. `mp3edge up` serves the Spin application of `spin.toml`
//! (HTTP components with key-value, SQLite, Redis, MQTT, PostgreSQL, variables and WASI
//! sockets) on a machine without Spin, as `spin up` would; the mp3edge application also gets
//! its embedded defaults and conversion worker (`embedded_defaults`).

mod admin;
mod admission;
mod app;
mod bindings;
mod codecs;
mod demux;
mod embedded_defaults;
mod engine;
mod host_errors;
mod http_trigger;
mod idle_body;
mod key_value;
mod lifecycle;
mod manifest;
mod metrics;
mod mqtt_outbound;
mod notify;
mod outbound;
mod outbound_http;
mod postgres_outbound;
mod postgres_values;
mod redis_outbound;
mod redis_server;
mod router;
mod runtime_config;
mod socket_policy;
mod sqlite;
mod state;
mod trigger;
mod variables;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::embedded_defaults::{Mp3edgeEmbedding, REDIS_HOST_VARIABLE};
use crate::engine::{Limits, Runtime};
use crate::variables::{EnvironmentProvider, StaticProvider, VariableProvider, VariableResolver};

#[derive(Parser)]
#[command(name = "mp3edge", version, about = "Run the mp3edge platform without Spin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application's HTTP components (and, for the mp3edge application, run the
    /// conversion worker beside them).
    Up(UpArgs),
    /// Run only the conversion worker (beside `spin up`, or as a Kubernetes pod).
    Worker(worker::WorkerArgs),
}

#[derive(Parser)]
struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory for all state (databases, private Redis, generated secrets).
    #[arg(long, default_value = ".mp3edge")]
    data_dir: PathBuf,
    /// Spin runtime-config file (key-value stores, SQLite databases).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// The Spin application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Linear memory cap of one component instance, in MiB.
    #[arg(long, default_value_t = 128)]
    max_memory_mib: usize,
    /// Wall-clock deadline of one request, in seconds (waiting included).
    #[arg(long, default_value_t = 600)]
    request_timeout_secs: u64,
    /// Requests one component serves at once.
    #[arg(long, default_value_t = 100)]
    max_concurrent_requests: usize,
    /// A different limit for one component, as NAME=N (repeatable). The mp3edge application's
    /// `auth` defaults to 4: each password check holds about 20 MiB.
    #[arg(long = "component-concurrency", value_name = "NAME=N")]
    component_concurrency: Vec<String>,
    /// Requests that may wait for a component's place; beyond them the answer is 503.
    #[arg(long, default_value_t = 200)]
    request_queue: usize,
    /// Longest wait for a place, in seconds, before the answer is 503.
    #[arg(long, default_value_t = 10)]
    request_queue_timeout_secs: u64,
    /// A request body that sends nothing for this many seconds ends with a read timeout (408).
    #[arg(long, default_value_t = 30)]
    body_idle_timeout_secs: u64,
    /// Serve HTTP only; conversions are left to separate `mp3edge worker` processes.
    #[arg(long)]
    no_worker: bool,
    #[command(flatten)]
    worker: worker::WorkerOptions,
}

fn main() -> Result<()> {
    // Memory stays flat however long a job is: megabyte-sized buffers (key-value chunks, PCM
    // blocks, encoded output) always come from mmap and go straight back to the OS when freed,
    // instead of glibc raising its mmap threshold and keeping them in (per-thread) arenas.
    // SAFETY: called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        // The data directory holds password hashes, secrets and users' media: everything this
        // process (and the private Redis it starts) creates is for its owner only.
        libc::umask(0o077);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MP3EDGE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up(args) => rt.block_on(up(args)),
        Command::Worker(args) => rt.block_on(worker::run(args, shutdown_signal_in(&rt))),
    }
}

/// Makes a data directory made by an older release (0755) private too.
pub fn restrict_to_owner(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(|| format!("restricting {}", dir.display()))
}

fn shutdown_signal_in(rt: &tokio::runtime::Runtime) -> CancellationToken {
    let _guard = rt.enter();
    shutdown_signal()
}

/// Cancelled on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

async fn up(mut args: UpArgs) -> Result<()> {
    let shutdown = shutdown_signal();
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    restrict_to_owner(&args.data_dir)?;
    let data_dir = args.data_dir.canonicalize()?;
    let manifest = manifest::Manifest::load(&args.manifest)?;
    let runtime_config = runtime_config::RuntimeConfig::load(args.runtime_config_file.as_deref(), &data_dir)?;

    // The mp3edge application's embedding (generated secrets, private Redis, worker) is only for
    // the application that asks for it; any other application runs as under `spin up`.
    let embedding = Mp3edgeEmbedding::of(&manifest);
    let run_worker = embedding.applies() && !args.no_worker;
    if !embedding.applies() && !args.no_worker {
        tracing::info!("the application does not declare the mp3edge job queue; serving HTTP only, without a worker");
    }
    let mut host_values = match embedding.applies() {
        true => embedded_defaults::embedded_variables(&data_dir)?,
        false => Default::default(),
    };
    if run_worker && args.worker.notify.webhook_secret.is_none() {
        args.worker.notify.webhook_secret = Some(embedded_defaults::webhook_secret(&data_dir)?);
    }
    let redis_configured = EnvironmentProvider.get(REDIS_HOST_VARIABLE).is_some();
    let private_redis = if embedding.applies() && !redis_configured {
        let password = embedded_defaults::redis_password(&data_dir)?;
        let redis = redis_server::PrivateRedis::start(&data_dir.join("redis"), &password).await?;
        redis.supervise(shutdown.clone());
        host_values.insert(REDIS_HOST_VARIABLE.to_string(), redis.host());
        Some(redis)
    } else {
        None
    };
    let providers: Vec<Box<dyn VariableProvider>> = vec![Box::new(EnvironmentProvider), Box::new(StaticProvider(host_values))];
    let resolver = VariableResolver::new(&manifest, providers);

    let mut overrides = embedded_defaults::component_concurrency(&manifest);
    overrides.extend(admission::AdmissionConfig::parse_overrides(&args.component_concurrency)?);
    let serve = http_trigger::ServeConfig {
        admission: admission::AdmissionConfig {
            default: admission::ComponentLimit { concurrent: args.max_concurrent_requests.max(1), queue: args.request_queue },
            overrides,
            queue_timeout: Duration::from_secs(args.request_queue_timeout_secs),
        },
        body_idle_timeout: Duration::from_secs(args.body_idle_timeout_secs.max(1)),
        error_style: match embedding.applies() {
            true => host_errors::HostErrorStyle::Json,
            false => host_errors::HostErrorStyle::Spin,
        },
    };
    let components: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
    let limits = Limits {
        max_memory_bytes: args.max_memory_mib << 20,
        deadline: Duration::from_secs(args.request_timeout_secs),
        // Room for every component's places, so admission, not the pool, is what says no.
        max_instances: (admission::Admission::total(&serve.admission, &components) + 16) as u32,
    };
    let runtime = Runtime::new(limits)?;
    let manifest_name = manifest.application.name.clone();
    let redis_host = match run_worker {
        true => Some(resolver.resolve(REDIS_HOST_VARIABLE)?),
        false => None,
    };
    let result = async {
        let app = Arc::new(app::App::load(&runtime, manifest, &runtime_config, &resolver, None).await?);
        let worker = match &redis_host {
            None => None,
            Some(redis_host) => {
                let public_url = format!("http://{}", args.listen);
                Some(worker::start(app.services.clone(), redis_host, &args.worker, &public_url).await?)
            }
        };
        let trigger = http_trigger::HttpTrigger::new(runtime.clone(), app, &serve)?;
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let local = listener.local_addr()?;
        tracing::info!(%local, app = %manifest_name, "serving");
        println!("mp3edge: serving on http://{local}");
        let worker = worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        let served = trigger.serve(listener, shutdown).await;
        if let Some(worker) = worker {
            worker.await??;
        }
        served
    }
    .await;
    if let Some(redis) = private_redis {
        redis.stop().await;
    }
    result
}
