//! End-to-end tests of the decoder on small fixtures made with the `ffmpeg` CLI (lavfi
//! sources), served through an in-memory chunk source with 4 KiB chunks so reads and seeks
//! cross chunk boundaries all the time.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

const CHUNK: usize = 4096;

struct MemSource {
    data: Vec<u8>,
    chunk_size: usize,
    reads: AtomicU64,
}

impl ChunkSource for MemSource {
    fn read_range(&self, index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let start = index as usize * self.chunk_size;
        anyhow::ensure!(start < self.data.len(), "chunk {index} out of range");
        Ok(ValueRange::of(&self.data[start..(start + self.chunk_size).min(self.data.len())], offset, len))
    }
}

fn layout_for(len: usize, chunk_size: usize) -> SourceLayout {
    SourceLayout {
        size: len as u64,
        chunks: len.div_ceil(chunk_size) as u32,
        chunk_size: chunk_size as u32,
    }
}

/// `data` as a stored source of 4 KiB chunks, for tests elsewhere in the demuxer.
pub(super) fn source(data: Vec<u8>) -> (Arc<dyn ChunkSource>, SourceLayout) {
    let layout = layout_for(data.len(), CHUNK);
    (Arc::new(MemSource { data, chunk_size: CHUNK, reads: AtomicU64::new(0) }), layout)
}

struct Decoded {
    info: MediaInfo,
    format: (u32, u8),
    pcm: Vec<i16>,
    reads: u64,
    chunks: u64,
}

impl Decoded {
    fn frames(&self) -> usize {
        self.pcm.len() / usize::from(self.format.1)
    }
    fn secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.format.0)
    }
}

fn decode(data: Vec<u8>, request: OutputRequest) -> Result<Decoded, String> {
    let layout = layout_for(data.len(), CHUNK);
    let chunks = u64::from(layout.chunks);
    let source = Arc::new(MemSource {
        data,
        chunk_size: CHUNK,
        reads: AtomicU64::new(0),
    });
    let mut decoder = Decoder::open(source.clone(), layout, request)?;
    let format = decoder.output_format();
    let mut pcm = Vec::new();
    loop {
        let block = decoder.read(1000)?;
        if block.is_empty() {
            break;
        }
        assert_eq!(block.len() % usize::from(format.1), 0, "whole frames only");
        assert!(block.len() <= 1000 * usize::from(format.1));
        pcm.extend_from_slice(&block);
    }
    assert!(decoder.read(1000)?.is_empty(), "stays at end of stream");
    Ok(Decoded {
        info: decoder.info().clone(),
        format,
        pcm,
        reads: source.reads.load(Ordering::Relaxed),
        chunks,
    })
}

fn decode_ok(data: Vec<u8>, request: OutputRequest) -> Decoded {
    decode(data, request).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

/// Runs the ffmpeg CLI with `args` and the output file `name` (in `dir`); returns its bytes.
pub(super) fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&path)
        .status()
        .expect("the ffmpeg CLI is needed to build test fixtures");
    assert!(status.success(), "ffmpeg failed to make {name}");
    std::fs::read(path).unwrap()
}

pub(super) fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

const VIDEO_2S: [&str; 4] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=160x120:rate=10:duration=2",
];
const SINE_2S: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"];
const TAGS: [&str; 10] = [
    "-metadata",
    "title=Test Title",
    "-metadata",
    "artist=Some Artist",
    "-metadata",
    "album=An Album",
    "-metadata",
    "date=2021-06-01",
    "-metadata",
    "comment=hello",
];
const X264: [&str; 6] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
];

fn args<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

/// Decoded length within 5 ms of `expected`, plus up to `padding` seconds more: the codec's
/// last-frame padding (or priming) that the container does not signal, which FFmpeg 5.1 (and
/// so the ffmpeg CLI too) keeps, e.g. AAC in MP4/MKV/TS, MP3 in AVI/FLV.
fn assert_secs(d: &Decoded, expected: f64, padding: f64) {
    let got = d.secs();
    assert!(
        got >= expected - 0.005 && got <= expected + padding + 0.005,
        "decoded {got:.4} s, expected {expected} s (+ up to {padding} s of codec padding)"
    );
}

/// One AAC frame at 44.1 kHz: the trailing padding FFmpeg 5.1 leaves on AAC from MP4/MOV.
const AAC_PAD: f64 = 1024.0 / 44100.0;

