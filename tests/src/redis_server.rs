//! [`RedisServer`]: a private `redis-server` for one test, on a free loopback port (never the
//! shared 6379), in a temporary directory, killed when dropped. Its own module because both the
//! platform and tests that read what the platform wrote (a second client) use it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{free_port, wait_for};

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
