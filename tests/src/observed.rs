//! The requests every platform of the suite answered, recorded from its request log when it
//! stops, for the API description's check that every status the tests saw is documented.

use std::path::PathBuf;

use crate::process::{free_port, workspace_root};

/// Where every platform of the suite leaves the requests it answered (method, path, status),
/// from its request log, for the API description's check that every status the tests saw is
/// documented (`make test` clears it first and checks it last).
pub fn observed_requests_dir() -> PathBuf {
    workspace_root().join("target/observed-requests")
}

pub(crate) fn record_observed_requests(log: &str) {
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
