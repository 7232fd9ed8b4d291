//! The m4a format (AAC-LC from fdk-aac in the `codec-m4a` plugin's own MP4 writer) end to end:
//! the real platform, worker and plugin in Wasmtime, outputs read back with FFmpeg. It passes
//! the conversion suite every format passes, the container declares every output's exact
//! length, the bitrate sets the size, options the plugin does not take are refused at upload,
//! and headless Chromium plays the output from a signed link and decodes exactly its length.

use std::process::Command;
use std::time::Duration;

use e2e_tests::fixtures::{bad_inputs, good_inputs};
use e2e_tests::probe::probe;
use e2e_tests::suite::{FormatExpectations, convert_every_input};
use e2e_tests::*;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Every input to m4a, read back by FFmpeg. FFmpeg applies an edit list's start to the sample
/// but decodes the last access unit whole, so the decoded length may exceed the source by the
/// encoder's padding (under one 1024-frame access unit) when the length is not known ahead;
/// the container's own declared length is exact (next test).
#[tokio::test]
async fn m4a_passes_the_conversion_suite_read_back_by_ffmpeg() {
    convert_every_input(FormatExpectations {
        query: "format=m4a",
        content_type: "audio/mp4",
        codec: "aac",
        rate_for: |rate| rate,
        max_channels: 2,
        tolerance_frames: 1023,
        tags: true,
    })
    .await;
}

async fn platform_with_formats() -> (Platform, Client, String) {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("m4a@example.com").await;
    // Wait until the worker has published what its plugins take.
    let m4a = c.published_format("m4a", |f| f["format"] == "m4a" && f["bitrates"].is_array()).await;
    assert_eq!(m4a["vbr"], true, "{m4a}");
    assert!(m4a["bitrates"].as_array().unwrap().contains(&192.into()), "{m4a}");
    (p, c, token)
}

/// `ffprobe`'s stream `duration_ts` (in the track's timescale, the sample rate): the edit list's
/// presented length.
fn declared_frames(path: &std::path::Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration_ts", "-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("duration_ts: {out:?}"))
}

#[tokio::test]
async fn the_container_declares_the_exact_length_and_formats_lists_m4a() {
    let (_p, c, token) = platform_with_formats().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, fixture) in good_inputs().into_iter().filter(|(n, _)| ["wav", "mp4 h264+aac", "0.3 s clip", "mono 22.05 kHz"].contains(n)) {
        let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=m4a").await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "{name}: {job}");
        let path = dir.path().join(format!("{id}.m4a"));
        std::fs::write(&path, c.download(&token, &id).await.1).unwrap();
        let got = probe(&path);
        let source_frames = (job["output"]["duration_secs"].as_f64().unwrap() * f64::from(got.sample_rate)).round() as u64;
        assert_eq!(declared_frames(&path), source_frames, "{name}: the edit list presents exactly the source");
        assert!(got.decoded_frames >= source_frames && got.decoded_frames < source_frames + 1024, "{name}: {got:?}");
    }
}

#[tokio::test]
async fn bitrate_sets_the_size_and_options_m4a_does_not_take_are_refused() {
    let (_p, c, token) = platform_with_formats().await;
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| *n == "mp4 h264+aac").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for query in ["format=m4a&bitrate=64", "format=m4a&bitrate=256", "format=m4a&vbr=0", "format=m4a&vbr=9"] {
        let id = c.upload_file(&token, &fixture.path, fixture.content_type, query).await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "{query}: {job}");
        let bytes = c.download(&token, &id).await.1;
        let path = dir.path().join(format!("{id}.m4a"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(probe(&path).codec, "aac", "{query}");
        sizes.push(bytes.len());
    }
    assert!(sizes[1] > sizes[0] * 2, "256 kbps ({}) is well over twice 64 kbps ({})", sizes[1], sizes[0]);
    assert!(sizes[2] > sizes[3], "VBR 0 ({}) is larger than VBR 9 ({})", sizes[2], sizes[3]);

    let upload = |query: &'static str| {
        let url = c.url(&format!("/upload?filename=a.mp4&{query}"));
        c.http.post(url).bearer_auth(&token).header("content-type", "video/mp4").body(vec![1u8; 100]).send()
    };
    // Within the platform's range but not a bitrate m4a offers: the detail lists those it does.
    for query in ["format=m4a&bitrate=100", "format=m4a&bitrate=8"] {
        let body = error_body(upload(query).await.unwrap(), 400).await;
        assert_eq!(body["error"], "unsupported option", "{query}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("32, 48, 64"), "the detail lists what m4a takes: {body}");
    }
    // Outside what any format takes.
    assert_eq!(error_body(upload("format=m4a&bitrate=999").await.unwrap(), 400).await["error"], "invalid bitrate");
    error_body(upload("format=m4a&vbr=10").await.unwrap(), 400).await;
}