/// Frames the ffmpeg CLI decodes from `path` (first audio track) at `rate`/`channels`: the
/// same libraries, so the decoder must return exactly as much audio.
fn cli_frames(path: &Path, rate: u32, channels: u8) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:0",
            "-ar",
            &rate.to_string(),
            "-ac",
            &channels.to_string(),
            "-f",
            "s16le",
            "-",
        ])
        .output()
        .expect("ffmpeg CLI");
    assert!(out.status.success());
    out.stdout.len() / 2 / usize::from(channels)
}

fn assert_not_silent(d: &Decoded) {
    let peak = d.pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(peak > 1000, "audio is (nearly) silent: peak {peak}");
}

#[test]
fn demux_mp4_moov_at_end_with_tags() {
    let dir = tmp();
    let data = ffmpeg(
        dir.path(),
        "a.mp4",
        &args(&[
            &VIDEO_2S,
            &SINE_2S,
            &X264,
            &["-c:a", "aac", "-ac", "2"],
            &TAGS,
        ]),
    );
    let moov_at_end =
        data.windows(4).position(|w| w == b"moov") > data.windows(4).position(|w| w == b"mdat");
    assert!(moov_at_end);
    let d = decode_ok(data, OutputRequest::default());
    assert_eq!(d.info.container, "mp4");
    assert_eq!(d.info.codec, "aac");
    assert_eq!(
        (d.info.sample_rate, d.info.channels, d.info.audio_streams),
        (44100, 2, 1)
    );
    assert_eq!(d.format, (44100, 2));
    let duration = d.info.duration_secs.unwrap();
    assert!((duration - 2.0).abs() < 0.05, "duration {duration}");
    let tags = &d.info.tags;
    assert_eq!(tags.title.as_deref(), Some("Test Title"));
    assert_eq!(tags.artist.as_deref(), Some("Some Artist"));
    assert_eq!(tags.album.as_deref(), Some("An Album"));
    assert_eq!(tags.year.as_deref(), Some("2021"));
    assert_eq!(tags.comment.as_deref(), Some("hello"));
    assert_secs(&d, 2.0, AAC_PAD);
    assert_eq!(d.frames(), cli_frames(&dir.path().join("a.mp4"), 44100, 2));
    assert_not_silent(&d);
    eprintln!(
        "moov at end: {} chunk reads for {} chunks",
        d.reads, d.chunks
    );
    // Random access must not degenerate into re-reading the file many times.
    assert!(
        d.reads <= 3 * d.chunks + 8,
        "{} chunk reads for {} chunks",
        d.reads,
        d.chunks
    );
}

#[test]
fn demux_mp4_faststart_and_resample() {
    let dir = tmp();
    let data = ffmpeg(
        dir.path(),
        "a.mp4",
        &args(&[
            &VIDEO_2S,
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=2:sample_rate=48000",
            ],
            &X264,
            &[
                "-c:a",
                "aac",
                "-ac",
                "6",
                "-movflags",
                "+faststart",
                "-metadata",
                "title=Fast",
            ],
        ]),
    );
    let d = decode_ok(
        data,
        OutputRequest {
            sample_rate: Some(44100),
            channels: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(d.info.container, "mp4");
    assert_eq!((d.info.sample_rate, d.info.channels), (48000, 6));
    assert_eq!(d.info.tags.title.as_deref(), Some("Fast"));
    assert_eq!(d.format, (44100, 2));
    assert_secs(&d, 2.0, 1024.0 / 48000.0);
    let cli = cli_frames(&dir.path().join("a.mp4"), 44100, 2);
    assert!(
        d.frames().abs_diff(cli) <= 2,
        "{} frames, the CLI gives {cli}",
        d.frames()
    );
    assert_not_silent(&d);
    assert!(
        d.reads <= 3 * d.chunks + 8,
        "{} chunk reads for {} chunks",
        d.reads,
        d.chunks
    );
}

#[test]
fn demux_webm_mkv_mov() {
    let dir = tmp();
    let webm = ffmpeg(
        dir.path(),
        "a.webm",
        &args(&[
            &VIDEO_2S,
            &SINE_2S,
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "100k",
                "-c:a",
                "libopus",
            ],
            &TAGS,
        ]),
    );
    let d = decode_ok(webm, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("webm", "opus")
    );
    assert_eq!((d.info.sample_rate, d.info.channels), (48000, 1));
    assert_eq!(d.info.tags.artist.as_deref(), Some("Some Artist"));
    assert_secs(&d, 2.0, 0.0);
    assert_not_silent(&d);

    let mkv = ffmpeg(
        dir.path(),
        "a.mkv",
        &args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "libvorbis"], &TAGS]),
    );
    let d = decode_ok(
        mkv,
        OutputRequest {
            sample_rate: None,
            channels: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("matroska", "vorbis")
    );
    assert_eq!(d.format, (44100, 2));
    assert_eq!(d.info.tags.title.as_deref(), Some("Test Title"));
    // Vorbis in Matroska: FFmpeg 5.1 keeps the last packet's padding (the CLI too).
    assert_secs(&d, 2.0, 0.015);
    // Mono upmixed to stereo: both channels carry the same signal.
    assert!(d.pcm.chunks(2).all(|f| f[0] == f[1]));
    assert_not_silent(&d);

    let mov = ffmpeg(
        dir.path(),
        "a.mov",
        &args(&[
            &VIDEO_2S,
            &SINE_2S,
            &["-c:v", "mpeg4", "-c:a", "aac"],
            &TAGS,
        ]),
    );
    let d = decode_ok(mov, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("mov", "aac")
    );
    assert_eq!(d.info.tags.title.as_deref(), Some("Test Title"));
    assert_secs(&d, 2.0, AAC_PAD);
}

