//! The Ogg formats end to end: `opus` (libopus) and `ogg` (Vorbis) pass the conversion suite
//! every format passes (every input of the worker tests, the exact length, tags, a seek), read
//! back by FFmpeg; their options change the output as promised, and options they do not take
//! are refused at upload with 400; a format swapped between the two plugins at run time follows.

use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::probe::probe;
use e2e_tests::suite::{FormatExpectations, convert_every_input};
use e2e_tests::*;

#[tokio::test]
async fn opus_passes_the_conversion_suite_read_back_by_ffmpeg() {
    convert_every_input(FormatExpectations {
        query: "format=opus",
        content_type: "audio/ogg",
        codec: "opus",
        rate_for: |_| 48_000,
        max_channels: 8,
        tolerance_frames: 0,
        tags: true,
    })
    .await;
}

#[tokio::test]
async fn ogg_vorbis_passes_the_conversion_suite_read_back_by_ffmpeg() {
    convert_every_input(FormatExpectations {
        query: "format=ogg",
        content_type: "audio/ogg",
        codec: "vorbis",
        rate_for: |rate| rate,
        max_channels: 8,
        tolerance_frames: 0,
        tags: true,
    })
    .await;
}

#[tokio::test]
async fn bitrate_and_quality_change_the_size_and_bad_options_are_refused() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("ogg-options@example.com").await;
    // The worker publishes what its plugins take; both Ogg formats are listed with their options.
    // Listed with the options the worker's plugins declare (not yet known before it publishes).
    let opus = c.published_format("opus", |f| f["format"] == "opus" && f["bitrates"].is_array()).await;
    let ogg = c.published_format("ogg", |f| f["format"] == "ogg" && f["bitrates"].is_array()).await;
    assert!(opus["bitrates"].as_array().unwrap().contains(&serde_json::json!(128)), "{opus}");
    assert_eq!(opus["vbr"], false, "{opus}");
    assert!(ogg["bitrates"].as_array().unwrap().contains(&serde_json::json!(128)), "{ogg}");
    assert_eq!(ogg["vbr"], true, "{ogg}");

    let upload = |query: &'static str| {
        let url = c.url(&format!("/upload?filename=a.wav&{query}"));
        c.http.post(url).bearer_auth(&token).header("content-type", "audio/wav").body(vec![1u8; 100]).send()
    };
    for query in ["format=opus&bitrate=100", "format=opus&vbr=2", "format=ogg&bitrate=100"] {
        let body = error_body(upload(query).await.unwrap(), 400).await;
        assert_eq!(body["error"], "unsupported option", "{query}: {body}");
    }
    // Out of every format's range: refused before the plugin's list is consulted.
    for query in ["format=opus&bitrate=510", "format=ogg&vbr=10"] {
        error_body(upload(query).await.unwrap(), 400).await;
    }

    // The same source at opposite settings: the output size follows.
    let inputs = good_inputs();
    let (_, source) = inputs.iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for query in ["format=opus&bitrate=24", "format=opus&bitrate=256", "format=ogg&vbr=9", "format=ogg&vbr=0", "format=ogg&bitrate=64", "format=ogg&bitrate=256"] {
        let id = c.upload_file(&token, &source.path, source.content_type, query).await;
        let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "done", "{query}: {job}");
        let (headers, bytes) = c.download(&token, &id).await;
        let extension = if query.contains("opus") { ".opus" } else { ".ogg" };
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(extension), "{query}: {disposition}");
        let path = dir.path().join(format!("{id}.out"));
        std::fs::write(&path, &bytes).unwrap();
        // Whatever the setting, the length stays that of the decoded source.
        let got = probe(&path);
        let source_frames = (job["output"]["duration_secs"].as_f64().unwrap() * f64::from(got.sample_rate)).round() as u64;
        assert_eq!(got.decoded_frames, source_frames, "{query}: {got:?}");
        eprintln!("{query}: {} bytes", bytes.len());
        sizes.push((query, bytes.len()));
    }
    for pair in sizes.chunks(2) {
        let ((small_query, small), (big_query, big)) = (pair[0], pair[1]);
        assert!(big > small * 2, "{small_query}: {small} bytes, {big_query}: {big} bytes");
    }
}

#[tokio::test]
async fn swapping_a_format_between_the_ogg_plugins_takes_effect_for_the_next_job() {
    let wasm = |name: &str| workspace_root().join("target/wasm32-wasip2/release").join(name);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    // Written then renamed, so the worker never reads half a file.
    let map_to = |file: &str| {
        let tmp = plugins.join("codecs.toml.tmp");
        std::fs::write(&tmp, format!("[formats.audio]\nplugin = {:?}\n", wasm(file).display().to_string())).unwrap();
        std::fs::rename(tmp, plugins.join("codecs.toml")).unwrap();
    };
    map_to("codec_opus.wasm");
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let _worker = p.start_worker(&["--plugins", plugins.to_str().unwrap()]);
    let c = Client::new(&p);
    let token = c.new_user("ogg-swap@example.com").await;
    let inputs = good_inputs();
    let (_, source) = inputs.iter().find(|(name, _)| *name == "wav").unwrap();
    let out = tempfile::tempdir().unwrap();
    let convert = async |expected_codec: &str| {
        let id = c.upload_file(&token, &source.path, source.content_type, "format=audio").await;
        let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "done", "{job}");
        let path = out.path().join(format!("{id}.out"));
        std::fs::write(&path, c.download(&token, &id).await.1).unwrap();
        assert_eq!(probe(&path).codec, expected_codec);
    };
    convert("opus").await;
    map_to("codec_vorbis.wasm");
    // The worker reloads the mapping before its next job; the edge learns it is `vorbis` now.
    c.published_format("the vorbis mapping", |f| f["codec"] == "vorbis").await;
    convert("vorbis").await;
}

#[tokio::test]
async fn opus_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "opus",
        rate_for: |_| 48000,
        tolerance_frames: 0,
        tags: true,
        cover: true,
    })
    .await;
}

#[tokio::test]
async fn ogg_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "ogg",
        rate_for: |rate| rate,
        tolerance_frames: 0,
        tags: true,
        cover: true,
    })
    .await;
}
