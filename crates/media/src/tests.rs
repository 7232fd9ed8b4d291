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

const VIDEO_2S: [&str; 4] = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2"];
const SINE_2S: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"];
const SINE_2S_48K: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=48000"];
const TAGS: [&str; 10] = [
    "-metadata", "title=Test Title", "-metadata", "artist=Some Artist", "-metadata", "album=An Album",
    "-metadata", "date=2021-06-01", "-metadata", "comment=hello",
];
const X264: [&str; 6] = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];
/// One AAC frame at 44.1 kHz: the trailing padding FFmpeg 5.1 leaves on AAC from MP4/MOV.
const AAC_PAD: f64 = 1024.0 / 44100.0;

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

/// How long a decoded fixture must be.
enum Length {
    /// `secs` of audio, plus at most `padding` seconds the codec or container adds.
    Secs(f64, f64),
    /// Exactly this many frames.
    Frames(usize),
    /// What the ffmpeg CLI decodes from the same file at the output format, within `slack`
    /// frames.
    LikeTheCli(usize),
}

/// One fixture of the container suite: how the ffmpeg CLI makes it, what is asked of the
/// decoder, and what must come out.
struct Case<'a> {
    file: &'a str,
    make: Vec<&'a str>,
    request: OutputRequest,
    /// Container and codec as `MediaInfo` names them.
    found: (&'a str, &'a str),
    /// The source's rate and channels, when the case is about them.
    source: Option<(u32, u8)>,
    /// The output's rate and channels, when the case is about them.
    output: Option<(u32, u8)>,
    tags: &'a [(&'a str, &'a str)],
    length: Length,
    /// A mono source upmixed: both channels carry the same signal.
    same_channels: bool,
    /// Random access must not degenerate into re-reading the file many times.
    bounded_reads: bool,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            file: "",
            make: Vec::new(),
            request: OutputRequest::default(),
            found: ("", ""),
            source: None,
            output: None,
            tags: &[],
            length: Length::Secs(2.0, 0.0),
            same_channels: false,
            bounded_reads: false,
        }
    }
}

fn tag<'t>(tags: &'t Tags, name: &str) -> Option<&'t str> {
    match name {
        "title" => tags.title.as_deref(),
        "artist" => tags.artist.as_deref(),
        "album" => tags.album.as_deref(),
        "year" => tags.year.as_deref(),
        "comment" => tags.comment.as_deref(),
        other => panic!("no tag {other} in the suite"),
    }
}

/// Makes each case's fixture in `dir`, decodes it and checks it; returns the decoded output of
/// the last case for checks of its own.
fn check(dir: &Path, cases: Vec<Case>) -> Decoded {
    let mut last = None;
    for case in cases {
        let what = case.file;
        let d = decode_ok(ffmpeg(dir, case.file, &case.make), case.request.clone());
        assert_eq!((d.info.container.as_str(), d.info.codec.as_str()), case.found, "{what}");
        if let Some(source) = case.source {
            assert_eq!((d.info.sample_rate, d.info.channels), source, "{what}: the source");
        }
        if let Some(output) = case.output {
            assert_eq!(d.format, output, "{what}: the output");
        }
        for (name, value) in case.tags {
            assert_eq!(tag(&d.info.tags, name), Some(*value), "{what}: tag {name}");
        }
        match case.length {
            Length::Secs(secs, padding) => assert_secs(&d, secs, padding),
            Length::Frames(frames) => assert_eq!(d.frames(), frames, "{what}: exact length"),
            Length::LikeTheCli(slack) => {
                let cli = cli_frames(&dir.join(case.file), d.format.0, d.format.1);
                assert!(d.frames().abs_diff(cli) <= slack, "{what}: {} frames, the CLI gives {cli}", d.frames());
            }
        }
        if case.same_channels {
            assert!(d.pcm.chunks(2).all(|f| f[0] == f[1]), "{what}: both channels the same");
        }
        if case.bounded_reads {
            eprintln!("{what}: {} chunk reads for {} chunks", d.reads, d.chunks);
            assert!(d.reads <= 3 * d.chunks + 8, "{what}: {} chunk reads for {} chunks", d.reads, d.chunks);
        }
        assert_not_silent(&d);
        last = Some(d);
    }
    last.expect("at least one case")
}

