//! The audio options of issue 8 through the real platform (gateway, Redis queue, worker with
//! native FFmpeg and the real codec plugins), every output read back by FFmpeg
//! (`e2e_tests::probe`): sample-accurate trims (also after a seek into a long file), rate and
//! channels, the track of a file with two, loudness normalization measured by FFmpeg's own
//! `ebur128` meter, tag overrides, the options and streams shown by `GET /jobs/{id}`, retry
//! with new options, and a precise 400 for every bad value or combination.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::probe::{self, Probe};
use e2e_tests::*;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// An input of this file's own, made once by ffmpeg under `target/test-fixtures/`.
fn fixture(name: &str, args: &[&str]) -> PathBuf {
    let dir = workspace_root().join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if !path.exists() {
        let tmp = dir.join(format!("tmp-{}-{name}", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-y", "-v", "error", "-nostdin"])
            .args(args)
            .args(["-metadata", "title=fixture title", "-metadata", "artist=fixture artist"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg is installed (make setup)");
        assert!(status.success(), "ffmpeg failed to make {name}");
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn good(name: &str) -> PathBuf {
    good_inputs().into_iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no fixture {name}")).1.path
}

/// A 40 s sawtooth (0 → 0.9 every second) at 44.1 kHz: where a trim starts can be read from
/// the first sample's value.
fn sawtooth(ext: &str, codec: &[&str]) -> PathBuf {
    let mut args = vec!["-f", "lavfi", "-i", "aevalsrc=exprs=0.9*mod(t\\,1):s=44100:d=40"];
    args.extend_from_slice(codec);
    fixture(&format!("options-sawtooth.{ext}"), &args)
}

struct Session {
    _platform: Platform,
    client: Client,
    token: String,
    dir: tempfile::TempDir,
}

impl Session {
    async fn start(user: &str) -> Session {
        let platform = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
        let client = Client::new(&platform);
        let token = client.new_user(user).await;
        Session { _platform: platform, client, token, dir: tempfile::tempdir().unwrap() }
    }

    /// Waits until the worker has published what its plugins take (so plugin checks apply).
    async fn await_formats(&self) {
        self.client.published_format("mp3", |f| f["format"] == "mp3" && f["sample_rates"].is_array()).await;
    }

    async fn upload(&self, path: &Path, content_type: &str, query: &str) -> String {
        self.client.upload_file(&self.token, path, content_type, query).await
    }

    /// Uploads, waits, and returns the finished job record.
    async fn convert(&self, path: &Path, content_type: &str, query: &str) -> serde_json::Value {
        let id = self.upload(path, content_type, query).await;
        self.client.wait_for_job(&self.token, &id, JOB_TIMEOUT).await
    }

    /// Converts and reads the output back: (job, probe, output file).
    async fn convert_ok(&self, path: &Path, content_type: &str, query: &str) -> (serde_json::Value, Probe, PathBuf) {
        let job = self.convert(path, content_type, query).await;
        assert_eq!(job["status"], "done", "{query}: {job}");
        let id = job["id"].as_str().unwrap();
        let (_, bytes) = self.client.download(&self.token, id).await;
        let out = self.dir.path().join(format!("{id}.{}", job["output"]["extension"].as_str().unwrap_or("bin")));
        std::fs::write(&out, bytes).unwrap();
        (job, probe::probe(&out), out)
    }

    /// Uploads with `query` and expects a 400 titled `error` whose detail mentions `detail`.
    /// The user's jobs and stored bytes, to show that a refused upload left nothing.
    async fn holdings(&self) -> (usize, u64) {
        let jobs: serde_json::Value = self.client.http.get(self.client.url("/jobs?limit=200")).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
        let me: serde_json::Value = self.client.http.get(self.client.url("/users/me")).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
        (jobs.as_array().unwrap().len(), me["used_bytes"].as_u64().unwrap())
    }

    async fn refused(&self, query: &str, error: &str, detail: &str) {
        let before = self.holdings().await;
        let url = self.client.url(&format!("/upload?filename=tone.wav&{query}"));
        let res = self
            .client
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "audio/wav")
            .body(vec![0u8; 64])
            .send()
            .await
            .unwrap();
        let body = error_body(res, 400).await;
        assert_eq!(body["error"], error, "{query}: {body}");
        let got = body["detail"].as_str().unwrap();
        assert!(got.contains(detail), "{query}: detail {got:?} should mention {detail:?}");
        assert_eq!(self.holdings().await, before, "{query}: the refused upload left a job or bytes");
    }
}

/// Frequency of a mono signal from its zero crossings.
fn frequency(samples: &[f32], rate: u32) -> f64 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(rate))
}

#[tokio::test]
async fn trims_are_exact_to_the_sample_and_after_a_seek() {
    let s = Session::start("trim@example.com").await;
    let tone = good("wav");
    // WAV: exactly 0.75 s × 44100.
    let (job, p, _) = s.convert_ok(&tone, "audio/wav", "format=wav&start=0.5&end=1.25").await;
    assert_eq!(p.decoded_frames, 33075, "{job}");
    assert_eq!(job["options"]["start_secs"], 0.5);
    assert_eq!(job["options"]["end_secs"], 1.25);
    assert!((job["output"]["duration_secs"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    // hh:mm:ss.mmm works the same.
    let (_, p, _) = s.convert_ok(&tone, "audio/wav", "format=wav&start=00:00:00.500&end=00:00:01.250").await;
    assert_eq!(p.decoded_frames, 33075);
    // mp3: within one codec frame (the decoder removes LAME's padding from the info frame).
    let (_, p, _) = s.convert_ok(&tone, "audio/wav", "format=mp3&start=0.5&end=1.25").await;
    assert!(p.decoded_frames.abs_diff(33075) <= 1152, "mp3 trim: {} frames", p.decoded_frames);
    // Only a start, only an end.
    let (_, p, _) = s.convert_ok(&tone, "audio/wav", "format=wav&start=1.5").await;
    assert_eq!(p.decoded_frames, 22050);
    let (_, p, _) = s.convert_ok(&tone, "audio/wav", "format=wav&end=0.25").await;
    assert_eq!(p.decoded_frames, 11025);

    // A late start seeks: the length stays exact and the first sample is the right one.
    let saw = sawtooth("wav", &["-c:a", "pcm_s16le"]);
    let (_, p, out) = s.convert_ok(&saw, "audio/wav", "format=wav&start=25.25&end=26.75").await;
    assert_eq!(p.decoded_frames, 66150);
    let pcm = probe::decode_f32(&out);
    assert!((pcm[0] - 0.225).abs() < 1e-3, "first sample {} should be the sawtooth at 25.25 s (0.225)", pcm[0]);
    // The same through AAC (lossy, with its own run-up before the seek point).
    let saw_aac = sawtooth("m4a", &["-c:a", "aac", "-b:a", "192k"]);
    let (_, p, out) = s.convert_ok(&saw_aac, "audio/mp4", "format=wav&start=25.25&end=26.75").await;
    assert_eq!(p.decoded_frames, 66150);
    let pcm = probe::decode_f32(&out);
    let mean: f32 = pcm[..441].iter().sum::<f32>() / 441.0;
    assert!((mean - 0.2295).abs() < 0.01, "first 10 ms average {mean} should be about 0.2295");

    // A start past the end fails the job with a reason, and the streams are still recorded.
    let job = s.convert(&tone, "audio/wav", "format=wav&start=5").await;
    assert_eq!(job["status"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("trim starts at 5") && error.contains("ends at 2"), "{error}");
    assert_eq!(job["media"]["audio_streams"].as_array().unwrap().len(), 1, "{job}");

    // Retry takes new options: the same job, now with a start inside the audio.
    let id = job["id"].as_str().unwrap();
    let res = s
        .client
        .http
        .post(s.client.url(&format!("/jobs/{id}/retry?format=wav&start=1&end=1.5")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let job = s.client.wait_for_job(&s.token, id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["options"]["start_secs"], 1.0);
    assert!((job["output"]["duration_secs"].as_f64().unwrap() - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn rate_channels_and_track_are_honoured() {
    let s = Session::start("layout@example.com").await;
    // Stereo 44.1 kHz video → mono 22.05 kHz mp3.
    let (job, p, _) = s.convert_ok(&good("mp4 h264+aac"), "video/mp4", "format=mp3&rate=22050&channels=1").await;
    assert_eq!((p.codec.as_str(), p.sample_rate, p.channels), ("mp3", 22050, 1), "{job}");
    assert!((p.decoded_frames as f64 / 22050.0 - 2.0).abs() < 0.1, "{p:?}");
    assert_eq!(job["options"]["sample_rate"], 22050);
    assert_eq!(job["options"]["channels"], 1);
    // 5.1 → stereo 16 kHz WAV (rates are free for WAV).
    let (_, p, _) = s.convert_ok(&good("6 channels 48 kHz"), "video/x-matroska", "format=wav&rate=16000&channels=2").await;
    assert_eq!((p.sample_rate, p.channels), (16000, 2));
    assert!((p.decoded_frames as f64 / 16000.0 - 2.0).abs() < 0.05, "{p:?}");
    // Mono 22.05 kHz up to stereo 48 kHz.
    let (_, p, _) = s.convert_ok(&good("mono 22.05 kHz"), "video/mp4", "format=wav&rate=48000&channels=2").await;
    assert_eq!((p.sample_rate, p.channels), (48000, 2));
    // A 0.3 s clip trimmed and resampled.
    let (_, p, _) = s.convert_ok(&good("0.3 s clip"), "video/mp4", "format=wav&rate=8000&start=0.1&end=0.2").await;
    assert_eq!((p.sample_rate, p.decoded_frames), (8000, 800));

    // The second audio track (880 Hz, 48 kHz) of a file with two; both are listed.
    let two = good("two audio tracks");
    let (job, p, out) = s.convert_ok(&two, "video/x-matroska", "format=wav&track=1").await;
    assert_eq!(p.sample_rate, 48000);
    let hz = frequency(&probe::decode_f32(&out), 48000);
    assert!((hz - 880.0).abs() < 20.0, "track 1 should be the 880 Hz tone, got {hz:.0} Hz");
    let streams = job["media"]["audio_streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{job}");
    assert_eq!((streams[0]["index"].as_u64(), streams[0]["default"].as_bool()), (Some(0), Some(true)));
    assert_eq!((streams[1]["sample_rate"].as_u64(), streams[1]["default"].as_bool()), (Some(48000), Some(false)));
    assert_eq!(streams[1]["codec"], "vorbis");
    assert_eq!(job["media"]["video"], true);
    // Without a track, the default (440 Hz) one.
    let (_, _, out) = s.convert_ok(&two, "video/x-matroska", "format=wav").await;
    let hz = frequency(&probe::decode_f32(&out), 44100);
    assert!((hz - 440.0).abs() < 20.0, "the default track is the 440 Hz tone, got {hz:.0} Hz");
    // A track the file does not have fails the job, naming what it has.
    let job = s.convert(&two, "video/x-matroska", "format=wav&track=9").await;
    assert_eq!(job["status"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("track 9") && error.contains("2 audio streams"), "{error}");
    assert_eq!(job["media"]["audio_streams"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn normalization_lands_on_the_target_under_the_ceiling() {
    let s = Session::start("loud@example.com").await;
    let noise = fixture(
        "options-pink.wav",
        &["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.05:duration=8:sample_rate=48000:seed=7", "-ac", "2", "-c:a", "pcm_s16le"],
    );
    let (before, _) = probe::loudness(&noise);
    for (target, format) in [(-16.0, "wav"), (-23.0, "wav"), (-16.0, "mp3")] {
        let (job, _, out) = s.convert_ok(&noise, "audio/wav", &format!("format={format}&normalize={target}")).await;
        let (lufs, peak) = probe::loudness(&out);
        assert!((lufs - target).abs() <= 1.0, "{format} normalize={target}: measured {lufs} LUFS (source {before})");
        if format == "wav" {
            assert!(peak <= -1.0 + 0.1, "true peak {peak} dBTP over the -1 dBTP ceiling");
        }
        let report = &job["loudness"];
        assert_eq!(report["target_lufs"], target, "{job}");
        assert!((report["measured_lufs"].as_f64().unwrap() - before).abs() < 1.0, "{report} vs ffmpeg's {before}");
        assert_eq!(job["options"]["normalize"]["true_peak_dbtp"], -1.0);
    }
    // Silence: no gain, and a record without infinities.
    let silence = fixture("options-silence.wav", &["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "2", "-c:a", "pcm_s16le"]);
    let (job, p, _) = s.convert_ok(&silence, "audio/wav", "format=wav&normalize=-16").await;
    assert_eq!(p.decoded_frames, 88200);
    assert_eq!(job["loudness"]["gain_db"], 0.0, "{job}");
    assert!(job["loudness"].get("measured_lufs").is_none(), "{job}");
    // A ceiling that binds: the gain stops at it, the report says so.
    let tone = good("wav");
    let (job, _, out) = s.convert_ok(&tone, "audio/wav", "format=wav&normalize=-5&true_peak=-6").await;
    let (lufs, peak) = probe::loudness(&out);
    assert!(peak <= -6.0 + 0.1, "true peak {peak} over -6 dBTP");
    assert!(lufs < -8.0, "the ceiling keeps it under the target: {lufs}");
    let report = &job["loudness"];
    assert!((report["output_true_peak_dbtp"].as_f64().unwrap() + 6.0).abs() < 0.01, "{report}");
    assert!((report["output_lufs"].as_f64().unwrap() - lufs).abs() < 0.5, "{report} vs ffmpeg's {lufs}");
}

#[tokio::test]
async fn tags_override_the_source() {
    let s = Session::start("tags@example.com").await;
    let tone = good("mp3");
    let (job, p, _) = s.convert_ok(&tone, "audio/mpeg", "format=mp3&title=New%20title&album=An%20album").await;
    assert_eq!(p.tags.get("title").map(String::as_str), Some("New title"), "{:?}", p.tags);
    assert_eq!(p.tags.get("album").map(String::as_str), Some("An album"));
    // Not overridden: the source's.
    assert_eq!(p.tags.get("artist").map(String::as_str), Some("mp3edge tests"));
    assert_eq!(job["options"]["title"], "New title");
    let (_, p, _) = s.convert_ok(&tone, "audio/mpeg", "format=mp3&artist=%C3%89milie").await;
    assert_eq!(p.tags.get("artist").map(String::as_str), Some("Émilie"));
}

#[tokio::test]
async fn bad_values_and_combinations_are_precise_400s() {
    let s = Session::start("bad@example.com").await;
    s.await_formats().await;
    let long_title = format!("title={}", "x".repeat(201));
    let cases: &[(&str, &str, &str)] = &[
        ("start=abc", "invalid start", "hh:mm:ss.mmm"),
        ("start=-1", "invalid start", "seconds"),
        ("end=1:75", "invalid end", "under 60"),
        ("start=2&end=1", "invalid trim", "after start"),
        ("start=2&end=2", "invalid trim", "after start"),
        ("rate=12345", "invalid rate", "44100"),
        ("format=mp3&rate=96000", "unsupported option", "mp3 takes a rate of"),
        ("channels=3", "invalid channels", "1 (mono) or 2"),
        ("channels=0", "invalid channels", "1 (mono) or 2"),
        ("track=-1", "invalid track", "0 to 63"),
        ("track=99", "invalid track", "0 to 63"),
        ("normalize=abc", "invalid normalize", "LUFS"),
        ("normalize=3", "invalid normalize", "LUFS"),
        ("true_peak=-1", "conflicting options", "normalize"),
        ("normalize=-16&true_peak=2", "invalid true_peak", "dBTP"),
        (&long_title, "invalid title", "at most 200"),
        ("artist=", "invalid artist", "empty"),
        ("album=a%07b", "invalid album", "control"),
        ("cover=maybe", "invalid cover", "none or auto"),
        ("level=99", "invalid level", "0 to 12"),
        ("format=mp3&level=5", "unsupported option", "no compression levels"),
    ];
    for (query, error, detail) in cases {
        s.refused(query, error, detail).await;
    }
    // Every option is recorded on the job and shown by GET /jobs/{id}.
    let id = s
        .upload(
            &good("wav"),
            "audio/wav",
            "format=mp3&start=0.1&end=1&rate=22050&channels=1&track=0&normalize=podcast&true_peak=-2&title=T&artist=A&album=B&cover=none",
        )
        .await;
    let job = s.client.wait_for_job(&s.token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    let o = &job["options"];
    assert_eq!((o["start_secs"].as_f64(), o["end_secs"].as_f64()), (Some(0.1), Some(1.0)));
    assert_eq!((o["sample_rate"].as_u64(), o["channels"].as_u64(), o["track"].as_u64()), (Some(22050), Some(1), Some(0)));
    assert_eq!((o["normalize"]["target_lufs"].as_f64(), o["normalize"]["true_peak_dbtp"].as_f64()), (Some(-16.0), Some(-2.0)));
    assert_eq!((o["title"].as_str(), o["artist"].as_str(), o["album"].as_str()), (Some("T"), Some("A"), Some("B")));
    assert_eq!(o["cover"], false);
    assert!(job["loudness"]["measured_lufs"].is_number(), "{job}");
}

#[tokio::test]
async fn cover_is_a_lit_frame_of_the_video_unless_refused() {
    let s = Session::start("cover@example.com").await;
    // Two black seconds before the picture: the cover must not be black.
    let video = fixture(
        "options-black-intro.mp4",
        &[
            "-f", "lavfi", "-i", "color=black:size=640x360:rate=10:duration=2",
            "-f", "lavfi", "-i", "testsrc=size=640x360:rate=10:duration=6",
            "-f", "lavfi", "-i", "sine=duration=8",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ],
    );
    let (_, p, out) = s.convert_ok(&video, "video/mp4", "format=mp3").await;
    assert!(p.has_cover, "{p:?}");
    assert_eq!(probe::cover_size(&out), Some((500, 280)), "scaled to 500 px wide, 16:9, even sides");
    let gray = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&out)
        .args(["-map", "0:v", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    let mean = gray.stdout.iter().map(|&v| f64::from(v)).sum::<f64>() / gray.stdout.len().max(1) as f64;
    assert!(mean > 40.0, "the cover is not the black intro (mean luma {mean})");
    // cover=none: none.
    let (job, p, out) = s.convert_ok(&video, "video/mp4", "format=mp3&cover=none").await;
    assert!(!p.has_cover && probe::cover_size(&out).is_none());
    assert_eq!(job["options"]["cover"], false);
    // An audio-only source: none.
    let (_, p, _) = s.convert_ok(&good("m4a aac"), "audio/mp4", "format=mp3").await;
    assert!(!p.has_cover);
    // WAV has no place for one: the job still succeeds.
    let (_, p, _) = s.convert_ok(&video, "video/mp4", "format=wav").await;
    assert!(!p.has_cover);
}

#[tokio::test]
async fn mp3_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "mp3",
        rate_for: |rate| rate,
        tolerance_frames: 1152,
        tags: true,
        cover: true,
    })
    .await;
}

#[tokio::test]
async fn wav_passes_the_options_suite() {
    e2e_tests::options_suite::audio_options_hold(e2e_tests::options_suite::OptionExpectations {
        format: "wav",
        rate_for: |rate| rate,
        tolerance_frames: 0,
        tags: false,
        cover: false,
    })
    .await;
}

/// The bitrate of every MPEG audio frame of an MP3 file after its first (LAME's info frame),
/// read from the frame headers.
fn mp3_frame_bitrates(bytes: &[u8]) -> Vec<u32> {
    const MPEG1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let mut at = 0;
    if bytes.starts_with(b"ID3") {
        let size = bytes[6..10].iter().fold(0usize, |n, &b| (n << 7) | usize::from(b & 0x7f));
        at = 10 + size;
    }
    let mut rates = Vec::new();
    while at + 4 <= bytes.len() && bytes[at] == 0xff && bytes[at + 1] & 0xe0 == 0xe0 {
        let mpeg1 = bytes[at + 1] & 0x18 == 0x18;
        let kbps = if mpeg1 { MPEG1 } else { MPEG2 }[usize::from(bytes[at + 2] >> 4).min(14)];
        let rate = [[11025, 12000, 8000], [22050, 24000, 16000], [44100, 48000, 32000]]
            [match bytes[at + 1] & 0x18 { 0x18 => 2, 0x10 => 1, _ => 0 }][usize::from((bytes[at + 2] >> 2) & 3).min(2)];
        let padding = usize::from((bytes[at + 2] >> 1) & 1);
        let length = (if mpeg1 { 144_000 } else { 72_000 } * kbps / rate) as usize + padding;
        rates.push(kbps);
        if length == 0 {
            break;
        }
        at += length;
    }
    rates.into_iter().skip(1).collect()
}

#[tokio::test]
async fn bitrates_follow_the_output_rate() {
    let s = Session::start("bitrates@example.com").await;
    let mp3 = s.client.published_format("mp3", |f| f["format"] == "mp3" && f["bitrates_by_rate"].is_object()).await;
    let at = |rate: &str| mp3["bitrates_by_rate"][rate].as_array().unwrap().iter().map(|k| k.as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(at("44100"), [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], "{mp3}");
    assert_eq!(at("22050"), [32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], "{mp3}");
    assert_eq!(at("8000"), [32, 40, 48, 56, 64], "{mp3}");
    // Asked for at a rate that cannot carry it: refused before it is a job.
    s.refused("format=mp3&bitrate=144&rate=44100", "unsupported option", "mp3 at 44100 Hz takes a bitrate of 32, 40").await;
    s.refused("format=mp3&bitrate=320&rate=22050", "unsupported option", "mp3 at 22050 Hz takes").await;
    // At a rate that carries it, every frame has it.
    let (job, p, out) = s.convert_ok(&good("mp4 h264+aac"), "video/mp4", "format=mp3&bitrate=144&rate=22050&cover=none").await;
    assert_eq!((p.sample_rate, job["options"]["bitrate_kbps"].as_u64()), (22050, Some(144)), "{job}");
    let frames = mp3_frame_bitrates(&std::fs::read(&out).unwrap());
    assert!(frames.len() > 50 && frames.iter().all(|&k| k == 144), "{frames:?}");
    // Without a rate, the 44.1 kHz source's decides, and the job fails saying why.
    let job = s.convert(&good("mp4 h264+aac"), "video/mp4", "format=mp3&bitrate=144").await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("144 kbps is not an MP3 bitrate at 44100 Hz") && error.contains("128, 160"), "{error}");
    // AAC's ceiling (6 bits per sample and channel) and libvorbis's setups, likewise.
    let m4a = s.client.published_format("m4a", |f| f["format"] == "m4a" && f["bitrates_by_rate"].is_object()).await;
    assert_eq!(m4a["bitrates_by_rate"]["8000"], serde_json::json!([32, 48, 64, 80, 96]), "{m4a}");
    s.refused("format=m4a&bitrate=320&rate=8000", "unsupported option", "m4a at 8000 Hz takes a bitrate of 32, 48, 64, 80, 96 kbps, not 320").await;
    let ogg = s.client.published_format("ogg", |f| f["format"] == "ogg" && f["bitrates_by_rate"].is_object()).await;
    assert!(!ogg["bitrates_by_rate"]["8000"].as_array().unwrap().contains(&serde_json::json!(320)), "{ogg}");
    s.refused("format=ogg&bitrate=320&rate=8000", "unsupported option", "ogg at 8000 Hz takes a bitrate of").await;
    // A listed bitrate at the source's rate is what the file has.
    let (_, _, out) = s.convert_ok(&good("mp4 h264+aac"), "video/mp4", "format=mp3&bitrate=160&cover=none").await;
    let frames = mp3_frame_bitrates(&std::fs::read(&out).unwrap());
    assert!(frames.len() > 50 && frames.iter().all(|&k| k == 160), "{frames:?}");
}
