//! The conversion suite every output format passes: every good input of the worker tests and a
//! three-minute video, converted through the real platform, read back with FFmpeg (`probe`) and
//! held to the same promises: the codec and content type the format declares, the rate and
//! channels the plugin keeps, the exact duration, tags carried from the source, and a seek into
//! the middle that decodes. A format's test is one call with what is particular to it.

use std::time::Duration;

use crate::fixtures::{Fixture, good_inputs, long_video};
use crate::probe::probe;
use crate::{Client, Platform, PlatformOptions};

/// What a format promises, for [`convert_every_input`].
pub struct FormatExpectations {
    /// The `format=` value (and any other query options, e.g. `format=opus&bitrate=96`).
    pub query: &'static str,
    /// The download's `Content-Type`.
    pub content_type: &'static str,
    /// The codec `ffprobe` names (`mp3`, `flac`, `opus`, `vorbis`, `aac`, `pcm_s16le`).
    pub codec: &'static str,
    /// The output rate for a source at this rate (e.g. Opus always 48 kHz).
    pub rate_for: fn(u32) -> u32,
    /// Most channels the format keeps (sources with more are downmixed).
    pub max_channels: u32,
    /// Allowed difference in frames between the output's decoded length and the source's.
    pub tolerance_frames: u64,
    /// Whether tags from the source must be read back.
    pub tags: bool,
}

/// Converts every good input to the format and checks each output (see the module doc).
pub async fn convert_every_input(expect: FormatExpectations) {
    let variables = [("user_max_active_jobs".to_string(), "0".to_string())].into();
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, variables, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("suite@example.com").await;
    let mut inputs = good_inputs();
    // And a long file: three minutes of 160x120 H.264 with stereo AAC.
    let long = Fixture {
        path: long_video("suite-3min.mp4", 180, "160x120"),
        duration: Some(180.0),
        sample_rate: 44100,
        channels: 2,
        content_type: "video/mp4",
    };
    inputs.push(("3-minute video", long));
    let mut jobs = Vec::new();
    for (name, fixture) in &inputs {
        jobs.push((name, fixture, c.upload_file(&token, &fixture.path, fixture.content_type, expect.query).await));
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, fixture, id) in jobs {
        let what = format!("{name} → {}", expect.query);
        let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "done", "{what}: {job}");
        let (headers, bytes) = c.download(&token, &id).await;
        assert_eq!(headers["content-type"], expect.content_type, "{what}");
        assert_eq!(job["output"]["size"].as_u64().unwrap(), bytes.len() as u64, "{what}");
        let path = dir.path().join(format!("{id}.out"));
        std::fs::write(&path, &bytes).unwrap();
        let got = probe(&path);
        assert_eq!(got.codec, expect.codec, "{what}");
        let rate = (expect.rate_for)(fixture.sample_rate);
        assert_eq!(got.sample_rate, rate, "{what}");
        assert_eq!(got.channels, u32::from(fixture.channels).min(expect.max_channels), "{what}");
        // The decoded source (what FFmpeg gave the encoder) is the reference.
        let source_secs = job["output"]["duration_secs"].as_f64().unwrap();
        assert!((source_secs - fixture.duration.unwrap()).abs() < 0.05, "{what}: decoded source lasts {source_secs}s");
        let source_frames = (source_secs * f64::from(rate)).round() as i64;
        let diff = (got.decoded_frames as i64 - source_frames).unsigned_abs();
        assert!(diff <= expect.tolerance_frames, "{what}: decodes to {} frames, source {source_frames}", got.decoded_frames);
        if let Some(declared) = got.duration_secs {
            assert!((declared - source_secs).abs() < 0.1, "{what}: declares {declared}s, source {source_secs}s");
        }
        // MPEG-TS carries no tags to copy.
        if expect.tags && !name.starts_with("mpeg-ts") {
            assert_eq!(got.tags.get("title").map(String::as_str), Some("mp3edge fixture"), "{what}: {:?}", got.tags);
            assert_eq!(got.tags.get("artist").map(String::as_str), Some("mp3edge tests"), "{what}: {:?}", got.tags);
        }
        assert_seekable(&path, source_secs, &what);
    }
}

/// A seek to the middle decodes (what a player does when the user drags the slider).
pub fn assert_seekable(path: &std::path::Path, secs: f64, what: &str) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-ss", &format!("{:.3}", secs / 2.0), "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{what}: seeking fails: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty(), "{what}: nothing decodes after a seek to the middle");
}