fn to(sample_rate: Option<u32>, channels: Option<u8>) -> OutputRequest {
    OutputRequest { sample_rate, channels, ..Default::default() }
}

#[test]
fn demux_mp4_moov_at_end_with_tags() {
    let dir = tmp();
    let data = ffmpeg(dir.path(), "probe.mp4", &args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "aac", "-ac", "2"]]));
    let moov_at_end = data.windows(4).position(|w| w == b"moov") > data.windows(4).position(|w| w == b"mdat");
    assert!(moov_at_end, "the fixture must have its index at the end");
    let d = check(dir.path(), vec![Case {
        file: "a.mp4",
        make: args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "aac", "-ac", "2"], &TAGS]),
        found: ("mp4", "aac"),
        source: Some((44100, 2)),
        output: Some((44100, 2)),
        tags: &[("title", "Test Title"), ("artist", "Some Artist"), ("album", "An Album"), ("year", "2021"), ("comment", "hello")],
        length: Length::LikeTheCli(0),
        bounded_reads: true,
        ..Default::default()
    }]);
    assert_eq!(d.info.audio_streams, 1);
    let duration = d.info.duration_secs.unwrap();
    assert!((duration - 2.0).abs() < 0.05, "duration {duration}");
    assert_secs(&d, 2.0, AAC_PAD);
}

#[test]
fn demux_mp4_faststart_and_resample() {
    let dir = tmp();
    check(dir.path(), vec![Case {
        file: "a.mp4",
        make: args(&[&VIDEO_2S, &SINE_2S_48K, &X264, &["-c:a", "aac", "-ac", "6", "-movflags", "+faststart", "-metadata", "title=Fast"]]),
        request: to(Some(44100), Some(2)),
        found: ("mp4", "aac"),
        source: Some((48000, 6)),
        output: Some((44100, 2)),
        tags: &[("title", "Fast")],
        length: Length::LikeTheCli(2),
        bounded_reads: true,
        ..Default::default()
    }]);
}

#[test]
fn demux_webm_mkv_mov() {
    let dir = tmp();
    let vp9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k"];
    check(dir.path(), vec![
        Case {
            file: "a.webm",
            make: args(&[&VIDEO_2S, &SINE_2S, &vp9, &["-c:a", "libopus"], &TAGS]),
            found: ("webm", "opus"),
            source: Some((48000, 1)),
            tags: &[("artist", "Some Artist")],
            ..Default::default()
        },
        Case {
            file: "a.mkv",
            make: args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "libvorbis"], &TAGS]),
            request: to(None, Some(2)),
            found: ("matroska", "vorbis"),
            output: Some((44100, 2)),
            tags: &[("title", "Test Title")],
            // Vorbis in Matroska: FFmpeg 5.1 keeps the last packet's padding (the CLI too).
            length: Length::Secs(2.0, 0.015),
            same_channels: true,
            ..Default::default()
        },
        Case {
            file: "a.mov",
            make: args(&[&VIDEO_2S, &SINE_2S, &["-c:v", "mpeg4", "-c:a", "aac"], &TAGS]),
            found: ("mov", "aac"),
            tags: &[("title", "Test Title")],
            length: Length::Secs(2.0, AAC_PAD),
            ..Default::default()
        },
    ]);
}

