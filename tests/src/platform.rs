//! [`Platform`]: the real `mp3edge up` serving the real `.wasm` components of the project's
//! `spin.toml`, on free ports, with its own data directory, log file and (unless asked
//! otherwise) its own [`RedisServer`]; started as [`PlatformOptions`] say, restartable on the
//! same state. Starting is the delicate part (a free port can be taken before the child binds
//! it), so it lives here in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::observed::record_observed_requests;
use crate::process::{free_port, mp3edge_bin, terminate, wait_for, workspace_root};
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, RedisServer};

/// Starts of `mp3edge up` on fresh ports when the one chosen was taken before it bound it.
const START_ATTEMPTS: usize = 3;

/// How to start the platform.
#[derive(Default)]
pub struct PlatformOptions {
    /// Extra `SPIN_VARIABLE_*` values (by variable name).
    pub variables: BTreeMap<String, String>,
    /// Put the key-value store on this Redis (through a runtime-config file).
    pub key_value_on_redis: bool,
    /// Let the host start its own private Redis (no `redis_host` given).
    pub private_redis: bool,
    /// Extra arguments to `mp3edge up`.
    pub args: Vec<String>,
    /// Extra environment variables for `mp3edge up` and the workers started beside it.
    pub env: Vec<(String, String)>,
    /// Run no worker inside `mp3edge up` (tests start `mp3edge worker` processes instead).
    pub no_worker: bool,
    /// Give no JWT secret or admin credentials, so the host's embedded defaults apply.
    pub embedded_defaults: bool,
    /// The directory `mp3edge up` runs in (default: the workspace root).
    pub cwd: Option<PathBuf>,
    /// Run `up` in a mount namespace of its own in which `/etc/resolv.conf` is this file, so its
    /// name lookups (the worker's webhook targets) go to the DNS server the file names, e.g. one
    /// the test runs ([`crate::TestDns`]). Needs root, as the suite runs; nothing outside the process
    /// sees the change.
    pub resolv_conf: Option<PathBuf>,
}

/// A running `mp3edge up`.
pub struct Platform {
    child: Option<Child>,
    pub base_url: String,
    /// `/healthz`, `/readyz` and `/metrics` (`--admin-listen`).
    pub admin_url: String,
    pub data_dir: tempfile::TempDir,
    pub log_path: PathBuf,
    /// The test's own Redis (absent in private-Redis mode).
    pub redis: Option<RedisServer>,
    pub(crate) runtime_config: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    /// How it was started, for [`Platform::restart`].
    options: PlatformOptions,
}

/// Spawns `mp3edge up` on `port` as `options` ask, its output into `log_path`, its state in
/// `data_dir`, its jobs on `redis`, with `runtime_config` when given (the key-value store on
/// that Redis).
#[allow(clippy::too_many_arguments)]
fn spawn_up(
    options: &PlatformOptions,
    data_dir: &Path,
    redis: Option<&RedisServer>,
    runtime_config: Option<&Path>,
    port: u16,
    admin_port: u16,
    log_path: &Path,
) -> Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path)?;
    let mut cmd = Command::new(mp3edge_bin());
    cmd.current_dir(options.cwd.clone().unwrap_or_else(workspace_root))
        .arg("up")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .arg("--data-dir")
        .arg(data_dir.join("state"))
        .args(&options.args)
        .args(if options.no_worker { &["--no-worker"][..] } else { &[][..] })
        .env("MP3EDGE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(log.try_clone()?)
        .stderr(log);
    if !options.embedded_defaults {
        cmd.env("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET)
            .env("SPIN_VARIABLE_ADMIN_EMAIL", ADMIN_EMAIL).env("SPIN_VARIABLE_ADMIN_PASSWORD", ADMIN_PASSWORD);
    }
    cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
    for (name, value) in &options.variables {
        cmd.env(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()), value);
    }
    if let Some(rc) = runtime_config {
        cmd.arg("--runtime-config-file").arg(rc);
    }
    if let Some(redis) = redis {
        cmd.env("SPIN_VARIABLE_REDIS_HOST", redis.host());
    } else {
        cmd.env_remove("SPIN_VARIABLE_REDIS_HOST");
    }
    if let Some(resolv_conf) = &options.resolv_conf {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::process::CommandExt;
        let source = std::ffi::CString::new(resolv_conf.as_os_str().as_bytes())?;
        // SAFETY: between fork and exec only system calls run, on memory allocated before.
        unsafe { cmd.pre_exec(move || with_resolv_conf(&source)) };
    }
    cmd.spawn().context("starting mp3edge")
}

/// In the child about to become `mp3edge up`: a mount namespace of its own (mounts private, so
/// nothing propagates back) in which `source` is bound over `/etc/resolv.conf`.
fn with_resolv_conf(source: &std::ffi::CStr) -> std::io::Result<()> {
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
    // SAFETY: plain system calls with NUL-terminated strings that outlive them.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()))?;
        check(libc::mount(source.as_ptr(), c"/etc/resolv.conf".as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()))
    }
}

