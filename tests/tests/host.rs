//! The host itself: embedded defaults (private Redis, generated secrets), Spin's storage
//! layout, routing errors, memory caps and clean shutdown.

use e2e_tests::procfs;
use e2e_tests::*;

#[tokio::test]
async fn embedded_defaults_run_everything_and_shut_down_cleanly() {
    let mut p = Platform::start_with(PlatformOptions { private_redis: true, embedded_defaults: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    // The first administrator was generated and announced once.
    let log = p.log();
    let line = log.lines().find(|l| l.contains("first administrator is")).expect("admin announced");
    let password = line.split("with password ").nth(1).unwrap().split_whitespace().next().unwrap();
    let admin = c.login("admin@mp3edge.localhost", password).await;
    // Uploads reach the private Redis queue.
    let res = c
        .http
        .post(c.url("/upload?filename=a.mp4"))
        .bearer_auth(&admin)
        .header("content-type", "video/mp4")
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let state = p.data_dir.path().join("state");
    assert!(state.join("redis").is_dir(), "private Redis keeps its data in the data dir");
    assert!(state.join("secrets/jwt_secret").is_file());
    let port: u16 = log
        .lines()
        .find(|l| l.contains("started private redis-server"))
        .and_then(|l| l.split("port=").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("private redis port logged");
    assert_ne!(port, 6379);
    // The private Redis wants its generated password.
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = anonymous.get_multiplexed_async_connection().await.unwrap();
    let refused = redis::cmd("PING").query_async::<String>(&mut conn).await.unwrap_err();
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");
    assert!(state.join("secrets/redis_password").is_file());
    // Secrets, databases and media are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    for file in ["secrets/jwt_secret", "secrets/admin_password", "secrets/redis_password", "sqlite_key_value.db", "sqlite_db.db"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&state.join("redis")), 0o700);
    let status = p.stop().expect("exits on SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "private Redis stopped with the host");
}

#[tokio::test]
async fn key_value_defaults_to_spins_sqlite_table() {
    let p = Platform::start();
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    let res = c
        .http
        .post(c.url("/upload?filename=a.mp4"))
        .bearer_auth(&admin)
        .header("content-type", "video/mp4")
        .body(vec![7u8; 3000])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    let id = body["job_id"].as_str().unwrap();
    let db = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_key_value.db")).unwrap();
    let value: Vec<u8> = db
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
            [job_model::layout::source_chunk_key(id, 0)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, vec![7u8; 3000]);
}

#[tokio::test]
async fn unknown_routes_and_component_failures_are_json_and_isolated() {
    let p = Platform::start_with(PlatformOptions { args: vec!["--max-memory-mib".into(), "8".into()], ..Default::default() }).unwrap();
    let c = Client::new(&p);
    error_body(c.http.get(c.url("/no/such/route")).send().await.unwrap(), 404).await;
    // argon2id needs 19 MiB: under an 8 MiB cap the login instance fails, alone.
    let res = c.http.post(c.url("/login")).basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD)).send().await.unwrap();
    error_body(res, 500).await;
    // The host keeps serving other components.
    error_body(c.http.get(c.url("/jobs")).send().await.unwrap(), 401).await;
    assert!(p.log_has("guest memory growth refused").await, "the cap is what stopped it");
}

/// The private Redis's pid, from its pid file.
fn private_redis_pid(p: &Platform) -> i32 {
    let file = p.data_dir.path().join("state/redis/redis-server.pid");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

async fn upload_status(c: &Client, token: &str) -> u16 {
    let res = c.http.post(c.url("/upload?filename=a.mp4")).bearer_auth(token).header("content-type", "video/mp4").body(vec![1u8; 1000]).send().await.unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn the_private_redis_dies_with_its_host_and_comes_back_when_it_dies_alone() {
    let mut p = Platform::start_with(PlatformOptions { private_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.admin_token().await;
    assert_eq!(upload_status(&c, &token).await, 202);

    // Redis dies while the host runs: uploads are refused with 503, then it is back.
    let first = private_redis_pid(&p);
    unsafe { libc::kill(first, libc::SIGKILL) };
    let started = std::time::Instant::now();
    let mut saw_503 = false;
    loop {
        match upload_status(&c, &token).await {
            202 => break,
            503 => saw_503 = true,
            other => panic!("unexpected {other} while Redis restarts"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "Redis did not come back");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The supervisor noticed and started it again (an upload sent in the gap got a 503, and
    // any other answer failed the loop above; none may have landed there).
    assert!(p.log_has("private redis-server is back").await, "{}", p.log());
    eprintln!("uploads refused with 503 while Redis was down: {saw_503}");
    let second = private_redis_pid(&p);
    assert_ne!(first, second);

    // `kill -9` of the host: its Redis does not outlive it.
    p.kill_hard();
    let started = std::time::Instant::now();
    while alive(second) {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "redis-server {second} outlived its host");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The threads of process `pid`: (name, nice value) from `/proc`.
fn threads(pid: u32) -> Vec<(String, i64)> {
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let path = task.path();
        let (Ok(name), Some(fields)) = (std::fs::read_to_string(path.join("comm")), procfs::stat_fields(path.join("stat"))) else { continue };
        all.push((name.trim().to_string(), nice(&fields)));
    }
    all
}

/// The nice value of a `stat` file's fields (`i64::MIN` if unreadable, which no check accepts).
fn nice(fields: &[String]) -> i64 {
    fields.get(16).and_then(|n| n.parse().ok()).unwrap_or(i64::MIN)
}

/// `up` converts on threads of its own, nicer than the threads that serve requests (by 10, or
/// up to 19 when the test itself runs niced), and the confined FFmpeg processes they start
/// inherit it: under contention the kernel serves a request first, and the edge does not
/// starve behind the encoder.
#[tokio::test]
async fn conversions_run_below_the_requests_priority() {
    let p = Platform::start();
    let c = Client::new(&p);
    let pid = p.pid().unwrap();
    let token = c.new_user("nice@example.com").await;
    let video = e2e_tests::fixtures::long_video("nice-60s.mp4", 60, "160x120");
    let id = c.upload_file(&token, &video, "video/mp4", "format=mp3").await;
    let (mut media, mut conversion_threads) = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    loop {
        for child in procfs::children(pid) {
            // The private Redis was started before any conversion, at the host's own priority.
            if std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|comm| !comm.starts_with("redis"))
                && let Some(fields) = procfs::stat_fields(format!("/proc/{child}/stat"))
            {
                media.push(nice(&fields));
            }
        }
        conversion_threads.extend(threads(pid).into_iter().filter(|(name, _)| name.starts_with("conversion")).map(|(_, nice)| nice));
        let job = c.job(&token, &id).await;
        if job["status"] == "done" || job["status"] == "failed" {
            assert_eq!(job["status"], "done", "{job}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the job never ended");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let serving: Vec<i64> = threads(pid).into_iter().filter(|(name, _)| name.starts_with("tokio-rt-worker")).map(|(_, nice)| nice).collect();
    let base = *serving.first().unwrap_or_else(|| panic!("no request threads among {:?}", threads(pid)));
    assert!(serving.iter().all(|&n| n == base), "request threads' nice values: {serving:?}");
    let lowered = (base + 10).min(19);
    assert!(lowered > base, "the tests run at nice {base}: nothing is lower");
    assert!(!conversion_threads.is_empty() && conversion_threads.iter().all(|&n| n == lowered), "conversion threads' nice values: {conversion_threads:?}, requests' {base}");
    assert!(!media.is_empty() && media.iter().all(|&n| n == lowered), "media processes' nice values: {media:?}, requests' {base}");
}