/// Every tag the platform carries (title, artist, album, year, comment, genre, track) travels
/// from a tagged source into the m4a's iTunes atoms, as FFmpeg reads them back.
#[tokio::test]
async fn every_source_tag_becomes_an_itunes_atom() {
    let (_p, c, token) = platform_with_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tagged.mp3");
    let tags = [
        ("title", "Ünïcødé – 日本語"),
        ("artist", "mp3edge tests"),
        ("album", "The Album"),
        ("date", "2024"),
        ("comment", "a comment"),
        ("genre", "Ambient"),
        ("track", "3/12"),
    ];
    let mut make = Command::new("ffmpeg");
    make.args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1"]);
    for (key, value) in tags {
        make.args(["-metadata", &format!("{key}={value}")]);
    }
    assert!(make.args(["-c:a", "libmp3lame"]).arg(&source).status().unwrap().success());
    let id = c.upload_file(&token, &source, "audio/mpeg", "format=m4a").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    let path = dir.path().join("out.m4a");
    std::fs::write(&path, c.download(&token, &id).await.1).unwrap();
    let got = probe(&path);
    for (key, value) in tags {
        assert_eq!(got.tags.get(key).map(String::as_str), Some(value), "{key}: {:?}", got.tags);
    }
}

/// Inputs that cannot be converted fail their m4a job with a readable reason, once, and leave
/// no output; the plugin keeps serving the next job.
#[tokio::test]
async fn bad_inputs_fail_their_m4a_job_readably() {
    let (_p, c, token) = platform_with_formats().await;
    for (name, path, content_type) in bad_inputs() {
        let id = c.upload_file(&token, &path, content_type, "format=m4a").await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "failed", "{name}: {job}");
        assert!(!job["error"].as_str().unwrap().is_empty(), "{name}: {job}");
        assert_eq!(job["attempts"], 1, "{name}: permanent failures are not retried");
        let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(error_body(res, 409).await["status"], "failed");
    }
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=m4a").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
}

/// The page's player plays m4a in Chromium, streamed from a signed link (the index is at the end
/// of the file, so this needs Range), and Chromium's decoder applies the whole edit list: exactly
/// the source's frames come out.
#[tokio::test]
async fn chromium_plays_m4a_and_decodes_exactly_the_source_length() {
    let root = workspace_root();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(std::path::Path::new(&chromium).is_file(), "{chromium} is missing: run `make setup`");
    assert!(
        root.join("tests/browser/node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `make setup` (npm ci --prefix tests/browser)"
    );
    let (p, c, token) = platform_with_formats().await;
    let mut links = Vec::new();
    let mut expected = Vec::new();
    // 44.1 kHz sources, mono and stereo, of 2 s and 0.3 s.
    for (name, fixture) in good_inputs().into_iter().filter(|(n, _)| ["wav", "mp4 h264+aac", "0.3 s clip"].contains(n)) {
        let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=m4a").await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "{name}: {job}");
        let res = c.http.post(c.url(&format!("/jobs/{id}/link"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link: serde_json::Value = res.json().await.unwrap();
        links.push(link["url"].as_str().unwrap().to_string());
        let frames = (job["output"]["duration_secs"].as_f64().unwrap() * 44100.0).round() as u64;
        expected.push((name, frames, u64::from(fixture.channels)));
    }
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    let run = tokio::process::Command::new(&node)
        .arg(root.join("tests/browser/decode.mjs"))
        .env("BASE_URL", &p.base_url)
        .env("LINKS", serde_json::to_string(&links).unwrap())
        .env("MIME", "audio/mp4; codecs=\"mp4a.40.2\"")
        .env("RATE", "44100")
        .env("CHROMIUM", &chromium)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run).await.expect("Chromium finishes").expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "decode.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), expected.len(), "{stdout}");
    for (got, (name, frames, channels)) in results.iter().zip(expected) {
        assert_eq!(got["canPlayType"], "probably", "{name}: {got}");
        assert_eq!(got["played"], true, "{name}: the player plays it: {got}");
        assert_eq!(got["frames"].as_u64(), Some(frames), "{name}: Chromium decodes exactly the source: {got}");
        assert_eq!(got["channels"].as_u64(), Some(channels), "{name}: {got}");
        let duration = got["duration"].as_f64().unwrap();
        assert!((duration - frames as f64 / 44100.0).abs() < 0.001, "{name}: the player's duration: {got}");
    }
}

#[tokio::test]
async fn m4a_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "m4a",
        rate_for: |rate| rate,
        tolerance_frames: 0,
        tags: true,
        cover: true,
    })
    .await;
}
