//! Test harness for the end-to-end tests: real processes, started and stopped by the tests.
//!
//! * [`RedisServer`]: a private `redis-server` on a free loopback port (never 6379), in a
//!   temporary directory, killed when dropped.
//! * [`Platform`]: the real `mp3edge up` binary serving the real `.wasm` components of the
//!   project's `spin.toml`, on a free port, with its own data directory and log file.
//!
//! Build first (`make build`); the binary is `target/release/mp3edge` unless `MP3EDGE_BIN` says
//! otherwise.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub const JWT_SECRET: &str = "e2e-test-secret-0123456789abcdef";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A command line of the binary under test, as a user's shell runs it: no colours, and the
/// compiled-module cache `mp3edge convert` would keep in the user's home kept in the clone.
pub fn mp3edge_command() -> Command {
    let mut command = Command::new(mp3edge_bin());
    command.env("NO_COLOR", "1").env("MP3EDGE_MODULE_CACHE", workspace_root().join("target/test-module-cache"));
    command
}

/// The `mp3edge` binary under test.
pub fn mp3edge_bin() -> PathBuf {
    let bin = std::env::var_os("MP3EDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/mp3edge"));
    assert!(bin.is_file(), "{} is missing: run `make build` first", bin.display());
    bin
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts of `mp3edge up` on fresh ports when the one chosen was taken before it bound it.
const START_ATTEMPTS: usize = 3;

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} not ready after {timeout:?}")
}

fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    while started.elapsed() < grace {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A private Redis server for one test.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        for _ in 0..5 {
            let port = free_port();
            assert_ne!(port, 6379, "tests never use the shared default port");
            let mut child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .context("redis-server is not installed (run `make setup`)")?;
            // Ready when the server on the port is this child: a port taken in between by
            // another test's server would answer too, and this child then exits on its bind.
            let up = wait_for("redis", Duration::from_secs(10), || {
                !matches!(child.try_wait(), Ok(None)) || is_redis_server_of(&child, port)
            });
            if up.is_ok() && matches!(child.try_wait(), Ok(None)) {
                return Ok(RedisServer { child, port, _dir: dir });
            }
            let _ = child.kill();
        }
        bail!("could not start redis-server")
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection from the test process: a second process reading what the platform wrote.
    pub async fn connect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }
}

/// Whether the Redis server answering on `port` is the process `child` (its `INFO server`).
fn is_redis_server_of(child: &Child, port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else { return false };
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(1)) else { return false };
    let Ok(info) = redis::cmd("INFO").arg("server").query::<String>(&mut connection) else { return false };
    let ours = format!("process_id:{}", child.id());
    info.lines().any(|line| line.trim() == ours)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real SMTP server (Debian's python3-aiosmtpd) that stores what it receives in a maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start() -> Result<SmtpServer> {
        let maildir = tempfile::tempdir()?;
        let port = free_port();
        let mut child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .spawn()
            .context("python3-aiosmtpd is not installed (run `make setup`)")?;
        wait_for("smtp server", Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(None)) && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(SmtpServer { child, port, maildir })
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("mail/new");
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    /// the test runs ([`TestDns`]). Needs root, as the suite runs; nothing outside the process
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
    runtime_config: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// How it was started, for [`Platform::restart`].
    options: PlatformOptions,
}

/// A running `mp3edge worker`.
pub struct Worker {
    child: Option<Child>,
    pub log_path: PathBuf,
    /// Its `/healthz`, `/readyz` and `/metrics`, when the harness chose the address.
    pub admin_url: Option<String>,
}

impl Worker {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM; the exit status if it stopped within the grace period.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.child.take().and_then(|mut c| terminate(&mut c, grace))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
    }
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

