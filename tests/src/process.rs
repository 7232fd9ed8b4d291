//! The binary under test and the plumbing every started process shares: where the workspace and
//! `mp3edge` are, free loopback ports, waiting for a condition, and stopping a child gently
//! (SIGTERM, then SIGKILL). Kept apart so the servers the tests start all wait and stop alike.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

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

/// Waits until `ready` holds, asking every 50 ms (blocking the thread); an error after `timeout`.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} not ready after {timeout:?}")
}

/// Stops `child` with SIGTERM, and SIGKILL once `grace` has passed: its exit status if it
/// stopped in time.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
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

/// Waits until `ready` holds, asking every 100 ms; fails the test with `what` after `timeout`.
pub async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut ready: F) {
    let started = std::time::Instant::now();
    while !ready().await {
        assert!(started.elapsed() < timeout, "{what} not true after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
