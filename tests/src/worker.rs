//! [`Worker`]: a separate `mp3edge worker` process beside a [`Platform`], sharing its Redis and
//! key-value store, as the scaling, crash and restart tests run them (several at once, killed
//! hard, stopped gently).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::Platform;
use crate::process::{free_port, mp3edge_bin, terminate, wait_for, workspace_root};

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

impl Platform {
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
}
