//! Spin's own conformance suite against `mp3edge up --no-worker`, through the suite's runner
//! (`../shared/spin-conformance/run.py`, or `SPIN_CONFORMANCE_DIR`): every test listed in
//! [`SUPPORTED`] must pass (or be skipped by the runner for want of a service such as
//! `mosquitto`), and the others are reported. The suite and its built guest components are not
//! part of this repository: without them (no suite directory, or `build.sh` not run) the test
//! says so and passes, so that a fresh clone's `make test` does not depend on them.

use std::path::PathBuf;
use std::process::Command;

use e2e_tests::{mp3edge_bin, workspace_root};

/// The conformance tests the host passes; a regression in any of them fails this test.
const SUPPORTED: &[&str] = &[
    "key-value",
    "key-value-no-permission",
    "outbound-redis",
    "outbound-redis-no-permission",
    "outbound-redis-variable-permission",
    "outbound-wasi-http-v0.2.0",
    "outbound-wasi-http-v0.2.0-no-perms",
    "request-shape",
    "sqlite",
    "sqlite-no-permission",
    "tcp-sockets-no-ip-permission",
    "tcp-sockets-no-port-permission",
    "variables",
];

fn suite_dir() -> PathBuf {
    std::env::var_os("SPIN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/spin-conformance"))
}

fn build_dir() -> PathBuf {
    std::env::var_os("CONFORMANCE_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("spin-conformance-build"))
}

#[test]
fn spin_conformance_suite() {
    let suite = suite_dir();
    let runner = suite.join("run.py");
    if !runner.is_file() {
        eprintln!("SKIPPED: no Spin conformance suite at {} (set SPIN_CONFORMANCE_DIR)", suite.display());
        return;
    }
    if !build_dir().join("target/wasm32-wasip2/release").is_dir() {
        eprintln!(
            "SKIPPED: the conformance components are not built under {}: run {}",
            build_dir().display(),
            suite.join("build.sh").display()
        );
        return;
    }
    let output = Command::new("python3")
        .arg(&runner)
        .env("MP3EDGE", mp3edge_bin())
        .current_dir(workspace_root())
        .output()
        .expect("python3 runs the conformance runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let verdict = |test: &str| {
        stdout.lines().find_map(|line| {
            let (verdict, rest) = line.split_once(char::is_whitespace)?;
            let name = rest.trim_start().split([':', ' ']).next()?;
            (name == test).then(|| verdict.to_string())
        })
    };
    let regressions: Vec<String> = SUPPORTED
        .iter()
        .filter_map(|test| match verdict(test).as_deref() {
            Some("PASS") | Some("SKIP") => None,
            other => Some(format!("{test}: {}", other.unwrap_or("not run"))),
        })
        .collect();
    assert!(regressions.is_empty(), "conformance tests the host passed before now fail: {regressions:?}");
}
