//! Transfers that no wall clock cuts, through the real host and components: `mp3edge up` bounds
//! a request by its component's work (`--request-timeout-secs`) and its client's pace
//! (`--body-idle-timeout-secs`, `--transfer-min-bytes-per-sec` over
//! `--transfer-rate-window-secs` of waiting on the client), not by how long it is open.
//!
//! - A throttled upload (`curl --limit-rate`) and a throttled download (a reader with a small
//!   receive buffer, so the host really waits on it) that take more than twice the request
//!   timeout complete, byte for byte.
//! - An upload that stalls after running longer than the request timeout gets `408` at the idle
//!   time; a download whose reader stops, or reads below the rate floor, has its connection
//!   reset, and the host logs each.
//! - An event stream stays open past twice the request timeout and still delivers `done`.
//!
//! (The upload that trickles below the floor, the busy component stopped at its work budget and
//! the absolute bound are in `hardening_host.rs`.)

use std::time::{Duration, Instant};

use e2e_tests::fixtures::{good_inputs, long_video};
use e2e_tests::*;
use futures::StreamExt;
use job_model::layout;
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Bytes that differ from one position to the next, so a byte out of place shows.
fn sample_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

fn address(p: &Platform) -> String {
    p.base_url.trim_start_matches("http://").to_string()
}

/// How a body read from the socket ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// All of `content-length` arrived.
    Complete,
    /// The server closed the connection early.
    Eof,
    /// The server reset the connection.
    Reset,
}

/// What a reader at its own pace got.
#[derive(Debug)]
struct Download {
    status: u16,
    content_length: usize,
    body: Vec<u8>,
    ended: Ended,
}

/// How a reader takes the body.
#[derive(Clone, Copy)]
enum Pace {
    /// This many bytes a second, a twentieth every 50 ms.
    Rate(usize),
    /// As fast as it comes until this many bytes, then nothing for the pause, then the rest.
    StopAfter(usize, Duration),
}

/// `GET path` on a socket with a small receive buffer (the client's window stays small, so the
/// server soon waits on this reader), read at `pace`.
async fn download_at(p: &Platform, path: &str, token: &str, pace: Pace) -> Download {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    let mut stream = socket.connect(address(p).parse().unwrap()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The head, a byte at a time up to its blank line.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the head ended early: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = Vec::with_capacity(content_length);
    let mut buf = vec![0u8; 1 << 20];
    // Reads until `body` holds `upto` bytes; `Some` when the connection ended first.
    async fn read_upto(stream: &mut tokio::net::TcpStream, body: &mut Vec<u8>, buf: &mut [u8], upto: usize) -> Option<Ended> {
        while body.len() < upto {
            let want = (upto - body.len()).min(buf.len());
            match stream.read(&mut buf[..want]).await {
                Ok(0) => return Some(Ended::Eof),
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(Ended::Reset),
                Err(e) => panic!("reading the body: {e}"),
            }
        }
        None
    }
    let ended = match pace {
        Pace::Rate(rate) => {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let upto = (body.len() + rate / 20).min(content_length);
                if let Some(ended) = read_upto(&mut stream, &mut body, &mut buf, upto).await {
                    break ended;
                }
                if body.len() == content_length {
                    break Ended::Complete;
                }
            }
        }
        Pace::StopAfter(first, pause) => match read_upto(&mut stream, &mut body, &mut buf, first).await {
            Some(ended) => ended,
            None => {
                tokio::time::sleep(pause).await;
                read_upto(&mut stream, &mut body, &mut buf, content_length).await.unwrap_or(Ended::Complete)
            }
        },
    };
    Download { status, content_length, body, ended }
}

