//! [`SmtpServer`]: a real SMTP server (Debian's `python3-aiosmtpd`) for the tests of the mail the
//! platform sends, storing what it receives in a maildir the test reads back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{free_port, wait_for};

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
