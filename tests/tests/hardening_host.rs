//! One user must not exhaust what everyone shares, through the real host: a flooded route gets
//! `503` + `Retry-After` while other routes and conversions go on, password checks run a bounded
//! number at once (memory stays flat), a silent upload body and one that trickles below the rate
//! floor end with `408` and leave nothing, a component that works past its budget gets `503
//! deadline exceeded` while cheap requests go on, an upload past the absolute bound is stopped
//! and swept, conversions run under the job deadline rather than the HTTP one, and the job
//! stream and the worker group stay tidy. (Transfers that keep their pace: `transfers.rs`.)

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e_tests::fixtures::{good_inputs, long_video};
use e2e_tests::*;
use job_model::layout;
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// An upload that announces `total` bytes, sends a little and then nothing.
async fn stalled_upload(p: &Platform, token: &str, total: usize) -> tokio::net::TcpStream {
    let addr = p.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /upload?filename=a.mp4 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: video/mp4\r\ncontent-length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7u8; 4096]).await.unwrap();
    stream
}

/// The status line's code of what the server answers on `stream` (within `timeout`).
async fn answer(stream: &mut tokio::net::TcpStream, timeout: Duration) -> Option<(u16, String)> {
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(timeout, stream.read(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text))
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0)
        * 1024
}