#[test]
fn demux_avi_ts_flv() {
    let dir = tmp();
    let avi = ffmpeg(
        dir.path(),
        "a.avi",
        &args(&[
            &VIDEO_2S,
            &SINE_2S,
            &["-c:v", "mpeg4", "-c:a", "libmp3lame"],
            &TAGS,
        ]),
    );
    let d = decode_ok(avi, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("avi", "mp3")
    );
    assert_eq!(d.info.tags.title.as_deref(), Some("Test Title"));
    // MP3 in AVI carries no gapless info: the encoder delay/padding stays (< 2 MP3 frames).
    assert_secs(&d, 2.0, 2.0 * 1152.0 / 44100.0);
    assert_not_silent(&d);

    let ts = ffmpeg(
        dir.path(),
        "a.ts",
        &args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "aac"]]),
    );
    let d = decode_ok(
        ts,
        OutputRequest {
            sample_rate: Some(22050),
            channels: None,
            ..Default::default()
        },
    );
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("mpegts", "aac")
    );
    assert_eq!(d.format, (22050, 1));
    // Raw ADTS in TS keeps the AAC priming frame (1024 samples at 44.1 kHz).
    assert_secs(&d, 2.0, 2.0 * AAC_PAD);
    assert_not_silent(&d);

    let flv = ffmpeg(
        dir.path(),
        "a.flv",
        &args(&[&VIDEO_2S, &SINE_2S, &["-c:v", "flv", "-c:a", "libmp3lame"]]),
    );
    let d = decode_ok(flv, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("flv", "mp3")
    );
    assert_secs(&d, 2.0, 2.0 * 1152.0 / 44100.0);
    assert_not_silent(&d);
}

#[test]
fn demux_audio_only_formats() {
    let dir = tmp();
    let wav = ffmpeg(
        dir.path(),
        "a.wav",
        &args(&[&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2:sample_rate=48000",
            "-ac",
            "6",
            "-c:a",
            "pcm_s16le",
        ]]),
    );
    let d = decode_ok(
        wav,
        OutputRequest {
            sample_rate: Some(44100),
            channels: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("wav", "pcm_s16le")
    );
    assert_eq!((d.info.sample_rate, d.info.channels), (48000, 6));
    assert_eq!(d.format, (44100, 2));
    assert_eq!(
        d.frames(),
        88200,
        "PCM resampled with the resampler flushed: exact length"
    );
    assert_not_silent(&d);

    let mp3 = ffmpeg(
        dir.path(),
        "a.mp3",
        &args(&[&SINE_2S, &["-c:a", "libmp3lame"], &TAGS]),
    );
    let d = decode_ok(mp3, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("mp3", "mp3")
    );
    assert_eq!(d.info.tags.album.as_deref(), Some("An Album"));
    assert_eq!(d.info.tags.year.as_deref(), Some("2021"));
    assert_secs(&d, 2.0, 0.0);

    let ogg = ffmpeg(
        dir.path(),
        "a.ogg",
        &args(&[&SINE_2S, &["-c:a", "libvorbis"], &TAGS]),
    );
    let d = decode_ok(ogg, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("ogg", "vorbis")
    );
    assert_eq!(d.info.tags.title.as_deref(), Some("Test Title"));
    assert_eq!(d.info.tags.comment.as_deref(), Some("hello"));
    assert_secs(&d, 2.0, 0.0);

    let m4a = ffmpeg(
        dir.path(),
        "a.m4a",
        &args(&[&SINE_2S, &["-c:a", "aac"], &TAGS]),
    );
    let d = decode_ok(m4a, OutputRequest::default());
    assert_eq!(
        (d.info.container.as_str(), d.info.codec.as_str()),
        ("m4a", "aac")
    );
    assert_eq!(d.info.tags.artist.as_deref(), Some("Some Artist"));
    assert_secs(&d, 2.0, AAC_PAD);
}