/// Starts `mp3edge up` as `options` ask and waits until it serves: (the process, its port, its
/// admin port). Its output goes to the end of `log_path`.
fn launch(options: &PlatformOptions, data_dir: &Path, redis: Option<&RedisServer>, runtime_config: Option<&Path>, log_path: &Path) -> Result<(Child, u16, u16)> {
    let log_since = |since: usize| std::fs::read(log_path).map(|bytes| String::from_utf8_lossy(&bytes[since.min(bytes.len())..]).into_owned()).unwrap_or_default();
    for _ in 0..START_ATTEMPTS {
        // What this attempt logs: the file may hold an earlier start's or attempt's lines (an
        // earlier attempt's "admin endpoints not served" must not fail this one).
        let since = std::fs::metadata(log_path).map_or(0, |m| m.len() as usize);
        let log = || log_since(since);
        let (port, admin_port) = (free_port(), free_port());
        let mut child = spawn_up(options, data_dir, redis, runtime_config, port, admin_port, log_path)?;
        // Ready when this child says it serves its port. A port that was free a moment ago can
        // be taken by another test's server in between; answering connections alone would
        // then be that server's, and this child would exit on its failed bind.
        let serving = format!("serving on http://127.0.0.1:{port}");
        let mut exited = false;
        let ready = wait_for("mp3edge", Duration::from_secs(60), || {
            exited = !matches!(child.try_wait(), Ok(None));
            exited || (log().contains(&serving) && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        });
        if exited && log().contains(&format!("binding 127.0.0.1:{port}")) {
            continue;
        }
        if let Err(e) = ready {
            let _ = child.kill();
            bail!("{e}; log:\n{}", log());
        }
        if exited {
            bail!("mp3edge exited at start; log:\n{}", log());
        }
        // Likewise its admin port: `up` serves on without its admin endpoints when that bind
        // fails, and `admin_url` would then reach whichever server took the port. Either
        // outcome is logged ("admin endpoints (…)" or "… not served"), through the log
        // writer's thread, so possibly just after "serving" (a test that logs only warnings
        // sees the second alone: the wait then ends at its timeout).
        let _ = wait_for("mp3edge's admin endpoints", Duration::from_secs(5), || log().contains("admin endpoints"));
        if log().contains("admin endpoints not served") {
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        return Ok((child, port, admin_port));
    }
    bail!("mp3edge could not bind a free port in {START_ATTEMPTS} attempts; log:\n{}", log_since(0))
}

impl Platform {
    pub fn start() -> Platform {
        Platform::start_with(PlatformOptions::default()).expect("platform starts")
    }

    pub fn start_with(options: PlatformOptions) -> Result<Platform> {
        let data_dir = tempfile::tempdir()?;
        let redis = if options.private_redis { None } else { Some(RedisServer::start()?) };
        let runtime_config = data_dir.path().join("runtime-config.toml");
        let key_value_on_redis = options.key_value_on_redis && redis.is_some();
        if let (Some(redis), true) = (&redis, key_value_on_redis) {
            std::fs::write(&runtime_config, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url()))?;
        }
        let log_path = data_dir.path().join("mp3edge.log");
        let runtime_config = key_value_on_redis.then_some(runtime_config);
        let (child, port, admin_port) = launch(&options, data_dir.path(), redis.as_ref(), runtime_config.as_deref(), &log_path)?;
        Ok(Platform {
            child: Some(child),
            base_url: format!("http://127.0.0.1:{port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            runtime_config,
            data_dir,
            log_path,
            redis,
            env: options.env.clone(),
            options,
        })
    }

    /// Starts `mp3edge up` again on the same state (data directory, Redis, key-value store)
    /// after [`Platform::stop`] or [`Platform::kill_hard`], on new ports: `base_url` and
    /// `admin_url` change. Its log goes on in the same file.
    pub fn restart(&mut self) -> Result<()> {
        assert!(self.child.is_none(), "stop the platform first");
        let (child, port, admin_port) =
            launch(&self.options, self.data_dir.path(), self.redis.as_ref(), self.runtime_config.as_deref(), &self.log_path)?;
        self.child = Some(child);
        self.base_url = format!("http://127.0.0.1:{port}");
        self.admin_url = format!("http://127.0.0.1:{admin_port}");
        Ok(())
    }

    /// Runs `mp3edge users ARGS` on this platform's state, as an operator beside the running
    /// server would, with `stdin` as its input (a password); its output.
    pub fn users_command(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = crate::mp3edge_command()
            .arg("users")
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path().join("state"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mp3edge users runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log once `ready` holds for it, waiting up to ten seconds (then as it is): a
    /// request's line is written by the logger's own thread, after the response went out.
    pub async fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if ready(&log) || started.elapsed() > Duration::from_secs(10) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the log has a line with `text`, waiting for it as [`Platform::log_when`] does.
    pub async fn log_has(&self, text: &str) -> bool {
        self.log_when(|log| log.contains(text)).await.contains(text)
    }

    pub fn redis(&self) -> &RedisServer {
        self.redis.as_ref().expect("this platform uses the test's Redis")
    }

    /// Sends SIGTERM and returns the exit status (None if it had to be killed).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.child.take().and_then(|mut c| terminate(&mut c, Duration::from_secs(20)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
        record_observed_requests(&self.log());
    }
}
