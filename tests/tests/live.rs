//! Following a job live and calling the API from a browser, through the real host: the
//! Server-Sent Events stream of `GET /jobs/{id}/events` (with the token in the header or, for
//! `EventSource`, in the query), CORS on the auth and gateway routes, and the `?callback=`
//! webhook given at upload (checked against SSRF rules; delivery is the worker's business).

use std::time::{Duration, Instant};

use e2e_tests::fixtures::long_video;
use e2e_tests::*;
use futures::StreamExt;
use job_model::layout;
use redis::AsyncCommands;

const APP: &str = "https://app.example.com";
const DEV: &str = "http://localhost:5173";
const FOREIGN: &str = "https://evil.example.net";

fn platform(variables: &[(&str, &str)], no_worker: bool) -> Platform {
    Platform::start_with(PlatformOptions {
        key_value_on_redis: true,
        no_worker,
        variables: variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    })
    .unwrap()
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug)]
struct Event {
    name: String,
    data: serde_json::Value,
}

/// What an event stream delivered.
#[derive(Debug, Default)]
struct Received {
    events: Vec<Event>,
    comments: Vec<String>,
    /// The server ended the body (as opposed to the test giving up).
    ended: bool,
}

/// Reads a `text/event-stream` body until the server ends it or `timeout` passes.
async fn read_events(res: reqwest::Response, timeout: Duration) -> Received {
    let mut received = Received::default();
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => return received,
            Ok(None) => {
                received.ended = true;
                assert!(buffer.trim().is_empty(), "the stream ended inside an event: {buffer:?}");
                return received;
            }
            Ok(Some(chunk)) => chunk.expect("the stream is readable"),
        };
        buffer.push_str(std::str::from_utf8(&chunk).expect("events are UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (mut name, mut data) = (String::new(), Vec::new());
            for line in frame.lines() {
                if let Some(comment) = line.strip_prefix(':') {
                    received.comments.push(comment.trim().to_string());
                } else if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_string());
                } else {
                    assert!(line.starts_with("id:") || line.starts_with("retry:") || line.is_empty(), "odd line {line:?}");
                }
            }
            if !data.is_empty() {
                let data = serde_json::from_str(&data.join("\n")).unwrap_or_else(|e| panic!("data is not JSON ({e}): {frame:?}"));
                received.events.push(Event { name, data });
            }
        }
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "queued" => 0,
        "converting" => 1,
        "done" | "failed" => 2,
        other => panic!("unexpected status {other:?}"),
    }
}