#[test]
fn demux_mono_22k_to_stereo_44k_and_short_clip() {
    let dir = tmp();
    let wav = ffmpeg(
        dir.path(),
        "a.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=22050",
            "-c:a",
            "pcm_s16le",
        ],
    );
    let d = decode_ok(
        wav,
        OutputRequest {
            sample_rate: Some(44100),
            channels: Some(2),
            ..Default::default()
        },
    );
    assert_eq!((d.info.sample_rate, d.info.channels), (22050, 1));
    assert_eq!(d.format, (44100, 2));
    assert_eq!(d.frames(), 44100);
    assert!(d.pcm.chunks(2).all(|f| f[0] == f[1]));
    assert_not_silent(&d);

    let clip = ffmpeg(
        dir.path(),
        "clip.mp4",
        &args(&[
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10:duration=0.3",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=0.3",
            ],
            &X264,
            &["-c:a", "aac"],
        ]),
    );
    let d = decode_ok(clip, OutputRequest::default());
    assert_secs(&d, 0.3, AAC_PAD);
    assert_not_silent(&d);
}

#[test]
fn demux_picks_default_of_two_audio_tracks() {
    let dir = tmp();
    let mkv = ffmpeg(
        dir.path(),
        "two.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=22050",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:duration=1:sample_rate=48000",
            "-map",
            "0:a",
            "-map",
            "1:a",
            "-c:a",
            "aac",
            "-ac:a:1",
            "2",
            "-disposition:a:0",
            "0",
            "-disposition:a:1",
            "default",
        ],
    );
    let d = decode_ok(mkv, OutputRequest::default());
    assert_eq!(d.info.audio_streams, 2);
    assert_eq!(
        (d.info.sample_rate, d.info.channels),
        (48000, 2),
        "the track flagged default"
    );
    // AAC in Matroska: neither priming nor padding is signalled in FFmpeg 5.1's muxer.
    assert_secs(&d, 1.0, 2048.0 / 48000.0);
}

fn open_err(data: Vec<u8>) -> String {
    match decode(data, OutputRequest::default()) {
        Ok(d) => panic!(
            "expected an error, decoded {:.3} s of {}",
            d.secs(),
            d.info.container
        ),
        Err(e) => {
            eprintln!("expected error: {e}");
            e
        }
    }
}

#[test]
fn demux_failures_are_clean_errors() {
    let dir = tmp();
    let video_only = ffmpeg(dir.path(), "v.mp4", &args(&[&VIDEO_2S, &X264]));
    assert_eq!(open_err(video_only), "the file has no audio stream");

    let full = ffmpeg(
        dir.path(),
        "end.mp4",
        &args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "aac"]]),
    );
    let e = open_err(full[..full.len() * 6 / 10].to_vec());
    assert!(e.starts_with("the file is truncated or corrupt"), "{e}");

    let fast = ffmpeg(
        dir.path(),
        "start.mp4",
        &args(&[
            &VIDEO_2S,
            &SINE_2S,
            &X264,
            &["-c:a", "aac", "-movflags", "+faststart"],
        ]),
    );
    let e = open_err(fast[..fast.len() * 6 / 10].to_vec());
    assert!(e.starts_with("the file is truncated or corrupt"), "{e}");

    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let e = open_err(random);
    assert!(
        e == "not a media file FFmpeg can read" || e.starts_with("the file"),
        "{e}"
    );

    assert_eq!(open_err(Vec::new()), "the file is empty");

    let text = "Hello,\nthis is just a text file with some words in it.\n"
        .repeat(50)
        .into_bytes();
    let e = open_err(text);
    assert!(
        e == "not a media file FFmpeg can read" || e == "the file has no audio stream",
        "{e}"
    );
}