#[tokio::test]
async fn a_flooded_route_answers_503_while_other_routes_and_conversions_go_on() {
    let options = PlatformOptions {
        key_value_on_redis: true,
        args: args(&["--max-concurrent-requests", "3", "--request-queue", "2", "--request-queue-timeout-secs", "1", "--body-idle-timeout-secs", "6"]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let flooder = c.new_user("flood@example.com").await;
    let patient = c.new_user("patient@example.com").await;
    let long = long_video("crash-10min.mp4", 600, "160x120");
    let job = c.upload_file(&patient, &long, "video/mp4", "format=mp3").await;

    // Eight stalled uploads: three hold the gateway's places, two wait, the rest are refused.
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(stalled_upload(&p, &flooder, 50 << 20).await);
    }
    let answers = futures::future::join_all(streams.iter_mut().map(|s| answer(s, Duration::from_millis(2500)))).await;
    let mut refused = 0;
    for (code, text) in answers.into_iter().flatten() {
        assert_eq!(code, 503, "{text}");
        assert!(text.to_ascii_lowercase().contains("retry-after: 2"), "{text}");
        assert!(text.contains("\"error\":\"busy\""), "{text}");
        refused += 1;
    }
    assert_eq!(refused, 5, "three places, the two that queued waited out their second");
    // Other components, and the worker, are not affected.
    assert_eq!(c.http.get(c.url("/")).send().await.unwrap().status(), 200);
    c.login("patient@example.com", "user-password-1").await;
    // The conversion finishes while the gateway is still full (read from the store directly).
    let mut conn = p.redis().connect().await;
    let started = Instant::now();
    loop {
        let record: Vec<u8> = conn.get(layout::job_key(&job)).await.unwrap();
        let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
        if record["status"] == "done" {
            break;
        }
        assert_ne!(record["status"], "failed", "{record}");
        assert!(started.elapsed() < JOB_TIMEOUT, "{record}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The three that held places are released by the body idle timeout.
    let released = futures::future::join_all(streams.iter_mut().map(|s| answer(s, Duration::from_secs(10)))).await;
    let codes: Vec<u16> = released.into_iter().flatten().map(|(code, _)| code).collect();
    assert_eq!(codes, [408, 408, 408]);
    assert!(!p.log().contains("status=500"), "no 500 under load");
}

#[tokio::test]
async fn a_silent_upload_body_gets_408_and_leaves_nothing() {
    let options = PlatformOptions { key_value_on_redis: true, no_worker: true, args: args(&["--body-idle-timeout-secs", "2"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("silent@example.com").await;
    let mut stream = stalled_upload(&p, &token, 3 << 20).await;
    let started = Instant::now();
    let (code, text) = answer(&mut stream, Duration::from_secs(10)).await.expect("an answer");
    assert_eq!(code, 408, "{text}");
    assert!(started.elapsed() < Duration::from_secs(6));
    let mut conn = p.redis().connect().await;
    let keys: Vec<String> = conn.keys("job:*").await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn fifty_parallel_logins_keep_the_hosts_memory_bounded() {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    c.admin_token().await; // warm: one hash has run
    let pid = p.pid().unwrap();
    let before = rss_bytes(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Fifty clients (one loopback address each, so no throttle applies), unknown accounts.
    let logins = (0..50).map(|n| {
        let source: IpAddr = format!("127.0.1.{}", n + 2).parse().unwrap();
        let http = reqwest::Client::builder().local_address(source).build().unwrap();
        let url = c.url("/login");
        async move { http.post(url).basic_auth(format!("nobody{n}@example.com"), Some("wrong-password-1")).send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(logins).await;
    sampler.abort();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let grown = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
    println!("RSS {} MiB before, grew by {} MiB at the peak", before >> 20, grown >> 20);
    assert!(grown < 160 << 20, "the host grew by {} MiB for 50 logins", grown >> 20);
}

#[tokio::test]
async fn conversions_run_under_the_job_deadline_not_the_request_deadline() {
    let options = PlatformOptions { key_value_on_redis: true, args: args(&["--request-timeout-secs", "2"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("slow@example.com").await;
    let long = long_video("crash-10min.mp4", 600, "160x120");
    let started = Instant::now();
    let id = c.upload_file(&token, &long, "video/mp4", "format=mp3").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(started.elapsed() > Duration::from_secs(2), "the conversion outlasted the request deadline");
}

#[tokio::test]
async fn options_a_plugin_does_not_take_are_refused_at_upload() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("options@example.com").await;
    // Wait until the worker has published what its plugins take.
    c.published_format("formats", |f| f["bitrates"].is_array()).await;
    let upload = |query: &'static str| {
        let url = c.url(&format!("/upload?filename=a.mp4&{query}"));
        c.http.post(url).bearer_auth(&token).header("content-type", "video/mp4").body(vec![1u8; 100]).send()
    };
    for query in ["format=mp3&bitrate=8", "format=mp3&bitrate=100", "format=wav&bitrate=128", "format=wav&vbr=2"] {
        let body = error_body(upload(query).await.unwrap(), 400).await;
        assert_eq!(body["error"], "unsupported option", "{query}: {body}");
    }
    assert!(error_body(upload("format=mp3&bitrate=8").await.unwrap(), 400).await["detail"].as_str().unwrap().contains("320"));
    assert_eq!(upload("format=MP3&bitrate=128").await.unwrap().status(), 202);
}

#[tokio::test]
async fn the_job_stream_is_trimmed_and_workers_that_are_gone_leave_the_group() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("tidy@example.com").await;
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let mut first = p.start_worker(&[]);
    for _ in 0..3 {
        let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=wav").await;
        assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    }
    first.stop(Duration::from_secs(20));
    let mut conn = p.redis().connect().await;
    let length: u64 = conn.xlen(layout::JOB_STREAM).await.unwrap();
    assert_eq!(length, 3, "entries stay until trimmed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _second = p.start_worker(&["--stream-trim-secs", "1", "--idle-consumer-secs", "1"]);
    let started = Instant::now();
    loop {
        let length: u64 = conn.xlen(layout::JOB_STREAM).await.unwrap();
        let consumers: redis::streams::StreamInfoConsumersReply =
            conn.xinfo_consumers(layout::JOB_STREAM, layout::WORKER_GROUP).await.unwrap();
        if length == 0 && consumers.consumers.len() <= 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "stream {length} long, {} consumers", consumers.consumers.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_trickling_upload_below_the_rate_floor_gets_408_and_leaves_nothing() {
    // A floor of 16 KiB/s over windows of 3 s of waiting; the idle time far away.
    let options = PlatformOptions {
        key_value_on_redis: true,
        no_worker: true,
        args: args(&["--body-idle-timeout-secs", "30", "--transfer-min-bytes-per-sec", "16384", "--transfer-rate-window-secs", "3"]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("trickle@example.com").await;
    let mut stream = stalled_upload(&p, &token, 10 << 20).await;
    // Two chunks' worth at once, then 1 KiB every 250 ms (4 KiB/s): never idle, far below the floor.
    stream.write_all(&vec![7u8; 2 << 20]).await.unwrap();
    let started = Instant::now();
    let answered = loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
            Ok(Ok(n)) => break String::from_utf8_lossy(&buf[..n]).into_owned(),
            Ok(Err(e)) => panic!("no answer: {e}"),
            Err(_) => stream.write_all(&[7u8; 1024]).await.unwrap(),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the trickle was never ended");
    };
    let took = started.elapsed();
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains(r#""error":"request timeout""#), "{answered}");
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(10), "ended after {took:?}, not at a window's end");
    let log = p.log_when(|log| log.contains("request body ended")).await;
    assert!(log.contains("below the floor of 49152"), "{log}");
    let mut conn = p.redis().connect().await;
    let started = Instant::now();
    loop {
        let keys: Vec<String> = conn.keys("job:*").await.unwrap();
        if keys.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "left behind: {keys:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_upload_past_the_absolute_bound_is_stopped_and_the_sweeper_removes_its_chunks() {
    let options = PlatformOptions {
        key_value_on_redis: true,
        args: args(&["--request-max-secs", "3"]),
        variables: [("upload_stale_secs".to_string(), "2".to_string())].into(),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bound@example.com").await;
    let mut stream = stalled_upload(&p, &token, 10 << 20).await;
    let started = Instant::now();
    // Two chunks' worth, 64 KiB every 100 ms for two seconds, then a pause well within the idle
    // time: an upload that keeps every pace rule, stopped by the bound alone.
    stream.write_all(&vec![7u8; 2 << 20]).await.unwrap();
    while started.elapsed() < Duration::from_secs(2) {
        stream.write_all(&[7u8; 64 << 10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, text) = answer(&mut stream, Duration::from_secs(10)).await.expect("an answer");
    let took = started.elapsed();
    assert_eq!(code, 503, "{text}");
    assert!(text.contains(r#""error":"deadline exceeded""#) && text.contains("longer than the server allows (3 s)"), "{text}");
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_secs(6), "stopped after {took:?}");
    assert!(p.log_has("component stopped").await);
    assert!(p.log().contains("deadline of 3 s in all exceeded"), "{}", p.log());
    // The component was stopped mid-upload, so its chunks stay until the sweeper takes them.
    drop(stream);
    let mut conn = p.redis().connect().await;
    let started = Instant::now();
    loop {
        let keys: Vec<String> = conn.keys("job:*").await.unwrap();
        if keys.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "left behind: {keys:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(p.log_has("abandoned upload removed").await);
}

#[tokio::test]
async fn a_component_that_works_past_the_request_timeout_gets_503_deadline_exceeded() {
    // A log-in hashes its password with argon2id (19 MiB, two passes): about 35 ms of a core's
    // work. A budget of 10 ms stops it; requests that do little go on under the same budget.
    let options = PlatformOptions { no_worker: true, args: args(&["--request-timeout-secs", "0.01"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    for _ in 0..3 {
        let res = c.http.post(c.url("/login")).basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD)).send().await.unwrap();
        assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
        let body = error_body(res, 503).await;
        assert_eq!(body["error"], "deadline exceeded", "{body}");
        assert_eq!(body["detail"], "the request took more work than the server allows (0.01 s)", "{body}");
        assert_eq!(c.http.get(c.url("/")).send().await.unwrap().status(), 200);
        assert_eq!(c.http.get(c.url("/formats")).send().await.unwrap().status(), 200);
    }
    let log = p.log_when(|log| log.matches("component stopped").count() == 3).await;
    let stopped: Vec<&str> = log.lines().filter(|l| l.contains("component stopped")).collect();
    assert_eq!(stopped.len(), 3, "{log}");
    for line in stopped {
        assert!(line.contains("component=auth") && line.contains("deadline of 0.01 s of work exceeded"), "{line}");
    }
}