#[test]
fn demux_avi_ts_flv() {
    let dir = tmp();
    // MP3 in AVI or FLV carries no gapless info: the encoder delay/padding stays (< 2 frames).
    let mp3_pad = 2.0 * 1152.0 / 44100.0;
    check(dir.path(), vec![
        Case {
            file: "a.avi",
            make: args(&[&VIDEO_2S, &SINE_2S, &["-c:v", "mpeg4", "-c:a", "libmp3lame"], &TAGS]),
            found: ("avi", "mp3"),
            tags: &[("title", "Test Title")],
            length: Length::Secs(2.0, mp3_pad),
            ..Default::default()
        },
        Case {
            file: "a.ts",
            make: args(&[&VIDEO_2S, &SINE_2S, &X264, &["-c:a", "aac"]]),
            request: to(Some(22050), None),
            found: ("mpegts", "aac"),
            output: Some((22050, 1)),
            // Raw ADTS in TS keeps the AAC priming frame (1024 samples at 44.1 kHz).
            length: Length::Secs(2.0, 2.0 * AAC_PAD),
            ..Default::default()
        },
        Case {
            file: "a.flv",
            make: args(&[&VIDEO_2S, &SINE_2S, &["-c:v", "flv", "-c:a", "libmp3lame"]]),
            found: ("flv", "mp3"),
            length: Length::Secs(2.0, mp3_pad),
            ..Default::default()
        },
    ]);
}

#[test]
fn demux_audio_only_formats() {
    let dir = tmp();
    check(dir.path(), vec![
        Case {
            file: "a.wav",
            make: args(&[&SINE_2S_48K, &["-ac", "6", "-c:a", "pcm_s16le"]]),
            request: to(Some(44100), Some(2)),
            found: ("wav", "pcm_s16le"),
            source: Some((48000, 6)),
            output: Some((44100, 2)),
            // PCM resampled with the resampler flushed: exact length.
            length: Length::Frames(88200),
            ..Default::default()
        },
        Case {
            file: "a.mp3",
            make: args(&[&SINE_2S, &["-c:a", "libmp3lame"], &TAGS]),
            found: ("mp3", "mp3"),
            tags: &[("album", "An Album"), ("year", "2021")],
            ..Default::default()
        },
        Case {
            file: "a.ogg",
            make: args(&[&SINE_2S, &["-c:a", "libvorbis"], &TAGS]),
            found: ("ogg", "vorbis"),
            tags: &[("title", "Test Title"), ("comment", "hello")],
            ..Default::default()
        },
        Case {
            file: "a.m4a",
            make: args(&[&SINE_2S, &["-c:a", "aac"], &TAGS]),
            found: ("m4a", "aac"),
            tags: &[("artist", "Some Artist")],
            length: Length::Secs(2.0, AAC_PAD),
            ..Default::default()
        },
    ]);
}

#[test]
fn demux_mono_22k_to_stereo_44k_and_short_clip() {
    let dir = tmp();
    check(dir.path(), vec![
        Case {
            file: "a.wav",
            make: vec!["-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=22050", "-c:a", "pcm_s16le"],
            request: to(Some(44100), Some(2)),
            found: ("wav", "pcm_s16le"),
            source: Some((22050, 1)),
            output: Some((44100, 2)),
            length: Length::Frames(44100),
            same_channels: true,
            ..Default::default()
        },
        Case {
            file: "clip.mp4",
            make: args(&[
                &["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=0.3"],
                &["-f", "lavfi", "-i", "sine=frequency=440:duration=0.3"],
                &X264,
                &["-c:a", "aac"],
            ]),
            found: ("mp4", "aac"),
            length: Length::Secs(0.3, AAC_PAD),
            ..Default::default()
        },
    ]);
}

#[test]
fn demux_picks_default_of_two_audio_tracks() {
    let dir = tmp();
    let d = check(dir.path(), vec![Case {
        file: "two.mkv",
        make: vec![
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=22050",
            "-f", "lavfi", "-i", "sine=frequency=880:duration=1:sample_rate=48000",
            "-map", "0:a", "-map", "1:a", "-c:a", "aac", "-ac:a:1", "2",
            "-disposition:a:0", "0", "-disposition:a:1", "default",
        ],
        found: ("matroska", "aac"),
        // The track flagged default.
        source: Some((48000, 2)),
        // AAC in Matroska: neither priming nor padding is signalled in FFmpeg 5.1's muxer.
        length: Length::Secs(1.0, 2048.0 / 48000.0),
        ..Default::default()
    }]);
    assert_eq!(d.info.audio_streams, 2);
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
