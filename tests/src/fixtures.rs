//! Media fixtures made by the real `ffmpeg` encoders on first use and kept under
//! `target/test-fixtures/` (inside the clone), so every container and codec the platform
//! promises is exercised without committing binaries.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// A generated input and what it holds.
pub struct Fixture {
    pub path: PathBuf,
    /// Seconds of audio (None: no audio at all).
    pub duration: Option<f64>,
    pub sample_rate: u32,
    pub channels: u16,
    pub content_type: &'static str,
}

fn dir() -> PathBuf {
    let dir = workspace_root().join("target/test-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    dir
}

fn sine(seconds: f64, rate: u32, freq: u32) -> Vec<String> {
    ["-f", "lavfi", "-i"].iter().map(|s| s.to_string()).chain([format!("sine=frequency={freq}:sample_rate={rate}:duration={seconds}")]).collect()
}

fn video(seconds: f64) -> Vec<String> {
    ["-f", "lavfi", "-i"].iter().map(|s| s.to_string()).chain([format!("testsrc=size=160x120:rate=10:duration={seconds}")]).collect()
}

/// Runs ffmpeg once per output file; concurrent tests race harmlessly through a rename.
fn make(name: &str, inputs: Vec<String>, args: &[&str]) -> PathBuf {
    let path = dir().join(name);
    if path.exists() {
        return path;
    }
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir().join(format!("tmp-{}-{n}-{name}", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-nostdin"])
        .args(&inputs)
        .args(args)
        .args(["-metadata", "title=mp3edge fixture", "-metadata", "artist=mp3edge tests"])
        .arg(&tmp)
        .status()
        .expect("ffmpeg is installed (make setup)");
    assert!(status.success(), "ffmpeg failed to make {name}");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn with(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    a.into_iter().chain(b).collect()
}

const H264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];

/// Every good input the platform promises to convert.
pub fn good_inputs() -> Vec<(&'static str, Fixture)> {
    let d = 2.0;
    let av = |a: f64| with(video(a), sine(a, 44100, 440));
    let f = |path: PathBuf, duration: f64, rate: u32, channels: u16, ct: &'static str| Fixture {
        path,
        duration: Some(duration),
        sample_rate: rate,
        channels,
        content_type: ct,
    };
    vec![
        ("mp4 h264+aac", f(make("clip.mp4", av(d), &[H264, &["-c:a", "aac", "-ac", "2", "-shortest"]].concat()), d, 44100, 2, "video/mp4")),
        ("webm vp9+opus", f(make("clip.webm", av(d), &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-shortest"]), d, 48000, 1, "video/webm")),
        ("mkv h264+vorbis", f(make("clip.mkv", av(d), &[H264, &["-c:a", "libvorbis", "-shortest"]].concat()), d, 44100, 1, "video/x-matroska")),
        ("mov h264+aac", f(make("clip.mov", av(d), &[H264, &["-c:a", "aac", "-shortest"]].concat()), d, 44100, 1, "video/quicktime")),
        ("avi mpeg4+mp3", f(make("clip.avi", av(d), &["-c:v", "mpeg4", "-c:a", "libmp3lame", "-shortest"]), d, 44100, 1, "video/x-msvideo")),
        ("mpeg-ts h264+aac", f(make("clip.ts", av(d), &[H264, &["-c:a", "aac", "-f", "mpegts", "-shortest"]].concat()), d, 44100, 1, "video/mp2t")),
        ("flv flv1+mp3", f(make("clip.flv", av(d), &["-c:v", "flv", "-c:a", "libmp3lame", "-shortest"]), d, 44100, 1, "video/x-flv")),
        ("wav", f(make("tone.wav", sine(d, 44100, 440), &["-c:a", "pcm_s16le"]), d, 44100, 1, "audio/wav")),
        ("mp3", f(make("tone.mp3", sine(d, 44100, 440), &["-c:a", "libmp3lame"]), d, 44100, 1, "audio/mpeg")),
        ("ogg vorbis", f(make("tone.ogg", sine(d, 44100, 440), &["-c:a", "libvorbis"]), d, 44100, 1, "audio/ogg")),
        ("m4a aac", f(make("tone.m4a", sine(d, 44100, 440), &["-c:a", "aac"]), d, 44100, 1, "audio/mp4")),
        ("mono 22.05 kHz", f(make("mono22k.mp4", with(video(d), sine(d, 22050, 440)), &[H264, &["-c:a", "aac", "-ac", "1", "-ar", "22050", "-shortest"]].concat()), d, 22050, 1, "video/mp4")),
        (
            "6 channels 48 kHz",
            f(make("surround.mkv", sine(d, 48000, 440), &["-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", "-c:a", "aac", "-ar", "48000"]), d, 48000, 6, "video/x-matroska"),
        ),
        ("0.3 s clip", f(make("short.mp4", with(video(0.3), sine(0.3, 44100, 440)), &[H264, &["-c:a", "aac", "-shortest"]].concat()), 0.3, 44100, 1, "video/mp4")),
        (
            "two audio tracks",
            f(
                make(
                    "two-tracks.mkv",
                    with(with(video(d), sine(d, 44100, 440)), sine(d, 48000, 880)),
                    &["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "mpeg4", "-c:a", "libvorbis", "-disposition:a:0", "default", "-disposition:a:1", "0"],
                ),
                d,
                44100,
                1,
                "video/x-matroska",
            ),
        ),
    ]
}

/// Inputs that must fail their job with a readable reason.
pub fn bad_inputs() -> Vec<(&'static str, PathBuf, &'static str)> {
    let no_audio = make("no-audio.mp4", video(1.0), H264);
    let full = make("for-truncation.mp4", with(video(2.0), sine(2.0, 44100, 440)), &[H264, &["-c:a", "aac", "-shortest"]].concat());
    let truncated = dir().join("truncated.mp4");
    if !truncated.exists() {
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() * 6 / 10]).unwrap();
    }
    let random = dir().join("random.bin");
    if !random.exists() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&random, bytes).unwrap();
    }
    vec![("no audio stream", no_audio, "video/mp4"), ("truncated mp4", truncated, "video/mp4"), ("random bytes", random, "application/octet-stream")]
}

/// A long input for the worker-death test and the benchmark: `seconds` of 640x360 H.264 + AAC.
pub fn long_video(name: &str, seconds: u32, size: &str) -> PathBuf {
    make(
        name,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("testsrc=size={size}:rate=25:duration={seconds}"),
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency=440:sample_rate=44100:duration={seconds}"),
        ],
        &[H264, &["-crf", "35", "-g", "250", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest"]].concat(),
    )
}

/// What a generated test signal sounds like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A pure tone (997 Hz, and 1499 Hz on a second channel): any seam shows in it.
    Tone,
    /// Music-like: two tones, one beating, and noise that swells and fades.
    Music,
}

/// A lossless FLAC of `signal`, so the decoded source is exactly what was generated.
pub fn signal(signal: Signal, seconds: f64, rate: u32, channels: u16) -> PathBuf {
    let one = |c: u16| match signal {
        Signal::Tone => format!("0.4*sin(2*PI*{}*t)", 997 + 502 * u32::from(c)),
        Signal::Music => format!(
            "0.25*sin(2*PI*{}*t)+0.15*sin(2*PI*1375*t)*(0.5+0.5*sin(2*PI*2*t))+0.3*(random({c})-0.5)*(0.5+0.5*sin(2*PI*0.7*t))",
            220 + 110 * u32::from(c)
        ),
    };
    let exprs: Vec<String> = (0..channels).map(one).collect();
    make(
        &format!("signal-{signal:?}-{seconds}s-{rate}-{channels}ch.flac").to_lowercase(),
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("aevalsrc=exprs={}:s={rate}:d={seconds}", exprs.join("|")),
        ],
        &["-c:a", "flac"],
    )
}

/// CRC-32, as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A Matroska file of a few kilobytes whose two PNG video frames are 16000 × 16000 pixels
/// (three quarters of a gigabyte each, decoded), with three seconds of audio: a 320 × 256 PNG
/// video whose sizes are rewritten in the track header, the bitmap header and each PNG's
/// `IHDR` (with its CRC). A decoder that believes them allocates the frame before it finds
/// the image data short.
pub fn pixel_bomb() -> PathBuf {
    let path = dir().join("pixel-bomb.mkv");
    if path.exists() {
        return path;
    }
    let source = make(
        "pixel-bomb-source.mkv",
        with(
            ["-f", "lavfi", "-i"].iter().map(|s| s.to_string()).chain(["testsrc=size=320x256:rate=1:duration=2".to_string()]).collect(),
            sine(3.0, 44100, 440),
        ),
        &["-c:v", "png", "-c:a", "pcm_s16le"],
    );
    let mut data = std::fs::read(source).unwrap();
    let mut replace = |from: &[u8], to: &[u8]| {
        let mut count = 0;
        let mut at = 0;
        while let Some(found) = data[at..].windows(from.len()).position(|w| w == from) {
            data[at + found..at + found + to.len()].copy_from_slice(to);
            count += 1;
            at += found + to.len();
        }
        count
    };
    assert_eq!(replace(&[0xB0, 0x82, 0x01, 0x40], &[0xB0, 0x82, 0x3E, 0x80]), 1, "PixelWidth 320");
    assert_eq!(replace(&[0xBA, 0x82, 0x01, 0x00], &[0xBA, 0x82, 0x3E, 0x80]), 1, "PixelHeight 256");
    replace(&[40, 0, 0, 0, 0x40, 1, 0, 0, 0, 1, 0, 0], &[40, 0, 0, 0, 0x80, 0x3E, 0, 0, 0x80, 0x3E, 0, 0]);
    let mut frames = 0;
    let mut at = 0;
    while let Some(found) = data[at..].windows(8).position(|w| w == [0, 0, 0, 13, b'I', b'H', b'D', b'R']) {
        let chunk = at + found + 4;
        data[chunk + 4..chunk + 8].copy_from_slice(&16000u32.to_be_bytes());
        data[chunk + 8..chunk + 12].copy_from_slice(&16000u32.to_be_bytes());
        let crc = crc32(&data[chunk..chunk + 17]);
        data[chunk + 17..chunk + 21].copy_from_slice(&crc.to_be_bytes());
        frames += 1;
        at = chunk + 21;
    }
    assert_eq!(frames, 2, "two PNG frames");
    let tmp = dir().join(format!("tmp-{}-pixel-bomb.mkv", std::process::id()));
    std::fs::write(&tmp, &data).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// `seconds` of mono 8 kHz silence as WavPack: a few kilobytes for hours of audio.
pub fn wavpack_silence(seconds: u32) -> PathBuf {
    let input = ["-f", "lavfi", "-i"].iter().map(|s| s.to_string()).chain([format!("anullsrc=r=8000:cl=mono:d={seconds}")]).collect();
    make(&format!("silence-{seconds}s.wv"), input, &["-c:a", "wavpack"])
}