/// A converted job whose WAV output is about 21 MB (two minutes of 44.1 kHz stereo): far more
/// than the socket buffers between the host and a reader hold.
async fn big_wav(c: &Client, token: &str) -> (String, Vec<u8>) {
    let video = long_video("transfers-2min.mp4", 120, "160x120");
    let id = c.upload_file(token, &video, "video/mp4", "format=wav").await;
    let job = c.wait_for_job(token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    let (_, wav) = c.download(token, &id).await;
    assert!(wav.len() > 20_000_000, "{} bytes", wav.len());
    (id, wav)
}

#[tokio::test]
async fn a_throttled_upload_taking_twice_the_request_timeout_completes_byte_exact() {
    let options = PlatformOptions { key_value_on_redis: true, no_worker: true, args: args(&["--request-timeout-secs", "4"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("slow-uplink@example.com").await;
    let source = sample_bytes(3 << 20);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &source).unwrap();
    // 3 MiB at 300 KiB/s: about ten seconds.
    let started = Instant::now();
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--limit-rate", "300K", "-w", "\n%{http_code}", "-H", "Expect:", "-H", "content-type: video/mp4"])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()))
        .arg(c.url("/upload?filename=slow.mp4"))
        .output()
        .await
        .expect("curl runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap();
    assert_eq!(code, "202", "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(took > Duration::from_secs(8), "the upload took {took:?}, not twice the request timeout");
    let id = serde_json::from_str::<serde_json::Value>(body).unwrap()["job_id"].as_str().unwrap().to_string();
    // What the store holds is what was sent.
    let mut conn = p.redis().connect().await;
    let job = job_model::Job::from_json(&conn.get::<_, Vec<u8>>(layout::job_key(&id)).await.unwrap()).unwrap();
    assert_eq!((job.source.size, job.source.chunks), (source.len() as u64, 3));
    let mut stored = Vec::new();
    for n in 0..job.source.chunks {
        stored.extend(conn.get::<_, Vec<u8>>(layout::source_chunk_key(&id, n)).await.unwrap());
    }
    assert!(stored == source, "the stored upload differs from what was sent");
    let log = p.log();
    assert!(!log.contains("component stopped") && !log.contains("request body ended"), "{log}");
}

#[tokio::test]
async fn a_throttled_download_taking_twice_the_request_timeout_completes_byte_exact() {
    let options = PlatformOptions { key_value_on_redis: true, args: args(&["--request-timeout-secs", "4"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("slow-downlink@example.com").await;
    let (id, wav) = big_wav(&c, &token).await;
    // 1.5 MiB/s: about fourteen seconds for 21 MB, most of it with the host waiting on the reader.
    let started = Instant::now();
    let got = download_at(&p, &format!("/jobs/{id}/audio"), &token, Pace::Rate(3 << 19)).await;
    let took = started.elapsed();
    assert_eq!((got.status, got.ended, got.content_length), (200, Ended::Complete, wav.len()));
    assert!(got.body == wav, "the slow download differs from the fast one");
    assert!(took > Duration::from_secs(8), "the download took {took:?}, not twice the request timeout");
    let log = p.log();
    assert!(!log.contains("component stopped") && !log.contains("response cut"), "{log}");
}

#[tokio::test]
async fn an_upload_that_stalls_after_outlasting_the_request_timeout_gets_408_at_the_idle_time() {
    let options = PlatformOptions {
        key_value_on_redis: true,
        no_worker: true,
        args: args(&["--request-timeout-secs", "2", "--body-idle-timeout-secs", "3"]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("stalls@example.com").await;
    let mut stream = tokio::net::TcpStream::connect(address(&p)).await.unwrap();
    let head = format!(
        "POST /upload?filename=a.mp4 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\n\r\n",
        10 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // 64 KiB every 100 ms for five seconds (past twice the request timeout), then nothing.
    let started = Instant::now();
    let piece = sample_bytes(64 << 10);
    // The silence starts with the last piece written, not with the pause after it.
    let mut stalled = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        stream.write_all(&piece).await.unwrap();
        stalled = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut answer)).await.expect("an answer").unwrap();
    let waited = stalled.elapsed();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request timeout""#), "{answer}");
    assert!(waited >= Duration::from_millis(2900) && waited < Duration::from_secs(6), "408 after {waited:?} of silence");
    assert!(p.log_has("request body ended: the client sent too slowly").await);
    assert!(p.log().contains("reason=nothing moved for 3."), "{}", p.log());
    let mut conn = p.redis().connect().await;
    wait_until("nothing left of the upload", Duration::from_secs(10), async || {
        conn.keys::<_, Vec<String>>("job:*").await.unwrap().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_download_whose_reader_stops_or_crawls_is_cut_and_logged() {
    let options = PlatformOptions {
        key_value_on_redis: true,
        // A floor of 1 MiB/s over windows of 10 s: a crawling reader below it still reads fast
        // enough that loopback's window updates (every 32-64 KB read) come well within the idle
        // time, so each rule shows on its own; a stopped reader meets the idle time first.
        args: args(&["--body-idle-timeout-secs", "3", "--transfer-min-bytes-per-sec", "1048576", "--transfer-rate-window-secs", "10"]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("stops@example.com").await;
    let (id, wav) = big_wav(&c, &token).await;
    let path = format!("/jobs/{id}/audio");

    // Reads 1 MiB, then nothing for 8 s: the host resets the connection after 3 s of it.
    let stopped = download_at(&p, &path, &token, Pace::StopAfter(1 << 20, Duration::from_secs(8))).await;
    assert_eq!((stopped.status, stopped.content_length), (200, wav.len()));
    assert_eq!(stopped.ended, Ended::Reset, "got {} of {} bytes", stopped.body.len(), wav.len());
    assert!(stopped.body.len() < wav.len() && stopped.body[..] == wav[..stopped.body.len()], "{} bytes", stopped.body.len());
    let log = p.log_when(|log| log.contains("response cut: the client stopped reading")).await;
    let line = log.lines().find(|l| l.contains("response cut: the client stopped reading")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&path) && line.contains("component=gateway"), "{line}");
    assert!(line.contains("nothing moved for 3."), "cut at the idle time: {line}");
    println!("{line}");

    // 256 KiB/s against a floor of 1 MiB/s: reset at the end of a window of waiting on it.
    let started = Instant::now();
    let crawled = download_at(&p, &path, &token, Pace::Rate(256 << 10)).await;
    let took = started.elapsed();
    assert_eq!(crawled.ended, Ended::Reset, "got {} of {} bytes in {took:?}", crawled.body.len(), wav.len());
    assert!(crawled.body[..] == wav[..crawled.body.len()]);
    assert!(took < Duration::from_secs(60), "{took:?}");
    let log = p.log_when(|log| log.contains("response cut: the client read below the minimum rate")).await;
    let line = log.lines().find(|l| l.contains("response cut: the client read below the minimum rate")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&path) && line.contains("below the floor of 10485760"), "{line}");
    println!("{line}\nthe crawling reader got {} of {} bytes in {took:?}", crawled.body.len(), wav.len());

    // The same download read at once is whole: the host is fine, only those clients were cut.
    let (_, again) = c.download(&token, &id).await;
    assert!(again == wav);
}

#[tokio::test]
async fn an_event_stream_outlives_twice_the_request_timeout_and_delivers_done() {
    let options =
        PlatformOptions { key_value_on_redis: true, no_worker: true, args: args(&["--request-timeout-secs", "1"]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("follows@example.com").await;
    let (_, clip) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let id = c.upload_file(&token, &clip.path, clip.content_type, "format=mp3").await;
    let opened = Instant::now();
    let res = c.http.get(c.url(&format!("/jobs/{id}/events"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    // Nobody converts the job for three seconds (three request timeouts), then a worker does.
    let mut worker = None;
    let ended = loop {
        if worker.is_none() && opened.elapsed() > Duration::from_secs(3) {
            worker = Some(p.start_worker(&[]));
        }
        match tokio::time::timeout(Duration::from_millis(500), body.next()).await {
            Err(_) => assert!(opened.elapsed() < JOB_TIMEOUT, "no end: {seen}"),
            Ok(None) => break opened.elapsed(),
            Ok(Some(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk.expect("the stream is readable"))),
        }
    };
    let events: Vec<&str> = seen.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"queued"), "{seen}");
    assert_eq!(events.last(), Some(&"done"), "{seen}");
    assert!(seen.matches(": keep-alive").count() >= 2, "it kept alive while it waited: {seen}");
    assert!(ended > Duration::from_secs(3), "{ended:?}");
    assert!(!p.log().contains("component stopped"), "{}", p.log());
    drop(worker);
}
