//! `mp3edge`: the project's own host. `mp3edge up` serves the Spin application of `spin.toml`
//! (HTTP components with key-value, SQLite, Redis, MQTT, PostgreSQL, variables and WASI
//! sockets) on a machine without Spin, as `spin up` would; the mp3edge application also gets
//! its embedded defaults and conversion worker (`embedded_defaults`). `mp3edge worker` runs the
//! worker alone, `mp3edge convert` converts one local file, `mp3edge users` administers accounts,
//! `mp3edge precompile` compiles every component at build time.

mod app_dir;
mod convert;
mod embedded_defaults;
mod precompile;
mod up;
mod users;
mod worker;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "mp3edge", version, about = "The mp3edge platform without Spin: serve it, run its worker, convert a file")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format on standard error (the level is set by MP3EDGE_LOG, e.g. `debug`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, help_heading = "Logging")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application's HTTP components (and, for the mp3edge application, run the
    /// conversion worker beside them).
    Up(up::UpArgs),
    /// Run only the conversion worker (beside `spin up`, or as a Kubernetes pod).
    Worker(worker::WorkerArgs),
    /// Convert local files, URLs or standard input with the platform's converter and plugins;
    /// no server needed.
    Convert(convert::ConvertArgs),
    /// Manage accounts in a data directory (add, list, passwd, disable, enable).
    Users(users::UsersArgs),
    /// Compile every component for this machine and write the native code beside each .wasm,
    /// so that a first start loads it instead of compiling (the end of `make build`).
    Precompile(precompile::PrecompileArgs),
}

/// Log lines are formatted where they happen and written by a thread of their own, through a
/// buffer flushed whenever no line is waiting: a `write` to stderr per line took a fifth of a
/// static request's time under load. Nothing is dropped (a full queue makes the logger wait),
/// and the returned guard flushes what is left when dropped.
fn init_logging(format: LogFormat, default_level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MP3EDGE_LOG").unwrap_or_else(|_| default_level.into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue is allocated whole: the default 128,000 lines took 4 MiB of resident memory.
        .buffered_lines_limit(4096)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(64 << 10, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(ansi).init(),
    }
    guard
}

fn main() {
    // `mp3edge media-sandbox`: the confined process that runs FFmpeg on an upload for the
    // worker (`media::sandbox`). Nothing else of the program starts in it: no runtime, no
    // logging thread, no signal handlers.
    if std::env::args_os().nth(1).is_some_and(|arg| arg == media::sandbox::SUBCOMMAND) {
        std::process::exit(media::sandbox::child::main());
    }
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
        // RUST_BACKTRACE=1 (a developer's shell, CI) made every error value capture a native
        // backtrace, and Wasmtime builds one per request as it drops a finished instance's task
        // state: unwinding took 3% of a static request's CPU. Panics still print their
        // backtrace; RUST_LIB_BACKTRACE=1 brings error backtraces back.
        if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
    let cli = Cli::parse();
    // A one-shot command talks to a person: only warnings, unless asked.
    let quiet = matches!(cli.command, Command::Convert(_) | Command::Users(_) | Command::Precompile(_));
    let log_writer = init_logging(cli.log_format, if quiet { "warn" } else { "info" });
    let code = match run(cli.command) {
        Ok(()) => 0,
        Err(convert::ConvertError::Failed(reason)) => {
            eprintln!("mp3edge: cannot convert: {reason}");
            1
        }
        Err(convert::ConvertError::Usage(e)) => {
            eprintln!("mp3edge: {e:#}");
            2
        }
    };
    drop(log_writer);
    std::process::exit(code);
}

fn run(command: Command) -> Result<(), convert::ConvertError> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    match command {
        Command::Up(args) => rt.block_on(up::run(args))?,
        Command::Worker(args) => rt.block_on(worker::run(args, shutdown_signal_in(&rt)))?,
        Command::Convert(args) => rt.block_on(convert::run(args))?,
        Command::Users(args) => users::run(args)?,
        Command::Precompile(args) => precompile::run(args)?,
    }
    Ok(())
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