/// A DNS server for one test, on port 53 of a loopback address of its own (127.x.y.z), with
/// a `resolv.conf` naming it for [`PlatformOptions::resolv_conf`]. It answers `A` queries
/// from its table (names as the raw bytes of the query, so a UTF-8 name and its ASCII
/// punycode form are different names, as they are in real DNS), `AAAA` queries with no
/// address, anything else with NXDOMAIN, and records every name it was asked. Port 53 because
/// `resolv.conf` has no port: needs root, as the suite runs.
pub struct TestDns {
    pub addr: std::net::Ipv4Addr,
    asked: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub resolv_conf: tempfile::NamedTempFile,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    pub async fn start(table: Vec<(Vec<u8>, std::net::Ipv4Addr)>) -> Result<TestDns> {
        let mut last_error = None;
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        for attempt in 0..20u32 {
            let bits = (clock ^ std::process::id().rotate_left(12)).wrapping_add(attempt.wrapping_mul(0x9e37_79b9)).to_le_bytes();
            // Away from 127.0.0.x, which the other tests use as client addresses.
            let addr = std::net::Ipv4Addr::new(127, bits[0].max(1), bits[1], bits[2].max(1));
            match tokio::net::UdpSocket::bind((addr, 53)).await {
                Ok(socket) => {
                    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                    let task = tokio::spawn(serve_dns(socket, table, asked.clone()));
                    let mut resolv_conf = tempfile::NamedTempFile::new()?;
                    std::io::Write::write_all(&mut resolv_conf, format!("nameserver {addr}\noptions timeout:2 attempts:2\n").as_bytes())?;
                    return Ok(TestDns { addr, asked, resolv_conf, task });
                }
                Err(e) => last_error = Some(e),
            }
        }
        bail!("no loopback address took a DNS server on port 53 (the suite runs as root): {last_error:?}")
    }

    /// Every name asked so far, as sent (lowercase ASCII stays as it is; other bytes are kept).
    pub fn asked(&self) -> Vec<Vec<u8>> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_dns(socket: tokio::net::UdpSocket, table: Vec<(Vec<u8>, std::net::Ipv4Addr)>, asked: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else { return };
        let Some(reply) = dns_reply(&buf[..len], &table, &asked) else { continue };
        let _ = socket.send_to(&reply, from).await;
    }
}

