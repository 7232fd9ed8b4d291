//! Hostile uploads against FFmpeg, through the real host, worker and media process: a concat list
//! that names a file beside the worker, an SDP file that would open a socket, a small file of
//! huge frames. Each is refused or defused with a readable reason, nothing is read, bound or
//! allocated for it, and other users' jobs go on. FFmpeg itself runs in a confined process
//! (no file system, no sockets, seccomp) that the kernel shows as such.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use e2e_tests::fixtures::{good_inputs, pixel_bomb, wavpack_silence};
use e2e_tests::*;

const JOB_TIMEOUT: Duration = Duration::from_secs(60);
const REFUSED_KIND: &str = "are not accepted: upload a video or audio file (MP4, MOV, MKV, WebM, AVI, MP3, WAV, FLAC, Ogg, ...)";

/// Uploads `body` as `name`; the job id.
async fn upload_bytes(c: &Client, token: &str, name: &str, body: Vec<u8>) -> String {
    let res = c
        .http
        .post(c.url(&format!("/upload?filename={name}&format=mp3")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 202, "{text}");
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["job_id"].as_str().unwrap().to_string()
}

/// The processes whose parent is `pid`, with their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    e2e_tests::procfs::children(pid)
        .into_iter()
        .map(|child| {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            (child, String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string())
}

#[tokio::test]
async fn a_concat_list_cannot_read_a_file_beside_the_worker() {
    // The worker runs in a directory that holds a "secret" WAV; lists name it relatively,
    // absolutely and through the file protocol.
    let cwd = tempfile::tempdir().unwrap();
    let wav = good_inputs().into_iter().find(|(name, _)| *name == "wav").unwrap().1.path;
    std::fs::copy(&wav, cwd.path().join("secret.wav")).unwrap();
    let absolute = cwd.path().join("secret.wav");
    let p = Platform::start_with(PlatformOptions { cwd: Some(cwd.path().to_path_buf()), ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("concat@example.com").await;
    for list in [
        "ffconcat version 1.0\nfile 'secret.wav'\n".to_string(),
        format!("ffconcat version 1.0\nfile '{}'\n", absolute.display()),
        format!("ffconcat version 1.0\nfile 'file:{}'\n", absolute.display()),
    ] {
        let id = upload_bytes(&c, &token, "cc.ffconcat", list.into_bytes()).await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["error"].as_str().unwrap(), format!("files of this kind (Virtual concatenation script) {REFUSED_KIND}"), "{job}");
        assert!(job["output"].is_null(), "{job}");
        assert!(job["media"].is_null() || job["media"]["container"] != "concat", "{job}");
    }
}

#[tokio::test]
async fn an_sdp_upload_binds_no_port_and_holds_no_conversion_slot() {
    let p = Platform::start_with(PlatformOptions { args: vec!["--concurrency".into(), "1".into()], ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let attacker = c.new_user("sdp@example.com").await;
    let other = c.new_user("other@example.com").await;
    let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let sdp = format!("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio {port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\n");
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(upload_bytes(&c, &attacker, "stream.sdp", sdp.clone().into_bytes()).await);
    }
    // Another user's short job, queued behind the ten on a worker that converts one at a time.
    let mp4 = good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap().1.path;
    let theirs = c.upload_file(&other, &mp4, "video/mp4", "format=mp3").await;
    for id in &ids {
        let job = c.wait_for_job(&attacker, id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert!(job["error"].as_str().is_some_and(|e| e.starts_with("files of this kind (SDP) are not accepted")), "{job}");
    }
    let job = c.wait_for_job(&other, &theirs, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    // Each SDP held a slot ~30 s before; now the lot, and the other job, take seconds.
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    UdpSocket::bind(("0.0.0.0", port)).expect("no one bound the SDP's port");
}

#[tokio::test]
async fn a_small_file_of_huge_frames_takes_no_memory_and_converts_without_a_cover() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("pixels@example.com").await;
    let bomb = pixel_bomb();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let before_kib: u64 = status_field(p.pid().unwrap(), "VmHWM:").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    // Two at once: before, the worker went from 109 MB to 3.1 GB.
    let (a, b) = tokio::join!(
        c.upload_file(&token, &bomb, "video/x-matroska", "format=mp3"),
        c.upload_file(&token, &bomb, "video/x-matroska", "format=mp3")
    );
    for id in [a, b] {
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "{job}");
        let (_, mp3) = c.download(&token, &id).await;
        let decoded = e2e_tests::audio::decode_mp3(&mp3);
        assert_eq!(decoded.exact_frames, Some(3 * 44100), "{decoded:?}");
    }
    let peak_kib: u64 = status_field(p.pid().unwrap(), "VmHWM:").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(peak_kib < before_kib + 100 * 1024, "the platform's peak went from {before_kib} to {peak_kib} KiB");
    // Nor did FFmpeg's own processes take it (the largest finished one).
    let metrics = reqwest::get(format!("{}/metrics", p.admin_url)).await.unwrap().text().await.unwrap();
    let child_peak: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mp3edge_media_process_peak_rss_bytes "))
        .unwrap_or_else(|| panic!("no child peak in {metrics}"))
        .parse()
        .unwrap();
    // A media process is about 40 MB, most of it the program's and FFmpeg's shared pages.
    assert!(child_peak > 0 && child_peak < 100 << 20, "a media process reached {child_peak} bytes");
}

#[tokio::test]
async fn ffmpeg_runs_in_a_confined_process_of_its_own() {
    let p = Platform::start();
    assert!(p.log_has("media sandbox: FFmpeg runs confined").await, "{}", p.log());
    assert!(!p.log().contains("DOES NOT CONFINE"), "{}", p.log());
    let c = Client::new(&p);
    let token = c.new_user("confined@example.com").await;
    let long = e2e_tests::fixtures::long_video("confined-60s.mp4", 60, "160x120");
    let id = c.upload_file(&token, &long, "video/mp4", "format=wav").await;
    // While it converts, the worker has media processes: seccomp in filter mode, no new
    // privileges, not dumpable, and a capped heap.
    let up = p.pid().unwrap();
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.is_empty() && started.elapsed() < JOB_TIMEOUT {
        for (pid, cmdline) in children(up) {
            if !cmdline.contains("media-sandbox") {
                continue;
            }
            // A process confines itself as it starts: wait for its filter to be in place.
            let confined = Instant::now();
            while status_field(pid, "Seccomp:").is_some_and(|mode| mode != "2") && confined.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
            let (seccomp, no_new_privs) = (status_field(pid, "Seccomp:"), status_field(pid, "NoNewPrivs:"));
            // A process that ended in between has no status left to read.
            if seccomp.is_some() && !limits.is_empty() {
                seen.push((pid, seccomp, no_new_privs, limits));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!seen.is_empty(), "no media process seen");
    for (pid, seccomp, no_new_privs, limits) in &seen {
        assert_eq!(seccomp.as_deref(), Some("2"), "process {pid}");
        assert_eq!(no_new_privs.as_deref(), Some("1"), "process {pid}");
        let data = limits.lines().find(|l| l.starts_with("Max data size")).unwrap_or_default();
        assert_eq!(data.split_whitespace().nth(3), Some((512u64 << 20).to_string().as_str()), "process {pid}: {data}");
        let files = limits.lines().find(|l| l.starts_with("Max file size")).unwrap_or_default();
        assert_eq!(files.split_whitespace().nth(3), Some("0"), "process {pid}: {files}");
    }
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    // The processes are gone with the job.
    let media_processes = || children(up).into_iter().filter(|(_, cmd)| cmd.contains("media-sandbox")).collect::<Vec<_>>();
    let started = Instant::now();
    while !media_processes().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(media_processes(), vec![]);
}

#[tokio::test]
async fn an_output_known_to_be_too_large_fails_before_its_first_byte() {
    let mut variables = std::collections::BTreeMap::new();
    variables.insert("user_quota_bytes".to_string(), (200u64 << 20).to_string());
    let p = Platform::start_with(PlatformOptions { variables, key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("amplify@example.com").await;
    // Ten minutes of silence, a few kilobytes, asked for as 192 kHz stereo WAV: 460.8 MB
    // (439.5 MiB).
    let ten_minutes = wavpack_silence(600);
    assert!(std::fs::metadata(&ten_minutes).unwrap().len() < 50_000);
    let started = Instant::now();
    let id = c.upload_file(&token, &ten_minutes, "audio/x-wavpack", "format=wav&rate=192000&channels=2").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.starts_with("the output would take at least 439.5 MiB (600 s of wav at 192000 Hz, 2 channels), more than is left of your storage quota of 200 MiB (you hold "),
        "{error}"
    );
    assert!(error.ends_with("); delete jobs or choose a smaller format"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    // Five hours, over the per-job cap of 2 GiB whatever the quota.
    let five_hours = wavpack_silence(5 * 3600);
    let id = c.upload_file(&token, &five_hours, "audio/x-wavpack", "format=wav&rate=192000&channels=2").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert_eq!(error, "the output would take at least 12.9 GiB (18000 s of wav at 192000 Hz, 2 channels), more than the limit of 2 GiB per job");
    // Nothing of either output was written or is counted.
    let mut redis = p.redis().connect().await;
    for id in [job["id"].as_str().unwrap()] {
        let chunk: Option<Vec<u8>> = redis::AsyncCommands::get(&mut redis, job_model::layout::output_chunk_key(id, 0)).await.unwrap();
        assert!(chunk.is_none());
    }
    let usage: std::collections::HashMap<String, u64> =
        redis::AsyncCommands::hgetall(&mut redis, job_model::lifecycle::usage_key("amplify@example.com")).await.unwrap();
    assert!(usage.keys().all(|field| !field.ends_with(":out")), "{usage:?}");
    // A WAV that fits converts.
    let fits = c.upload_file(&token, &wavpack_silence(10), "audio/x-wavpack", "format=wav").await;
    assert_eq!(c.wait_for_job(&token, &fits, JOB_TIMEOUT).await["status"], "done");
}

#[tokio::test]
async fn decoders_dropped_on_purpose_are_not_counted_as_failures() {
    // Longer than the probe's decoder is kept for, so the probe and the cover's decoder are
    // dropped while they may still be reading ahead.
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("dropped@example.com").await;
    let clip = e2e_tests::fixtures::long_video("media-dropped-150s.mp4", 150, "160x120");
    let id = c.upload_file(&token, &clip, "video/mp4", "").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    let metrics = reqwest::get(format!("{}/metrics", p.admin_url)).await.unwrap().text().await.unwrap();
    let metric = |name: &str| -> u64 {
        let prefix = format!("{name} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {name} in {metrics}")).parse().unwrap()
    };
    assert!(metric("mp3edge_media_processes_total") >= 2, "{metrics}");
    assert_eq!(metric("mp3edge_media_process_failures_total"), 0, "log:\n{}", p.log());
    assert!(!p.log().contains("media process failed"), "{}", p.log());
}