async fn open_events(c: &Client, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = c.http.get(c.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn assert_event_stream(res: &reqwest::Response) {
    assert_eq!(res.status(), 200);
    let header = |name| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(header("content-type").starts_with("text/event-stream"), "{:?}", res.headers());
    assert_eq!(header("cache-control"), "no-cache");
}

#[tokio::test]
async fn event_stream_follows_a_job_to_done_and_ends() {
    let p = platform(&[], false);
    let c = Client::new(&p);
    let token = c.new_user("live@example.com").await;
    // Two minutes of audio (the worker tests' fixture) convert in a second or two: long enough
    // for a few 250 ms polls to see progress (20 s convert in less than one poll).
    let video = long_video("term-2min.mp4", 120, "160x120");
    let id = c.upload_file(&token, &video, "video/mp4", "format=mp3").await;

    // As an EventSource does it: the token in the query, no header.
    let res = open_events(&c, &format!("/jobs/{id}/events?access_token={}", encode(&token)), None).await;
    assert_event_stream(&res);
    let started = Instant::now();
    let received = read_events(res, Duration::from_secs(120)).await;
    let events = &received.events;
    assert!(received.ended, "the stream ends by itself after done (got {events:?}, log:\n{})", p.log());
    assert!(events.len() >= 3, "{events:?}");
    let first = &events[0];
    assert!(["queued", "converting"].contains(&first.data["status"].as_str().unwrap()), "{first:?}");
    for event in events {
        assert_eq!(event.data["job_id"], id.as_str());
        assert_eq!(event.name, event.data["status"].as_str().unwrap(), "the event is named after the status");
        assert!(event.data["progress"].as_u64().unwrap() <= 100);
    }
    for pair in events.windows(2) {
        let (a, b) = (&pair[0].data, &pair[1].data);
        assert!(rank(a["status"].as_str().unwrap()) <= rank(b["status"].as_str().unwrap()), "{events:?}");
        assert!(a["progress"].as_u64() <= b["progress"].as_u64(), "progress never goes back: {events:?}");
        assert_ne!((&a["status"], &a["progress"]), (&b["status"], &b["progress"]), "only changes are sent: {events:?}");
    }
    let intermediate = events.iter().filter(|e| e.data["status"] == "converting").filter_map(|e| e.data["progress"].as_u64());
    assert!(intermediate.clone().any(|p| p > 0 && p < 100), "at least one intermediate progress value: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(last.name, "done", "{events:?}");
    assert_eq!(last.data["progress"], 100);
    assert_eq!(last.data["download_url"], format!("/jobs/{id}/audio"));
    assert!(last.data.get("error").is_none());
    assert!(started.elapsed() < Duration::from_secs(120));

    // The record agrees; the audio is there.
    let job = c.job(&token, &id).await;
    assert_eq!(job["status"], "done");
    c.download(&token, &id).await;

    // A finished job: one event, then the end, with the header token too (and for an admin).
    for who in [token.clone(), c.admin_token().await] {
        let res = open_events(&c, &format!("/jobs/{id}/events"), Some(&who)).await;
        assert_event_stream(&res);
        let received = read_events(res, Duration::from_secs(10)).await;
        assert!(received.ended);
        assert_eq!(received.events.len(), 1, "{received:?}");
        assert_eq!(received.events[0].name, "done");
    }
}

#[tokio::test]
async fn event_stream_needs_a_valid_token_and_the_jobs_owner() {
    let p = platform(&[], true);
    let c = Client::new(&p);
    let ann = c.new_user("ann@example.com").await;
    let bob = c.new_user("bob@example.com").await;
    // No worker: the job stays queued, and its stream stays open.
    let res = c.http.post(c.url("/upload?filename=clip.mp4")).bearer_auth(&ann).header("content-type", "video/mp4").body(vec![7u8; 1000]).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let path = format!("/jobs/{id}/events");

    // No token, a wrong token (header or query), a token that is not a token.
    error_body(open_events(&c, &path, None).await, 401).await;
    error_body(open_events(&c, &path, Some("not-a-token")).await, 401).await;
    let forged = format!("{}x", &ann[..ann.len() - 1]);
    error_body(open_events(&c, &format!("{path}?access_token={}", encode(&forged)), None).await, 401).await;
    error_body(open_events(&c, &format!("{path}?access_token="), None).await, 401).await;
    // A header token wins over the query one.
    error_body(open_events(&c, &format!("{path}?access_token={}", encode(&ann)), Some("not-a-token")).await, 401).await;
    // The query token is only for the event stream.
    error_body(open_events(&c, &format!("/jobs/{id}?access_token={}", encode(&ann)), None).await, 401).await;
    error_body(open_events(&c, &format!("/jobs?access_token={}", encode(&ann)), None).await, 401).await;
    // Someone else's job, or no such job: 404, as for `/jobs/{id}`.
    error_body(open_events(&c, &path, Some(&bob)).await, 404).await;
    error_body(open_events(&c, &format!("{path}?access_token={}", encode(&bob)), None).await, 404).await;
    error_body(open_events(&c, &format!("/jobs/{}/events", "0".repeat(32)), Some(&ann)).await, 404).await;
    error_body(open_events(&c, "/jobs/not-an-id/events", Some(&ann)).await, 404).await;
    // Wrong method.
    let res = c.http.post(c.url(&path)).bearer_auth(&ann).send().await.unwrap();
    error_body(res, 405).await;

    // The owner gets the current state at once and the stream stays open while nothing changes.
    let res = open_events(&c, &format!("{path}?access_token={}", encode(&ann)), None).await;
    assert_event_stream(&res);
    let received = read_events(res, Duration::from_secs(2)).await;
    assert!(!received.ended, "a queued job's stream stays open");
    assert_eq!(received.events.len(), 1, "{received:?}");
    assert_eq!(received.events[0].name, "queued");
    assert_eq!(received.events[0].data["progress"], 0);
    assert!(received.events[0].data.get("download_url").is_none());

    // A change made by another process shows up; a failure ends the stream with its reason.
    let res = open_events(&c, &path, Some(&ann)).await;
    let reader = tokio::spawn(read_events(res, Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut redis = p.redis().connect().await;
    let key = layout::job_key(&id);
    let mut job = job_model::Job::from_json(&redis.get::<_, Vec<u8>>(&key).await.unwrap()).unwrap();
    job.status = job_model::JobStatus::Converting;
    job.progress = 40;
    let () = redis.set(&key, job.to_json()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    job.status = job_model::JobStatus::Failed;
    job.error = Some("the audio stream is damaged".into());
    let () = redis.set(&key, job.to_json()).await.unwrap();
    let received = reader.await.unwrap();
    assert!(received.ended, "{received:?}");
    let names: Vec<&str> = received.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["queued", "converting", "failed"], "{received:?}");
    assert_eq!(received.events[1].data["progress"], 40);
    assert_eq!(received.events[2].data["error"], "the audio stream is damaged");
    assert!(received.events[2].data.get("download_url").is_none());
}

/// CPU seconds the process has used (user + system), from `/proc`.
fn cpu_secs(pid: u32) -> f64 {
    let fields = e2e_tests::procfs::stat_fields(format!("/proc/{pid}/stat")).unwrap();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[tokio::test]
async fn an_idle_stream_sleeps_keeps_alive_and_stops_when_the_client_leaves() {
    let p = platform(&[], true);
    let c = Client::new(&p);
    let token = c.new_user("idle@example.com").await;
    let res = c.http.post(c.url("/upload?filename=clip.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body(vec![7u8; 1000]).send().await.unwrap();
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();

    // Nobody converts the job: one event, then only keep-alive comments (one a second: they
    // are how the stream notices a client that left), while the component sleeps between polls
    // instead of spinning.
    let res = open_events(&c, &format!("/jobs/{id}/events"), Some(&token)).await;
    assert_event_stream(&res);
    let pid = p.pid().unwrap();
    let cpu_before = cpu_secs(pid);
    let received = read_events(res, Duration::from_secs(17)).await;
    let cpu = cpu_secs(pid) - cpu_before;
    assert!(!received.ended);
    assert_eq!(received.events.len(), 1, "{received:?}");
    assert!(received.comments.iter().all(|c| c == "keep-alive"), "{received:?}");
    assert!((12..=18).contains(&received.comments.len()), "a keep-alive a second: {received:?}");
    assert!(cpu < 3.0, "the host used {cpu:.2} s of CPU in 17 s of an idle stream: busy-waiting?");

    // The client is gone (the response was dropped): within a second or two a write fails and
    // the stream stops, giving its place back.
    let ended = format!("event stream of job {id} ended");
    let started = Instant::now();
    while !p.log().contains(&ended) {
        assert!(started.elapsed() < Duration::from_secs(4), "the stream did not notice the client left:\n{}", p.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = p.redis().connect().await;
    let open: u64 = redis::AsyncCommands::zcard(&mut conn, job_model::lifecycle::streams_key("idle@example.com")).await.unwrap();
    assert_eq!(open, 0, "the stream's place is given back");
}

#[tokio::test]
async fn one_user_holds_a_bounded_number_of_streams_and_each_ends_with_its_token() {
    let p = platform(&[("user_max_event_streams", "3"), ("jwt_lifetime_secs", "6")], true);
    let c = Client::new(&p);
    let token = c.new_user("many@example.com").await;
    let other = c.new_user("few@example.com").await;
    let res = c.http.post(c.url("/upload?filename=clip.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body(vec![7u8; 1000]).send().await.unwrap();
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let path = format!("/jobs/{id}/events");
    let mut open = Vec::new();
    for _ in 0..3 {
        let res = open_events(&c, &path, Some(&token)).await;
        assert_event_stream(&res);
        open.push(res);
    }
    let refused = open_events(&c, &path, Some(&token)).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_body(refused, 429).await["error"], "too many streams");
    // Another user, and every other route, still work.
    let res = c.http.get(c.url("/jobs")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(c.http.get(c.url("/")).send().await.unwrap().status(), 200);
    // A stream ends when its token expires (6 s here), with a timeout event.
    let received = read_events(open.pop().unwrap(), Duration::from_secs(10)).await;
    assert!(received.ended, "{received:?}");
    assert_eq!(received.events.last().map(|e| e.name.as_str()), Some("timeout"), "{received:?}");
    // A closed stream gives its place back within a couple of seconds.
    let fresh = c.login("many@example.com", "user-password-1").await;
    drop(open);
    let started = Instant::now();
    loop {
        let res = open_events(&c, &path, Some(&fresh)).await;
        if res.status() == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no place came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

fn cors_headers(res: &reqwest::Response) -> Vec<String> {
    res.headers().keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

/// An ordinary answer to a request from an allowed origin.
fn assert_cors(res: &reqwest::Response, origin: &str) {
    assert_eq!(header(res, "access-control-allow-origin").as_deref(), Some(origin), "{:?}", res.headers());
    assert!(header(res, "vary").is_some_and(|v| v.contains("Origin")), "{:?}", res.headers());
    let exposed = header(res, "access-control-expose-headers").unwrap_or_default();
    for name in ["Content-Disposition", "Content-Length", "Content-Range", "ETag", "Location", "Retry-After"] {
        assert!(exposed.contains(name), "{name} is exposed: {exposed}");
    }
}

async fn preflight(c: &Client, path: &str, origin: Option<&str>, method: &str) -> reqwest::Response {
    let mut request = c
        .http
        .request(reqwest::Method::OPTIONS, c.url(path))
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization,range");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn cors_grants_listed_origins_only() {
    let p = platform(&[("cors_allowed_origins", &format!("{APP}, {DEV}"))], true);
    let c = Client::new(&p);
    let token = c.new_user("web@example.com").await;

    // Ordinary requests, answered by both components, successes and errors alike.
    for origin in [APP, DEV] {
        let res = c.http.get(c.url("/formats")).header("origin", origin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_cors(&res, origin);
        let res = c.http.get(c.url("/jobs")).bearer_auth(&token).header("origin", origin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_cors(&res, origin);
        let res = c.http.get(c.url("/jobs")).header("origin", origin).send().await.unwrap();
        assert_cors(&res, origin);
        error_body(res, 401).await;
        let res = c.http.post(c.url("/login")).basic_auth("web@example.com", Some("user-password-1")).header("origin", origin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_cors(&res, origin);
        let res = c.http.post(c.url("/validate")).bearer_auth(&token).header("origin", origin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_cors(&res, origin);
    }

    // Preflights: 204 with the route's methods, without credentials.
    for (path, methods) in [
        ("/upload", "POST"),
        ("/jobs", "GET"),
        (&format!("/jobs/{}", "a".repeat(32)) as &str, "GET, DELETE"),
        (&format!("/jobs/{}/audio", "a".repeat(32)), "GET, HEAD"),
        (&format!("/jobs/{}/events", "a".repeat(32)), "GET"),
        ("/download", "GET, HEAD"),
        ("/formats", "GET"),
        ("/login", "POST"),
        ("/validate", "POST"),
        ("/users", "GET, POST"),
    ] {
        let res = preflight(&c, path, Some(APP), "GET").await;
        assert_eq!(res.status(), 204, "OPTIONS {path}");
        assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(APP), "{path}");
        assert_eq!(header(&res, "access-control-allow-methods").as_deref(), Some(methods), "{path}");
        let allowed = header(&res, "access-control-allow-headers").unwrap_or_default();
        for name in ["Authorization", "Content-Type", "Range", "If-None-Match", "If-Range"] {
            assert!(allowed.contains(name), "{path}: {name} in {allowed}");
        }
        assert_eq!(header(&res, "access-control-max-age").as_deref(), Some("600"), "{path}");
        assert!(header(&res, "allow").is_some_and(|a| a.starts_with(methods)), "{path}");
        assert!(header(&res, "vary").is_some_and(|v| v.contains("Origin")), "{path}");

        // A foreign origin, or none: still 204 with `Allow`, but no grant.
        for origin in [Some(FOREIGN), None] {
            let res = preflight(&c, path, origin, "GET").await;
            assert_eq!(res.status(), 204, "OPTIONS {path} from {origin:?}");
            assert!(cors_headers(&res).is_empty(), "{path} from {origin:?}: {:?}", res.headers());
            assert!(header(&res, "allow").is_some_and(|a| a.starts_with(methods) && a.contains("OPTIONS")), "{path}");
        }
    }
    // Unknown resources stay unknown.
    assert_eq!(preflight(&c, "/jobs/x/y/z", Some(APP), "GET").await.status(), 404);

    // A foreign origin gets no CORS header on any answer.
    let res = c.http.get(c.url("/formats")).header("origin", FOREIGN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    let res = c.http.get(c.url("/jobs")).bearer_auth(&token).header("origin", FOREIGN).send().await.unwrap();
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    let res = c.http.post(c.url("/login")).basic_auth("web@example.com", Some("user-password-1")).header("origin", "null").send().await.unwrap();
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    let res = c.http.get(c.url("/formats")).header("origin", format!("{APP}.evil.net")).send().await.unwrap();
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
}

#[tokio::test]
async fn without_allowed_origins_there_is_no_cross_origin_access() {
    let p = platform(&[], true);
    let c = Client::new(&p);
    let res = c.http.get(c.url("/formats")).header("origin", APP).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    for path in ["/upload", "/login"] {
        let res = preflight(&c, path, Some(APP), "POST").await;
        assert_eq!(res.status(), 204, "OPTIONS {path}");
        assert!(cors_headers(&res).is_empty(), "{path}: {:?}", res.headers());
        assert_eq!(header(&res, "allow").as_deref(), Some("POST, OPTIONS"));
    }
}

async fn upload_with_callback(c: &Client, token: &str, callback: &str) -> reqwest::Response {
    c.http
        .post(c.url(&format!("/upload?filename=clip.mp4&callback={}", encode(callback))))
        .bearer_auth(token)
        .header("content-type", "video/mp4")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap()
}

/// Sends a request head that announces a body it never sends; returns the start of the answer.
async fn head_only(p: &Platform, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(p.base_url.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn callbacks_to_internal_addresses_are_refused_before_the_upload() {
    let p = platform(&[], true);
    let c = Client::new(&p);
    let token = c.new_user("hook@example.com").await;
    for bad in [
        "http://10.0.0.5/hook",
        "http://localhost:9/x",
        "http://169.254.169.254/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://192.168.1.20/hook",
        "http://intranet/hook",
        "ftp://hooks.example.com/x",
        "hooks.example.com/x",
        "http://user:pass@hooks.example.com/x",
    ] {
        let body = error_body(upload_with_callback(&c, &token, bad).await, 400).await;
        assert_eq!(body["error"], "invalid callback", "{bad}: {body}");
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    // Refused from the request head alone: the announced body is never sent.
    let answer = head_only(
        &p,
        &format!(
            "POST /upload?filename=a.mp4&callback={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n",
            encode("http://10.0.0.5/hook")
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid callback"), "{answer}");

    // Nothing was stored or queued.
    let mut redis = p.redis().connect().await;
    let keys: Vec<String> = redis.keys("job:*").await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    // A public callback is accepted and kept with the job; no callback, no field.
    let res = upload_with_callback(&c, &token, "https://hooks.example.com/done?job=1").await;
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(c.job(&token, &id).await["callback_url"], "https://hooks.example.com/done?job=1");
    let res = c.http.post(c.url("/upload?filename=clip.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body(vec![7u8; 10]).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let job = c.job(&token, &id).await;
    assert!(job.get("callback_url").is_none(), "{job}");
}

#[tokio::test]
async fn allow_listed_hosts_may_receive_callbacks() {
    let p = platform(&[("webhook_allowed_hosts", "127.0.0.1")], true);
    let c = Client::new(&p);
    let token = c.new_user("hook@example.com").await;
    let res = upload_with_callback(&c, &token, "http://127.0.0.1:9/hook").await;
    let text = res.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = body["job_id"].as_str().unwrap_or_else(|| panic!("accepted: {text}")).to_string();

    let job = c.job(&token, &id).await;
    assert_eq!(job["callback_url"], "http://127.0.0.1:9/hook");
    let mut redis = p.redis().connect().await;
    let record = job_model::Job::from_json(&redis.get::<_, Vec<u8>>(layout::job_key(&id)).await.unwrap()).unwrap();
    assert_eq!(record.callback_url.as_deref(), Some("http://127.0.0.1:9/hook"));
    assert!(record.notifications.is_empty());

    // Only the listed host: other internal addresses stay refused.
    let body = error_body(upload_with_callback(&c, &token, "http://10.0.0.5/hook").await, 400).await;
    assert_eq!(body["error"], "invalid callback");
    let body = error_body(upload_with_callback(&c, &token, "http://localhost:9/hook").await, 400).await;
    assert_eq!(body["error"], "invalid callback");
}

#[tokio::test]
async fn a_users_default_callback_applies_to_uploads_without_one() {
    let p = platform(&[("webhook_allowed_hosts", "127.0.0.1:9")], true);
    let c = Client::new(&p);
    let token = c.new_user("defaults@example.com").await;
    let me = |method: reqwest::Method, body: Option<serde_json::Value>| {
        let mut req = c.http.request(method, c.url("/users/me")).bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let res = me(reqwest::Method::GET, None).await.unwrap();
    assert_eq!(res.status(), 200);
    let settings: serde_json::Value = res.json().await.unwrap();
    assert_eq!(settings["email"], "defaults@example.com");
    assert!(settings["default_callback"].is_null());

    // Refused like an upload's callback, and nothing is stored.
    let res = me(reqwest::Method::PUT, Some(serde_json::json!({"default_callback": "http://10.0.0.5/hook"}))).await.unwrap();
    error_body(res, 400).await;
    let res = me(reqwest::Method::PUT, Some(serde_json::json!({"unknown": 1}))).await.unwrap();
    error_body(res, 400).await;
    error_body(c.http.put(c.url("/users/me")).json(&serde_json::json!({})).send().await.unwrap(), 401).await;

    let hook = "http://127.0.0.1:9/default-hook";
    let res = me(reqwest::Method::PUT, Some(serde_json::json!({"default_callback": hook}))).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(me(reqwest::Method::GET, None).await.unwrap().json::<serde_json::Value>().await.unwrap()["default_callback"], hook);

    let upload = |query: &'static str| {
        c.http
            .post(c.url(&format!("/upload?filename=a.mp4{query}")))
            .bearer_auth(&token)
            .header("content-type", "video/mp4")
            .body(vec![1u8; 100])
            .send()
    };
    let id = |res: reqwest::Response| async move { res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string() };
    let defaulted = id(upload("").await.unwrap()).await;
    assert_eq!(c.job(&token, &defaulted).await["callback_url"], hook);
    let explicit = id(upload("&callback=https://hooks.example.com/x").await.unwrap()).await;
    assert_eq!(c.job(&token, &explicit).await["callback_url"], "https://hooks.example.com/x");

    // Cleared again.
    let res = me(reqwest::Method::PUT, Some(serde_json::json!({"default_callback": null}))).await.unwrap();
    assert_eq!(res.status(), 200);
    let plain = id(upload("").await.unwrap()).await;
    assert!(c.job(&token, &plain).await["callback_url"].is_null());
}
