//! The edge under load, against references measured in the same run (never a fixed number):
//! requests per second and 99th-percentile latency (`wrk -c8 --latency`) for a static asset,
//! `POST /validate`, `GET /jobs`, `GET /jobs/{id}` and a ranged download, first idle, then while
//! a 60-minute video converts on the same machine. The static asset is also compared with a
//! native hyper server on loopback serving the same bytes in this process (what the machine's
//! loopback and `wrk` allow today), so a slow or busy machine shows as itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_tests::*;

/// One `wrk` measurement.
#[derive(Clone, Copy)]
struct Load {
    rate: f64,
    p99_ms: f64,
}

/// A duration as `wrk` prints it (`812.00us`, `1.20ms`, `2.01s`), in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `wrk -t2 -c8 -d{secs}s --latency` on `url` with an optional Lua script.
fn wrk(url: &str, script: Option<&Path>, secs: u32) -> Option<Load> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c8", &format!("-d{secs}s"), "--latency"]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors from {url}:\n{text}");
    let rate = text.lines().find(|l| l.starts_with("Requests/sec:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let p99_ms = text.lines().map(str::trim).find(|l| l.starts_with("99%"))?.split_whitespace().nth(1).and_then(millis)?;
    Some(Load { rate, p99_ms })
}

/// The median rate and the median p99 of `runs` measurements.
fn wrk_median(url: &str, script: Option<&Path>, secs: u32, runs: usize) -> Option<Load> {
    let loads: Vec<Load> = (0..runs).filter_map(|_| wrk(url, script, secs)).collect();
    (!loads.is_empty()).then(|| Load {
        rate: super::median(loads.iter().map(|l| l.rate).collect()),
        p99_ms: super::median(loads.iter().map(|l| l.p99_ms).collect()),
    })
}

/// A Lua script for `wrk` that sends `method` with `headers`.
fn script(name: &str, method: &str, headers: &[(&str, &str)]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mp3edge-bench-{name}-{}.lua", std::process::id()));
    let mut lua = format!("wrk.method = \"{method}\"\n");
    for (header, value) in headers {
        lua.push_str(&format!("wrk.headers[\"{header}\"] = \"{value}\"\n"));
    }
    std::fs::write(&path, lua).unwrap();
    path
}

pub async fn run(long_input: &Path, runs: usize) {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("edge: skipped, `wrk` is not installed (`make setup` installs it)");
        return;
    }
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("bench-edge@example.com").await;
    let (_, fixture) = fixtures::good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let done = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &done, Duration::from_secs(120)).await["status"], "done");
    let index = c.http.get(c.url("/")).send().await.unwrap().bytes().await.unwrap();
    let native = serve_http([("/".to_string(), Answer::File { content_type: "text/html", body: index })].into_iter().collect()).await;

    let bearer = format!("Bearer {token}");
    let scripts = [
        script("get", "GET", &[("authorization", &bearer)]),
        script("validate", "POST", &[("authorization", &bearer)]),
        script("range", "GET", &[("authorization", &bearer), ("range", "bytes=0-65535")]),
    ];
    let endpoints: Vec<(&str, String, Option<&Path>)> = vec![
        ("GET / (static)", c.url("/"), None),
        ("POST /validate", c.url("/validate"), Some(&scripts[1])),
        ("GET /jobs", c.url("/jobs"), Some(&scripts[0])),
        ("GET /jobs/{id}", c.url(&format!("/jobs/{done}")), Some(&scripts[0])),
        ("GET /jobs/{id}/audio 64 KiB", c.url(&format!("/jobs/{done}/audio")), Some(&scripts[2])),
    ];
    let reference = wrk_median(&format!("http://{native}/"), None, 5, runs);
    let idle: Vec<Option<Load>> = endpoints.iter().map(|(_, url, script)| wrk_median(url, *script, 5, runs)).collect();

    // The same requests while a 60-minute video converts (3 s each, so all of them fall
    // within its conversion; checked after).
    let converting = c.upload_file(&token, long_input, "video/mp4", "format=mp3").await;
    let started = std::time::Instant::now();
    while c.job(&token, &converting).await["status"] != "converting" {
        assert!(started.elapsed() < Duration::from_secs(60), "the 60-minute job never started converting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy: Vec<Option<Load>> = endpoints.iter().map(|(_, url, script)| wrk(url, *script, 3)).collect();
    let still = c.job(&token, &converting).await;
    let throughout = still["status"] == "converting";
    c.http.delete(c.url(&format!("/jobs/{converting}"))).bearer_auth(&token).send().await.unwrap();
    for script in &scripts {
        let _ = std::fs::remove_file(script);
    }

    let show = |l: Option<Load>| l.map_or(("-".to_string(), "-".to_string()), |l| (format!("{:.0}/s", l.rate), format!("{:.2} ms", l.p99_ms)));
    let (reference_rate, reference_p99) = show(reference);
    println!("edge, 8 connections (wrk), medians of {runs}: reference, a native hyper server on loopback serving the same page in this run: {reference_rate}, p99 {reference_p99}");
    println!("{:<28} {:>10} {:>10} {:>12} {:>12} {:>10}", "request", "idle", "/native", "p99 idle", "p99 busy", "busy/idle");
    for (((name, _, _), idle), busy) in endpoints.iter().zip(&idle).zip(&busy) {
        let (rate, p99) = show(*idle);
        let versus = match (idle, reference) {
            (Some(i), Some(r)) if name.starts_with("GET / ") => format!("{:.2}", i.rate / r.rate),
            _ => "".to_string(),
        };
        let (_, busy_p99) = show(*busy);
        let slower = match (idle, busy) {
            (Some(i), Some(b)) => format!("{:.1}", b.p99_ms / i.p99_ms),
            _ => "-".to_string(),
        };
        println!("{name:<28} {rate:>10} {versus:>10} {p99:>12} {busy_p99:>12} {slower:>10}");
    }
    println!(
        "        (busy: while a 60-minute video converts on the same 2 cores{}; goal: the edge does not starve behind the encoder, busy/idle p99 small)",
        if throughout { ", converting throughout" } else { "; it ENDED before the last measurement" }
    );
}
