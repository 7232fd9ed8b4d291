//! A private `redis-server` for the embedded runner: started on a free loopback port with its
//! append-only file in the data directory, and shut down (with a final fsync) on exit. Never the
//! machine's shared default port, never a server this process did not start.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivateRedis {
    /// Starts `redis-server` with its data in `dir` and waits until it answers.
    pub async fn start(dir: &Path) -> Result<PrivateRedis> {
        std::fs::create_dir_all(dir)?;
        let binary = which("redis-server").context("redis-server is not installed (run `make setup`)")?;
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = Command::new(&binary)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--protected-mode", "yes", "--appendonly", "yes", "--save", ""])
                .args(["--daemonize", "no", "--loglevel", "warning"])
                .arg("--dir")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting redis-server")?;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Some(status) = child.try_wait()? {
                    tracing::warn!(%status, port, "redis-server exited at start; trying another port");
                    break;
                }
                if ping(port).await {
                    tracing::info!(port, dir = %dir.display(), "started private redis-server");
                    return Ok(PrivateRedis { child: Some(child), port });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill().await;
        }
        bail!("could not start redis-server")
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Asks the server to persist and exit, then waits for it.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let _: Result<(), _> = redis::cmd("SHUTDOWN").query_async(&mut conn).await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

async fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else { return false };
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
