//! AIFF end to end, from the plugin written in C (`components/codec-aiff-c`): the real platform
//! converts with it in Wasmtime and FFmpeg reads the results back (as `pcm_s16be`). It shows the
//! plugin WIT does not depend on Rust; its committed C bindings are checked against the WIT here.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e_tests::suite::{FormatExpectations, convert_every_input};
use e2e_tests::*;

#[tokio::test]
async fn aiff_from_c_passes_the_conversion_suite_read_back_by_ffmpeg() {
    convert_every_input(FormatExpectations {
        query: "format=aiff",
        content_type: "audio/aiff",
        codec: "pcm_s16be",
        rate_for: |rate| rate,
        max_channels: 2,
        tolerance_frames: 0,
        tags: true,
    })
    .await;
}

#[tokio::test]
async fn aiff_is_bit_exact_and_carries_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tagged.wav");
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg("aevalsrc=0.4*sin(440*2*PI*t)+0.05*random(0)|0.3*sin(660*2*PI*t):s=48000:d=3.5")
        .args(["-c:a", "pcm_s16le", "-metadata", "title=Tone", "-metadata", "artist=mp3edge tests"])
        .args(["-metadata", "album=Fixtures", "-metadata", "genre=Test", "-metadata", "track=2", "-metadata", "date=2024"])
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("aiff@example.com").await;
    let id = c.upload_file(&token, &source, "audio/wav", "format=aiff").await;
    let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "done", "{job}");
    let (headers, aiff) = c.download(&token, &id).await;
    assert_eq!(headers["content-type"], "audio/aiff");
    assert!(aiff.starts_with(b"FORM") && &aiff[8..12] == b"AIFF");
    let out = dir.path().join("out.aiff");
    std::fs::write(&out, &aiff).unwrap();
    assert_eq!(e2e_tests::probe::pcm_md5(&out), e2e_tests::probe::pcm_md5(&source), "the same PCM as the source");
    let got = probe::probe(&out);
    assert_eq!((got.codec.as_str(), got.sample_rate, got.channels), ("pcm_s16be", 48000, 2));
    assert_eq!(got.decoded_frames, 3 * 48000 + 24000);
    for (key, value) in [("title", "Tone"), ("artist", "mp3edge tests"), ("album", "Fixtures"), ("genre", "Test"), ("track", "2")] {
        assert_eq!(got.tags.get(key).map(String::as_str), Some(value), "{key}: {:?}", got.tags);
    }
}

#[tokio::test]
async fn formats_lists_aiff_from_the_c_plugin() {
    let p = Platform::start_with(PlatformOptions::default()).unwrap();
    let c = Client::new(&p);
    let aiff = c.published_format("aiff", |f| f["format"] == "aiff" && f["codec"] == "aiff-c").await;
    assert_eq!(aiff["content_type"], "audio/aiff", "{aiff}");
    assert_eq!(aiff["extension"], "aiff", "{aiff}");
    assert_eq!(aiff["bitrates"], serde_json::json!([]), "{aiff}");
}

fn wit_bindgen() -> Option<PathBuf> {
    let local = workspace_root().join("target/tools/bin/wit-bindgen");
    if local.is_file() {
        return Some(local);
    }
    Command::new("wit-bindgen").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| PathBuf::from("wit-bindgen"))
}

/// The C bindings are generated once and committed (so building the plugin needs no Rust
/// tool); whenever `wit-bindgen` is at hand, they must be what it generates from the WIT now.
#[test]
fn aiff_c_bindings_are_what_wit_bindgen_generates_from_the_wit() {
    let Some(tool) = wit_bindgen() else {
        eprintln!("wit-bindgen not installed (cargo install --locked --root target/tools --version 0.51.0 --no-default-features --features c wit-bindgen-cli): bindings not rechecked");
        return;
    };
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(&tool)
        .args(["c", "--no-object-file", "--out-dir"])
        .arg(dir.path())
        .arg(root.join("wit/codec"))
        .status()
        .unwrap();
    assert!(status.success());
    for file in ["codec_plugin.c", "codec_plugin.h"] {
        let fresh = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let committed = std::fs::read_to_string(root.join("components/codec-aiff-c/bindings").join(file)).unwrap();
        assert!(fresh == committed, "components/codec-aiff-c/bindings/{file} is stale: run `make -C components/codec-aiff-c bindings`");
    }
}

#[tokio::test]
async fn aiff_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "aiff",
        rate_for: |rate| rate,
        tolerance_frames: 0,
        tags: true,
        cover: false,
    })
    .await;
}