/// The answer to one DNS query (RFC 1035 §4.1), `None` for what is not a query.
fn dns_reply(query: &[u8], table: &[(Vec<u8>, std::net::Ipv4Addr)], asked: &std::sync::Mutex<Vec<Vec<u8>>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels: Vec<&[u8]> = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(query.get(at..at + len)?);
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name: Vec<u8> = labels.join(&b'.').to_ascii_lowercase();
    asked.lock().unwrap().push(name.clone());
    let address = table.iter().find(|(known, _)| known.to_ascii_lowercase() == name).map(|(_, ip)| *ip);
    let rcode = if address.is_some() { 0 } else { 3 };
    let answer = address.filter(|_| qtype == 1);
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[0..2]);
    reply.extend_from_slice(&[0x80 | (query[2] & 0x01), 0x80 | rcode]);
    reply.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if let Some(ip) = answer {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

/// Starts `mp3edge up` as `options` ask and waits until it serves: (the process, its port, its
/// admin port). Its output goes to the end of `log_path`.
fn launch(options: &PlatformOptions, data_dir: &Path, redis: Option<&RedisServer>, runtime_config: Option<&Path>, log_path: &Path) -> Result<(Child, u16, u16)> {
    // What this start logs: the file may hold an earlier start's lines.
    let since = std::fs::metadata(log_path).map_or(0, |m| m.len() as usize);
    let log = || std::fs::read(log_path).map(|bytes| String::from_utf8_lossy(&bytes[since.min(bytes.len())..]).into_owned()).unwrap_or_default();
    for _ in 0..START_ATTEMPTS {
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
    bail!("mp3edge could not bind a free port in {START_ATTEMPTS} attempts; log:\n{}", log())
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

    /// Starts a separate `mp3edge worker` sharing this platform's Redis and key-value store.
    pub fn start_worker(&self, extra: &[&str]) -> Worker {
        let log_path = self.data_dir.path().join(format!("worker-{}.log", free_port()));
        let log = std::fs::File::create(&log_path).unwrap();
        let admin = (!extra.contains(&"--admin-listen")).then(|| format!("127.0.0.1:{}", free_port()));
        let mut cmd = Command::new(mp3edge_bin());
        cmd.current_dir(workspace_root())
            .arg("worker")
            .arg("--data-dir")
            .arg(self.data_dir.path().join("state"))
            .args(["--redis-host", &self.redis().host()])
            .args(extra)
            .args(admin.iter().flat_map(|address| ["--admin-listen".to_string(), address.clone()]))
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(rc) = &self.runtime_config {
            cmd.arg("--runtime-config-file").arg(rc);
        }
        let child = cmd.spawn().expect("starting mp3edge worker");
        let worker = Worker { child: Some(child), log_path, admin_url: admin.map(|address| format!("http://{address}")) };
        wait_for("worker", Duration::from_secs(60), || worker.log().contains("worker started")).unwrap_or_else(|e| panic!("{e}: {}", worker.log()));
        worker
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

/// Where every platform of the suite leaves the requests it answered (method, path, status),
/// from its request log, for the API description's check that every status the tests saw is
/// documented (`make test` clears it first and checks it last).
pub fn observed_requests_dir() -> PathBuf {
    workspace_root().join("target/observed-requests")
}

fn record_observed_requests(log: &str) {
    let field = |line: &str, name: &str| {
        line.split_whitespace().find_map(|part| part.strip_prefix(name).map(|v| v.trim_matches('"').to_string()))
    };
    let mut lines = String::new();
    for line in log.lines().filter(|l| l.contains(" request ") || l.ends_with(" request")) {
        if let (Some(method), Some(path), Some(status), Some(component)) =
            (field(line, "method="), field(line, "path="), field(line, "status="), field(line, "component="))
            && component != "-"
        {
            lines.push_str(&format!("{method} {path} {status}\n"));
        }
    }
    if lines.is_empty() {
        return;
    }
    let dir = observed_requests_dir();
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{}-{}.txt", std::process::id(), free_port());
    let _ = std::fs::write(dir.join(name), lines);
}

/// Whether a job record is final: `done` or `failed`.
fn is_final(job: &serde_json::Value) -> bool {
    job["status"] == "done" || job["status"] == "failed"
}

/// An HTTP client for one test, with helpers for the platform's auth.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(platform: &Platform) -> Client {
        Client { http: reqwest::Client::new(), base: platform.base_url.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in and returns the token (panics on failure).
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self.http.post(self.url("/login")).basic_auth(email, Some(password)).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "login of {email} failed: {body}");
        body
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user through the admin API and returns their token.
    pub async fn new_user(&self, email: &str) -> String {
        let admin = self.admin_token().await;
        let res = self
            .http
            .post(self.url("/users"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "email": email, "password": "user-password-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating {email}: {}", res.text().await.unwrap());
        self.login(email, "user-password-1").await
    }
}

impl Client {
    /// Uploads a file as a raw body; returns the job id.
    pub async fn upload_file(&self, token: &str, path: &Path, content_type: &str, query: &str) -> String {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = tokio::fs::read(path).await.unwrap();
        let sep = if query.is_empty() { "" } else { "&" };
        let url = self.url(&format!("/upload?filename={name}{sep}{query}"));
        let res = self.http.post(url).bearer_auth(token).header("content-type", content_type).body(body).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 202, "upload of {name} refused: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["job_id"].as_str().unwrap().to_string()
    }

    pub async fn job(&self, token: &str, id: &str) -> serde_json::Value {
        let res = self.http.get(self.url(&format!("/jobs/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls the job until it is `done` or `failed`.
    pub async fn wait_for_job(&self, token: &str, id: &str, timeout: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let job = self.job(token, id).await;
            if is_final(&job) {
                return job;
            }
            assert!(started.elapsed() < timeout, "job {id} still {} after {timeout:?}: {job}", job["status"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows the job the way the status page does, on its event stream (`GET
    /// /jobs/{id}/events`: the edge reads the record four times a second in one instance),
    /// until it is `done` or `failed`; then returns the record. Ten polls a second through
    /// [`Client::wait_for_job`] cost the edge 0.35–0.40 CPU-seconds over an hour's conversion,
    /// time the benchmark would otherwise take from the worker it measures.
    pub async fn follow_job(&self, token: &str, id: &str, timeout: Duration) -> serde_json::Value {
        use futures::StreamExt;
        let started = Instant::now();
        loop {
            let res = self.http.get(self.url(&format!("/jobs/{id}/events"))).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200, "the job's event stream");
            let mut body = res.bytes_stream();
            let mut seen = String::new();
            while let Ok(Some(chunk)) = tokio::time::timeout(timeout.saturating_sub(started.elapsed()), body.next()).await {
                seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if seen.contains("event: done") || seen.contains("event: failed") {
                    return self.job(token, id).await;
                }
                // Only the unfinished line is kept.
                if let Some((_, rest)) = seen.rsplit_once('\n') {
                    seen = rest.to_string();
                }
            }
            // The stream ended (its own time limit) or went quiet: follow it again.
            let job = self.job(token, id).await;
            if is_final(&job) {
                return job;
            }
            assert!(started.elapsed() < timeout, "job {id} still {} after {timeout:?}: {job}", job["status"]);
        }
    }

    /// The first entry of `GET /formats` that `pick` accepts, waiting (up to 20 s) for the worker
    /// to publish what its plugins take; panics with the last list otherwise.
    pub async fn published_format(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let formats: serde_json::Value = self.http.get(self.url("/formats")).send().await.unwrap().json().await.unwrap();
            if let Some(found) = formats.as_array().and_then(|list| list.iter().find(|f| pick(f))) {
                return found.clone();
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{what} never published: {formats}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn download(&self, token: &str, id: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
        let res = self.http.get(self.url(&format!("/jobs/{id}/audio"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let headers = res.headers().clone();
        (headers, res.bytes().await.unwrap().to_vec())
    }
}

/// Reads a JSON error body and checks its shape.
pub async fn error_body(res: reqwest::Response, status: u16) -> serde_json::Value {
    let got = res.status().as_u16();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "unexpected status, body: {text}");
    assert!(content_type.starts_with("application/json"), "error is not JSON ({content_type}): {text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert!(json["error"].is_string() && json["detail"].is_string(), "error body lacks error/detail: {text}");
    json
}
pub mod fixtures;
pub mod audio;
pub mod probe;
pub mod options_suite;
pub mod suite;

/// Waits until `ready` holds, asking every 100 ms; fails the test with `what` after `timeout`.
pub async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut ready: F) {
    let started = std::time::Instant::now();
    while !ready().await {
        assert!(started.elapsed() < timeout, "{what} not true after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a [`serve_http`] route answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with a body of this content type.
    File { content_type: &'static str, body: bytes::Bytes },
    /// 302 to this location.
    Redirect(String),
}

/// A real HTTP server on `127.0.0.1` for a test (a media source, a link to import): each path
/// gets its [`Answer`], any other a 404. It runs until the test's runtime ends.
pub async fn serve_http(routes: std::collections::HashMap<String, Answer>) -> std::net::SocketAddr {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = std::sync::Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let routes = routes.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let answer = routes.get(req.uri().path()).cloned();
                    async move {
                        let response = hyper::Response::builder();
                        let response = match answer {
                            Some(Answer::File { content_type, body }) => response.header("content-type", content_type).body(Full::new(body)),
                            Some(Answer::Redirect(location)) => response.status(302).header("location", location).body(Full::new(bytes::Bytes::new())),
                            None => response.status(404).body(Full::new(bytes::Bytes::new())),
                        };
                        Ok::<_, std::convert::Infallible>(response.expect("a valid response"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}
