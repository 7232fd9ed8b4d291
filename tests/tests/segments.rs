//! Segmented encoding (issue 13): a long input is cut into segments that the worker's cores
//! encode at the same time, and the joined mp3 must be indistinguishable from a serial encode.
//! Generated tones (a pure sine shows any seam) and music-like noise, mono and stereo,
//! 22.05/44.1/48 kHz, CBR and VBR, 1 to 7 segments, each converted serially and in segments by
//! `mp3edge convert` (the real converter component, plugins and FFmpeg), then decoded by FFmpeg
//! against the decoded source: the exact length, the SNR within 0.3 dB of the serial encode's,
//! and no window of 1152 samples around a seam worse than the file's typical window.

use std::path::Path;
use std::process::Output;

use e2e_tests::fixtures::{Signal, signal};
use e2e_tests::probe::decode_f32;
use e2e_tests::*;

/// Runs `mp3edge` with info-level logs (the segment count is logged).
fn mp3edge(args: &[&str]) -> Output {
    mp3edge_command().args(args).env("MP3EDGE_LOG", "info").output().expect("mp3edge runs")
}

/// Converts `input` to `output` with `extra` options; returns the segments the log reports
/// (0: serial).
fn convert(input: &Path, output: &Path, extra: &[&str]) -> usize {
    let mut args = vec!["convert", input.to_str().unwrap(), output.to_str().unwrap(), "--force"];
    args.extend_from_slice(extra);
    let out = mp3edge(&args);
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mp3edge {args:?}:\n{log}");
    log.lines()
        .find(|l| l.contains("encoding in segments"))
        .and_then(|l| l.split("segments=").nth(1)?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Error energy of each window of 1152 frames of `decoded` against `source`.
fn window_errors(source: &[f32], decoded: &[f32], channels: usize) -> Vec<f64> {
    source
        .chunks(1152 * channels)
        .zip(decoded.chunks(1152 * channels))
        .map(|(s, d)| s.iter().zip(d).map(|(a, b)| f64::from(a - b).powi(2)).sum())
        .collect()
}

fn snr_db(source: &[f32], errors: &[f64]) -> f64 {
    let signal: f64 = source.iter().map(|s| f64::from(*s).powi(2)).sum();
    10.0 * (signal / errors.iter().sum::<f64>().max(1e-12)).log10()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Case {
    signal: Signal,
    seconds: f64,
    rate: u32,
    channels: u16,
    /// `--bitrate N` or `--vbr Q`.
    mode: [&'static str; 2],
    segment_secs: f64,
    segments: usize,
}

fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let input = signal(case.signal, case.seconds, case.rate, case.channels);
    let (serial_mp3, segmented_mp3) = (dir.path().join("serial.mp3"), dir.path().join("segmented.mp3"));
    let serial = convert(&input, &serial_mp3, &[&case.mode[..], &["--segment-threads", "1"]].concat());
    let secs = case.segment_secs.to_string();
    let segmented = convert(&input, &segmented_mp3, &[&case.mode[..], &["--segment-threads", "2", "--segment-secs", &secs]].concat());
    let what = format!("{:?} {} s {} Hz {} ch {:?}", case.signal, case.seconds, case.rate, case.channels, case.mode);
    assert_eq!(serial, 0, "{what}: the serial reference ran serially");
    assert_eq!(segmented, case.segments, "{what}: segments");

    let channels = usize::from(case.channels);
    let source = decode_f32(&input);
    let (a, b) = (decode_f32(&serial_mp3), decode_f32(&segmented_mp3));
    assert_eq!(b.len(), source.len(), "{what}: the segmented mp3 decodes to the source's length");
    assert_eq!(a.len(), source.len(), "{what}: the serial mp3 decodes to the source's length");
    let (ea, eb) = (window_errors(&source, &a, channels), window_errors(&source, &b, channels));
    let (snr_a, snr_b) = (snr_db(&source, &ea), snr_db(&source, &eb));
    // Around every seam (the splice moves up to 24 frames from it, MPEG-2 frames are half
    // as long): no window worse than the file's typical one allows.
    let typical = median(&eb).max(median(&ea));
    let frames_per_segment = case.segment_secs * f64::from(case.rate) / 1152.0;
    let mut worst_at_seam: f64 = 0.0;
    for k in 1..case.segments.max(1) {
        let seam = (k as f64 * frames_per_segment) as usize;
        for w in seam.saturating_sub(30)..(seam + 30).min(eb.len()) {
            worst_at_seam = worst_at_seam.max(eb[w] / ea[w].max(typical));
        }
    }
    println!(
        "{what}: {segmented} segments; SNR serial {snr_a:.2} dB, segmented {snr_b:.2} dB; worst window at a seam {worst_at_seam:.2}x the serial one (or the typical window)"
    );
    assert!(snr_b >= snr_a - 0.3, "{what}: SNR {snr_b:.2} dB segmented vs {snr_a:.2} dB serial");
    assert!(
        worst_at_seam <= 2.0,
        "{what}: a window at a seam has {worst_at_seam:.2}x the error of the serial encode's (or of the typical window)"
    );
}

#[test]
fn segmented_mp3_is_indistinguishable_from_a_serial_encode() {
    let cbr = |kbps: &'static str| ["--bitrate", kbps];
    let vbr = |q: &'static str| ["--vbr", q];
    let cases = [
        Case { signal: Signal::Tone, seconds: 30.0, rate: 44100, channels: 2, mode: cbr("192"), segment_secs: 5.0, segments: 6 },
        Case { signal: Signal::Music, seconds: 30.0, rate: 44100, channels: 2, mode: vbr("2"), segment_secs: 4.0, segments: 7 },
        // The default settings on noisy music: a seam where the later segment's reservoir
        // needs more than the earlier leaves, so a frame grows.
        Case { signal: Signal::Music, seconds: 30.0, rate: 44100, channels: 2, mode: cbr("192"), segment_secs: 5.0, segments: 6 },
        Case { signal: Signal::Music, seconds: 24.0, rate: 48000, channels: 2, mode: cbr("128"), segment_secs: 6.0, segments: 4 },
        Case { signal: Signal::Tone, seconds: 20.0, rate: 48000, channels: 1, mode: vbr("4"), segment_secs: 5.0, segments: 4 },
        Case { signal: Signal::Music, seconds: 30.0, rate: 22050, channels: 1, mode: cbr("64"), segment_secs: 5.0, segments: 6 },
        Case { signal: Signal::Tone, seconds: 20.0, rate: 22050, channels: 2, mode: vbr("3"), segment_secs: 5.0, segments: 4 },
        // Two segments, and an input too short for two (encoded serially).
        Case { signal: Signal::Music, seconds: 12.0, rate: 44100, channels: 1, mode: cbr("160"), segment_secs: 6.0, segments: 2 },
        Case { signal: Signal::Tone, seconds: 7.0, rate: 44100, channels: 2, mode: cbr("192"), segment_secs: 6.0, segments: 0 },
    ];
    for case in &cases {
        check(case);
    }
}
