//! `mp3edge up`: serves a Spin application's HTTP components as `spin up` would and, for the
//! mp3edge application, runs its embedding beside them (generated secrets, a private Redis, the
//! conversion worker) and the admin endpoints. Says at start where the generated secrets are.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::app_dir::{self, AppDir};
use crate::embedded_defaults::{self, Mp3edgeEmbedding, REDIS_HOST_VARIABLE};
use spin_host::engine::{Limits, Runtime};
use spin_host::transfer::TransferRules;
use spin_host::interfaces::variables::{EnvironmentProvider, StaticProvider, VariableProvider, VariableResolver};
use crate::worker;
use job_worker::admin;
use redis_support::server as redis_server;
use spin_host::{admission, app, host_errors, http_trigger, manifest, runtime_config};

#[derive(Parser)]
pub struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000", help_heading = "Serving")]
    listen: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics` (edge requests and worker jobs).
    #[arg(long, default_value = "127.0.0.1:9090", help_heading = "Operations")]
    admin_listen: SocketAddr,
    /// The application directory: `spin.toml`, `plugins/` and the built components. Default: the
    /// current directory if it has a `spin.toml`, else the nearest directory at or above the
    /// mp3edge binary that has one.
    #[arg(long, help_heading = "Files")]
    app_dir: Option<PathBuf>,
    /// Directory for all state: databases, private Redis, generated secrets (default:
    /// APP_DIR/.mp3edge).
    #[arg(long, help_heading = "Files")]
    data_dir: Option<PathBuf>,
    /// Spin runtime-config file (key-value stores, SQLite databases).
    #[arg(long, help_heading = "Files")]
    runtime_config_file: Option<PathBuf>,
    /// The Spin application manifest (default: APP_DIR/spin.toml).
    #[arg(short = 'f', long = "from", help_heading = "Files")]
    manifest: Option<PathBuf>,
    /// Linear memory cap of one component instance, in MiB.
    #[arg(long, default_value_t = 128, help_heading = "Limits")]
    max_memory_mib: usize,
    /// Work one request's component may do, in seconds (decimals allowed): the time the host's
    /// threads spend running it, its wasm and the host calls that run in place. Waiting (for its
    /// client, a timer, a backend) is not work. Past it: 503 `deadline exceeded`, or the
    /// response ends incomplete.
    #[arg(long, default_value_t = 600.0, value_parser = positive_seconds, help_heading = "Limits")]
    request_timeout_secs: f64,
    /// Wall-clock bound of one request, waiting and transfers included, in seconds (0: none): a
    /// backstop for a component that waits for ever. Default 48 h.
    #[arg(long, default_value_t = 172_800, help_heading = "Limits")]
    request_max_secs: u64,
    /// Requests one component serves at once.
    #[arg(long, default_value_t = 100, help_heading = "Limits")]
    max_concurrent_requests: usize,
    /// A different limit for one component, as NAME=N (repeatable). The mp3edge application's
    /// `auth` defaults to 4: each password check holds about 20 MiB.
    #[arg(long = "component-concurrency", value_name = "NAME=N", help_heading = "Limits")]
    component_concurrency: Vec<String>,
    /// Requests that may wait for a component's place; beyond them the answer is 503.
    #[arg(long, default_value_t = 200, help_heading = "Limits")]
    request_queue: usize,
    /// Longest wait for a place, in seconds, before the answer is 503.
    #[arg(long, default_value_t = 10, help_heading = "Limits")]
    request_queue_timeout_secs: u64,
    /// A transfer whose client moves nothing for this many seconds while the transfer waits on
    /// it ends: a request body with a read timeout (408), a response by resetting the connection.
    #[arg(long, default_value_t = 30, help_heading = "Limits")]
    body_idle_timeout_secs: u64,
    /// The least rate a client must keep while a transfer (request body or response) waits on
    /// it, in bytes a second, averaged over each window below (0: no floor).
    #[arg(long, default_value_t = 16 << 10, help_heading = "Limits")]
    transfer_min_bytes_per_sec: u64,
    /// The window, in seconds of waiting on the client, over which the rate floor is checked.
    #[arg(long, default_value_t = 30, help_heading = "Limits")]
    transfer_rate_window_secs: u64,
    /// Serve HTTP only; conversions are left to separate `mp3edge worker` processes.
    #[arg(long, help_heading = "Conversion worker")]
    no_worker: bool,
    #[command(flatten, next_help_heading = "Conversion worker")]
    worker: worker::WorkerOptions,
}

/// A number of seconds above zero (decimals allowed), for `--request-timeout-secs`.
fn positive_seconds(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Ok(secs),
        _ => Err(format!("{text:?} is not a number of seconds above 0 (e.g. 600 or 0.5)")),
    }
}

pub async fn run(mut args: UpArgs) -> Result<()> {
    let shutdown = crate::shutdown_signal();
    // The application directory is looked for only when something defaults to it.
    let app = match (&args.manifest, &args.data_dir) {
        (Some(_), Some(_)) if args.app_dir.is_none() => None,
        _ => Some(AppDir::locate(args.app_dir.as_deref())?),
    };
    let under_app = |given: &Option<PathBuf>, default: &str| match (&app, given) {
        (_, Some(path)) => path.clone(),
        (Some(app), None) => app.or_default(None, default),
        (None, None) => PathBuf::from(default),
    };
    let manifest_path = under_app(&args.manifest, app_dir::MANIFEST);
    let data_dir = under_app(&args.data_dir, app_dir::DATA_DIR);
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    spin_host::private_dir::restrict_to_owner(&data_dir)?;
    let data_dir = data_dir.canonicalize()?;
    spin_host::module_cache::set_default_dir(data_dir.join("module-cache"));
    let manifest = manifest::Manifest::load(&manifest_path)?;
    let runtime_config = runtime_config::RuntimeConfig::load(args.runtime_config_file.as_deref(), &data_dir)?;

    // The mp3edge application's embedding (generated secrets, private Redis, worker) is only for
    // the application that asks for it; any other application runs as under `spin up`.
    let embedding = Mp3edgeEmbedding::of(&manifest);
    let run_worker = embedding.applies() && !args.no_worker;
    if !embedding.applies() && !args.no_worker {
        tracing::info!("the application does not declare the mp3edge job queue; serving HTTP only, without a worker");
    }
    let worker_files = match run_worker {
        true => Some(args.worker.worker_files(app.as_ref().map(AppDir::path))?),
        false => None,
    };
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
    if embedding.applies() {
        embedded_defaults::announce_secrets(&data_dir);
    }
    let providers: Vec<Box<dyn VariableProvider>> = vec![Box::new(EnvironmentProvider), Box::new(StaticProvider(host_values))];
    let resolver = VariableResolver::new(&manifest, providers);

    let mut overrides = embedded_defaults::component_concurrency(&manifest);
    overrides.extend(admission::AdmissionConfig::parse_overrides(&args.component_concurrency)?);
    let request_metrics = Arc::new(spin_host::request_metrics::RequestMetrics::default());
    let serve = http_trigger::ServeConfig {
        admission: admission::AdmissionConfig {
            default: admission::ComponentLimit { concurrent: args.max_concurrent_requests.max(1), queue: args.request_queue },
            overrides,
            queue_timeout: Duration::from_secs(args.request_queue_timeout_secs),
        },
        limits: http_trigger::RequestLimits {
            work: Duration::from_secs_f64(args.request_timeout_secs),
            time_limit: (args.request_max_secs > 0).then(|| Duration::from_secs(args.request_max_secs)),
            transfer: TransferRules {
                idle: Duration::from_secs(args.body_idle_timeout_secs.max(1)),
                min_bytes_per_sec: args.transfer_min_bytes_per_sec,
                window: Duration::from_secs(args.transfer_rate_window_secs.max(1)),
            },
        },
        error_style: match embedding.applies() {
            true => host_errors::HostErrorStyle::Json,
            false => host_errors::HostErrorStyle::Spin,
        },
        metrics: request_metrics.clone(),
    };
    let components: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
    let limits = Limits {
        max_memory_bytes: args.max_memory_mib << 20,
        // Only a job's store would use it (the worker has a runtime of its own); requests are
        // bounded by `serve.limits`.
        deadline: Duration::from_secs_f64(args.request_timeout_secs),
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
        let worker = match (&redis_host, &worker_files) {
            (Some(redis_host), Some(files)) => {
                let public_url = format!("http://{}", args.listen);
                Some(worker::start(app.services.clone(), redis_host, &args.worker, files, &public_url).await?)
            }
            _ => None,
        };
        let trigger = http_trigger::HttpTrigger::new(runtime.clone(), app, &serve)?;
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let local = listener.local_addr()?;
        // The admin endpoints are for operators; a second `up` on the same machine keeps
        // serving without them rather than failing.
        let admin_stopped = tokio_util::sync::CancellationToken::new();
        let admin = match admin::bind(args.admin_listen).await {
            Ok(admin_listener) => {
                let probes = admin::Probes { worker: worker.clone(), edge: Some(request_metrics.clone()) };
                Some(tokio::spawn(admin::serve(admin_listener, probes, shutdown.clone(), admin_stopped.clone())))
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "admin endpoints not served; pass a free --admin-listen");
                None
            }
        };
        tracing::info!(%local, app = %manifest_name, "serving");
        println!("mp3edge: serving on http://{local}");
        // Conversions run on threads of their own at a lower priority, so that requests are
        // served first when both want the CPU (an idle edge leaves the encoder every cycle).
        let conversions = match &worker {
            Some(_) => Some(conversion_runtime()?),
            None => None,
        };
        let worker = worker.zip(conversions.as_ref()).map(|(w, rt)| rt.spawn(w.run(shutdown.clone())));
        let served = trigger.serve(listener, shutdown).await;
        if let Some(worker) = worker {
            worker.await??;
        }
        if let Some(rt) = conversions {
            rt.shutdown_background();
        }
        admin_stopped.cancel();
        if let Some(admin) = admin {
            admin.await??;
        }
        served
    }
    .await;
    if let Some(redis) = private_redis {
        redis.stop().await;
    }
    result
}

/// How much nicer than the process the threads that convert in `up` are (at most 19): under
/// contention the kernel gives a request's thread about nine times the encoder's share.
pub const CONVERSION_NICE_STEP: i32 = 10;

/// The runtime the worker of `up` runs on: as many threads as cores, named `conversion`, each
/// (and every process it starts, such as the confined FFmpeg, which inherits it)
/// [`CONVERSION_NICE_STEP`] nicer than the threads that serve requests.
fn conversion_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // The value is fixed here, from the thread that builds the runtime (a request thread's):
    // the runtime's blocking threads are started by its own, already nicer, threads.
    // SAFETY: plain system calls on this thread (Linux keeps a nice value per thread, which a
    // new thread inherits from the one that made it).
    let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
    let nice = (base + CONVERSION_NICE_STEP).min(19);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("conversion")
        .on_thread_start(move || {
            // SAFETY: as above.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
                tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower a conversion thread's priority");
            }
        })
        .build()
        .context("starting the conversion runtime")
}
