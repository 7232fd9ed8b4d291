//! FLAC end to end: the real platform converts with the `codec-flac` plugin in Wasmtime, and
//! FFmpeg reads the results back. FLAC is lossless, so the suite holds it to exact lengths, and
//! the file's own STREAMINFO MD5 must be the MD5 of what FFmpeg decodes from the source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_tests::suite::{FormatExpectations, convert_every_input};
use e2e_tests::*;

#[tokio::test]
async fn flac_passes_the_conversion_suite_read_back_by_ffmpeg() {
    convert_every_input(FormatExpectations {
        query: "format=flac",
        content_type: "audio/flac",
        codec: "flac",
        rate_for: |rate| rate,
        max_channels: 8,
        tolerance_frames: 0,
        tags: true,
    })
    .await;
}

/// A 25-second stereo WAV with noise (so frames differ) and tags, made by FFmpeg.
fn long_wav(dir: &Path) -> PathBuf {
    let path = dir.join("long.wav");
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg("aevalsrc=0.4*sin(440*2*PI*t)+0.05*random(0)|0.3*sin(660*2*PI*t):s=44100:d=25")
        .args(["-c:a", "pcm_s16le", "-metadata", "title=Long tone", "-metadata", "artist=mp3edge tests"])
        .args(["-metadata", "album=Fixtures", "-metadata", "genre=Test", "-metadata", "track=4/9"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    path
}

/// The metadata blocks (type, body) and the offset of the first frame.
fn blocks(flac: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    assert_eq!(&flac[..4], b"fLaC", "FLAC marker");
    let (mut at, mut list) = (4, Vec::new());
    loop {
        let last = flac[at] & 0x80 != 0;
        let len = u32::from_be_bytes([0, flac[at + 1], flac[at + 2], flac[at + 3]]) as usize;
        list.push((flac[at] & 0x7F, flac[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
        if last {
            return (list, at);
        }
    }
}

#[tokio::test]
async fn flac_is_bit_exact_with_totals_md5_seek_table_and_vorbis_comments() {
    let dir = tempfile::tempdir().unwrap();
    let source = long_wav(dir.path());
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("flac@example.com").await;
    let id = c.upload_file(&token, &source, "audio/wav", "format=flac").await;
    let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "done", "{job}");
    let (headers, flac) = c.download(&token, &id).await;
    assert_eq!(headers["content-type"], "audio/flac");
    let out = dir.path().join("out.flac");
    std::fs::write(&out, &flac).unwrap();

    let (list, first_frame) = blocks(&flac);
    let kinds: Vec<u8> = list.iter().map(|b| b.0).collect();
    assert_eq!(kinds, [0, 3, 4], "STREAMINFO, SEEKTABLE, VORBIS_COMMENT");
    let info = &list[0].1;
    let total = u64::from_be_bytes(info[10..18].try_into().unwrap()) & 0xF_FFFF_FFFF;
    assert_eq!(total, 25 * 44100, "exact total samples in STREAMINFO");
    let md5: String = info[18..34].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(md5, e2e_tests::probe::pcm_md5(&source), "STREAMINFO MD5 is the source's decoded PCM: bit-exact");
    assert_eq!(e2e_tests::probe::pcm_md5(&out), e2e_tests::probe::pcm_md5(&source), "FFmpeg decodes the same PCM");

    // Seek points every 10 s at frame starts, filled by the header patch.
    let points: Vec<(u64, u64)> = list[1]
        .1
        .chunks(18)
        .map(|p| (u64::from_be_bytes(p[..8].try_into().unwrap()), u64::from_be_bytes(p[8..16].try_into().unwrap())))
        .filter(|p| p.0 != u64::MAX)
        .collect();
    assert_eq!(points.len(), 3, "points at 0, 10 and 20 s: {points:?}");
    for (i, (sample, offset)) in points.iter().enumerate() {
        assert!(*sample >= i as u64 * 441_000 && *sample < i as u64 * 441_000 + 4096, "{points:?}");
        let at = first_frame + *offset as usize;
        assert_eq!(&flac[at..at + 2], &[0xFF, 0xF8], "point {i} is at a frame header");
    }

    let got = probe::probe(&out);
    assert_eq!((got.codec.as_str(), got.sample_rate, got.channels, got.bits_per_sample), ("flac", 44100, 2, 16));
    assert_eq!(got.decoded_frames, 25 * 44100);
    for (key, value) in [("title", "Long tone"), ("artist", "mp3edge tests"), ("album", "Fixtures"), ("genre", "Test"), ("track", "4")] {
        assert_eq!(got.tags.get(key).map(String::as_str), Some(value), "{key}: {:?}", got.tags);
    }
    assert!(got.tags.get("encoder").is_some_and(|e| e.contains("codec-flac")), "{:?}", got.tags);
    suite::assert_seekable(&out, 25.0, "flac");
}

#[tokio::test]
async fn formats_lists_flac_and_uploads_with_options_it_does_not_take_are_refused() {
    let p = Platform::start_with(PlatformOptions::default()).unwrap();
    let c = Client::new(&p);
    let flac = c.published_format("flac", |f| f["format"] == "flac" && f["codec"] == "flac").await;
    assert_eq!(flac["content_type"], "audio/flac", "{flac}");
    assert_eq!(flac["extension"], "flac", "{flac}");
    assert_eq!(flac["bitrates"], serde_json::json!([]), "lossless: no bitrates");
    assert_eq!(flac["vbr"], false, "{flac}");
    let token = c.new_user("flac-options@example.com").await;
    let wav = fixtures::good_inputs().into_iter().find(|(name, _)| *name == "wav").unwrap().1;
    for (query, detail) in [("format=flac&bitrate=192", "takes no bitrate"), ("format=flac&vbr=2", "vbr")] {
        let res = c
            .http
            .post(c.url(&format!("/upload?filename=tone.wav&{query}")))
            .bearer_auth(&token)
            .header("content-type", "audio/wav")
            .body(std::fs::read(&wav.path).unwrap())
            .send()
            .await
            .unwrap();
        let body = error_body(res, 400).await;
        assert!(body["detail"].as_str().unwrap().contains(detail), "{query}: {body}");
    }
}

/// PCM of the first audio stream as FFmpeg decodes it to signed 32-bit (24-bit samples shifted
/// up by 8), for exact comparisons of 24-bit audio.
fn pcm_s32(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn a_24_bit_source_stays_24_bit_and_every_level_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    // 24-bit samples whose low bits matter: a quiet noise floor under the tone.
    let source = dir.path().join("deep.wav");
    let made = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg("aevalsrc=0.5*sin(440*2*PI*t)+0.00002*random(0)|0.25*sin(220*2*PI*t):s=48000:d=3")
        .args(["-c:a", "pcm_s24le"])
        .arg(&source)
        .status()
        .unwrap();
    assert!(made.success());
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("deep@example.com").await;
    let mut sizes = Vec::new();
    for query in ["format=flac&level=0", "format=flac", "format=flac&level=8", "format=aiff"] {
        let id = c.upload_file(&token, &source, "audio/wav", query).await;
        let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "done", "{query}: {job}");
        let (_, bytes) = c.download(&token, &id).await;
        let out = dir.path().join(format!("{}.out", sizes.len()));
        std::fs::write(&out, &bytes).unwrap();
        let got = e2e_tests::probe::probe(&out);
        assert_eq!(got.bits_per_sample, 24, "{query}: {got:?}");
        assert_eq!((got.sample_rate, got.channels, got.decoded_frames), (48000, 2, 144000), "{query}");
        assert!(pcm_s32(&out) == pcm_s32(&source), "{query}: the 24-bit samples differ from the source's");
        sizes.push((query, bytes.len()));
    }
    // Levels trade time for size.
    assert!(sizes[0].1 > sizes[2].1, "{sizes:?}");
    let res = c
        .http
        .post(c.url("/upload?format=flac&level=9"))
        .bearer_auth(&token)
        .header("content-type", "audio/wav")
        .body(std::fs::read(&source).unwrap())
        .send()
        .await
        .unwrap();
    let body = error_body(res, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("level"), "{body}");
}

#[tokio::test]
async fn flac_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "flac",
        rate_for: |rate| rate,
        tolerance_frames: 0,
        tags: true,
        cover: true,
    })
    .await;
}