struct Failing {
    panic: bool,
}

impl ChunkSource for Failing {
    fn read_range(&self, index: u32, _offset: u64, _len: usize) -> anyhow::Result<ValueRange> {
        if self.panic {
            panic!("boom at {index}");
        }
        anyhow::bail!("storage unavailable")
    }
}

#[test]
fn demux_storage_errors_and_panics_are_reported() {
    for panic in [false, true] {
        let result = Decoder::open(
            Arc::new(Failing { panic }),
            layout_for(10_000, CHUNK),
            OutputRequest::default(),
        );
        let e = result.err().expect("must fail");
        assert!(e.starts_with("could not read the uploaded file"), "{e}");
    }
    let e = Decoder::open(
        Arc::new(Failing { panic: false }),
        layout_for(100, CHUNK),
        OutputRequest {
            sample_rate: Some(0),
            channels: None,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(e.contains("sample rate"), "{e}");
}

/// Serves the real file but fails from chunk `fail_from` on (a storage outage mid-decode).
struct FailsLater {
    inner: MemSource,
    fail_from: u32,
}

impl ChunkSource for FailsLater {
    fn read_range(&self, index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange> {
        anyhow::ensure!(index < self.fail_from, "storage went away");
        self.inner.read_range(index, offset, len)
    }
}

#[test]
fn demux_storage_error_mid_stream_is_an_error() {
    let dir = tmp();
    let wav = ffmpeg(
        dir.path(),
        "a.wav",
        &args(&[&SINE_2S, &["-c:a", "pcm_s16le"]]),
    );
    let layout = layout_for(wav.len(), CHUNK);
    let source = FailsLater {
        inner: MemSource {
            data: wav,
            chunk_size: CHUNK,
            reads: AtomicU64::new(0),
        },
        fail_from: 20,
    };
    let mut decoder = Decoder::open(Arc::new(source), layout, OutputRequest::default()).unwrap();
    let e = loop {
        match decoder.read(4096) {
            Ok(block) => assert!(!block.is_empty(), "must not end cleanly"),
            Err(e) => break e,
        }
    };
    assert!(
        e.starts_with("could not read the uploaded file") && e.contains("storage went away"),
        "{e}"
    );
    assert_eq!(decoder.read(4096).unwrap_err(), e, "the error sticks");
}

#[test]
fn demux_decoder_is_send() {
    fn send<T: Send>() {}
    send::<Decoder>();
}

/// The conversions to integer PCM round half away from zero and clip, exactly as rounding with
/// `f32::round`/`f64::round` would, for every kind of value a decoder can give.
#[test]
fn integer_pcm_rounds_half_away_from_zero_and_clips() {
    let s16 = |x: f32| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
    let s24 = |x: f32| (f64::from(x) * 8_388_608.0).round().clamp(-8_388_608.0, 8_388_607.0) as i32;
    let mut values = vec![0.0f32, -0.0, 1.0, -1.0, 1.5, -1.5, 2.0, -2.0, 1e-30, -1e-30, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN];
    // Every half step and its neighbours, over the whole s16 range and past it.
    for n in -33_000i32..33_000 {
        let half = (n as f32 + 0.5) / 32768.0;
        values.extend([half, f32::from_bits(half.to_bits() + 1), f32::from_bits(half.to_bits() - 1), n as f32 / 32768.0]);
        let half24 = ((n * 257) as f64 + 0.5) / 8_388_608.0;
        values.push(half24 as f32);
    }
    // And a spread of arbitrary values (a fixed pseudo-random walk over the bit patterns).
    let mut bits = 0x1234_5678u32;
    for _ in 0..200_000 {
        bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        values.push(f32::from_bits(bits & 0xbfff_ffff) * 2.0);
    }
    for x in values {
        assert_eq!(super::to_s16(x), s16(x), "s16 of {x:e}");
        assert_eq!(super::to_s24(x), s24(x), "s24 of {x:e}");
    }
}
