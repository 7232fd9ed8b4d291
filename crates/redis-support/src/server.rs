//! A private `redis-server` for the embedded runner: started on a free loopback port with its
//! append-only file in the data directory and a generated password, and shut down (with a final
//! fsync) on exit. Never the machine's shared default port, never a server this process did
//! not start.
//!
//! It cannot outlive its host: it gets `SIGTERM` when the host dies, even by `kill -9`
//! (`PR_SET_PDEATHSIG`), and an instance left over from an earlier host (found through the pid
//! file in the data directory) is stopped before a new one opens the same files. If it dies
//! while the host runs, [`PrivateRedis::supervise`] starts it again on the same port; until
//! then the edge answers `503`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub struct PrivateRedis {
    child: Arc<Mutex<Option<Child>>>,
    port: u16,
    password: String,
    dir: PathBuf,
    binary: PathBuf,
}

const PID_FILE: &str = "redis-server.pid";

/// Stops a `redis-server` an earlier host left running on this directory's files.
fn stop_stale_instance(dir: &Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join(PID_FILE)) else { return };
    let Ok(pid) = pid.trim().parse::<i32>() else { return };
    let is_redis = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("redis-server"));
    // Redis works in its `--dir`: a reused pid of another Redis is left alone.
    let ours = std::fs::read_link(format!("/proc/{pid}/cwd")).ok().zip(dir.canonicalize().ok()).is_some_and(|(cwd, dir)| cwd == dir);
    if !is_redis || !ours {
        return;
    }
    tracing::warn!(pid, "stopping a redis-server left running by an earlier mp3edge");
    // SAFETY: signalling a process id; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let started = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `redis-server` on `port` and waits until it answers; `None` if it exited.
async fn launch(binary: &Path, dir: &Path, port: u16, password: &str) -> Result<Option<Child>> {
    let mut command = Command::new(binary);
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--protected-mode", "yes", "--appendonly", "yes", "--save", ""])
        .args(["--daemonize", "no", "--loglevel", "warning", "--requirepass", password])
        .arg("--dir")
        .arg(dir)
        .arg("--pidfile")
        .arg(dir.join(PID_FILE))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().context("starting redis-server")?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait()? {
            tracing::warn!(%status, port, "redis-server exited at start");
            return Ok(None);
        }
        if ping(port, password).await {
            return Ok(Some(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill().await;
    Ok(None)
}

impl PrivateRedis {
    /// Starts `redis-server` with its data in `dir` and waits until it answers.
    pub async fn start(dir: &Path, password: &str) -> Result<PrivateRedis> {
        std::fs::create_dir_all(dir)?;
        stop_stale_instance(dir);
        let binary = which("redis-server").context("redis-server is not installed (run `make setup`)")?;
        for _ in 0..5 {
            let port = free_port()?;
            if let Some(child) = launch(&binary, dir, port, password).await? {
                tracing::info!(port, dir = %dir.display(), "started private redis-server");
                return Ok(PrivateRedis {
                    child: Arc::new(Mutex::new(Some(child))),
                    port,
                    password: password.to_string(),
                    dir: dir.to_path_buf(),
                    binary,
                });
            }
        }
        bail!("could not start redis-server")
    }

    /// `host:port` for the `redis_host` variable, with the password as URL userinfo
    /// (`redis://{redis_host}` is then a complete address).
    pub fn host(&self) -> String {
        format!(":{}@127.0.0.1:{}", self.password, self.port)
    }

    /// Starts the server again whenever it exits, until `shutdown`.
    pub fn supervise(&self, shutdown: CancellationToken) {
        let (child, dir, binary, port, password) =
            (self.child.clone(), self.dir.clone(), self.binary.clone(), self.port, self.password.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = shutdown.cancelled() => return,
                }
                let mut guard = child.lock().await;
                let exited = match guard.as_mut() {
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                    None => return,
                };
                if !exited {
                    continue;
                }
                tracing::warn!(port, "the private redis-server stopped; starting it again");
                match launch(&binary, &dir, port, &password).await {
                    Ok(Some(c)) => {
                        *guard = Some(c);
                        tracing::info!(port, "private redis-server is back");
                    }
                    Ok(None) => tracing::warn!(port, "could not restart redis-server yet; trying again"),
                    Err(e) => tracing::warn!(port, error = %format!("{e:#}"), "could not restart redis-server"),
                }
            }
        });
    }

    /// Asks the server to persist and exit, then waits for it.
    pub async fn stop(self) {
        let Some(mut child) = self.child.lock().await.take() else { return };
        if let Ok(client) = redis::Client::open(format!("redis://:{}@127.0.0.1:{}", self.password, self.port))
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let _: Result<(), _> = redis::cmd("SHUTDOWN").query_async(&mut conn).await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

async fn ping(port: u16, password: &str) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://:{password}@127.0.0.1:{port}")) else { return false };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
}

/// Finds an executable on `PATH` (and the usual sbin directories, where Debian may put it).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(Into::into))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_left_by_an_earlier_host_is_stopped() {
        let dir = std::env::temp_dir().join(format!("stale-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port().unwrap();
        let mut orphan = std::process::Command::new(which("redis-server").expect("redis-server installed"))
            .args(["--port", &port.to_string(), "--save", "", "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .arg("--pidfile")
            .arg(dir.join(PID_FILE))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !dir.join(PID_FILE).exists() {
            assert!(started.elapsed() < Duration::from_secs(10), "no pid file");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop_stale_instance(&dir);
        let status = orphan.wait().unwrap();
        // It ended on the SIGTERM it was sent, shutting down as Redis does (exit status 0);
        // a SIGKILL (status without a code) would mean it ignored the SIGTERM.
        assert_eq!(status.code(), Some(0), "stopped: {status:?}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
