//! Native tests: encode generated audio, read the Ogg pages back, and decode with FFmpeg (an
//! independent Ogg/Opus reader that applies pre-skip and end trimming as players do).

use super::*;
use std::process::Command;

fn sine(channels: u8, frames: usize) -> Vec<i16> {
    (0..frames)
        .flat_map(|i| {
            let t = i as f32 / SAMPLE_RATE as f32;
            (0..channels).map(move |c| ((t * (330.0 + 110.0 * c as f32) * std::f32::consts::TAU).sin() * 12_000.0) as i16)
        })
        .collect()
}

fn config(channels: u8) -> Config {
    Config { sample_rate: SAMPLE_RATE, channels, bits_per_sample: 16, ..Config::default() }
}

/// Encodes in uneven chunks, as the converter's blocks would come.
fn encode(cfg: &Config, pcm: &[i16]) -> (Vec<u8>, u64) {
    let mut s = OpusSession::new(cfg).expect("valid config");
    let pre_skip = s.pre_skip();
    let mut out = Vec::new();
    for chunk in pcm.chunks(cfg.channels as usize * 4001) {
        out.extend(s.encode(chunk).unwrap());
    }
    let Finished { tail, patch } = s.finish().unwrap();
    assert!(patch.is_none(), "Ogg needs no header patch");
    out.extend(tail);
    (out, pre_skip)
}

/// Pages as (flags, granule, first bytes of the body).
fn pages(mut bytes: &[u8]) -> Vec<(u8, u64, Vec<u8>)> {
    let mut pages = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(&bytes[..4], b"OggS");
        let n = bytes[26] as usize;
        let len = 27 + n + bytes[27..27 + n].iter().map(|&l| l as usize).sum::<usize>();
        pages.push((bytes[5], u64::from_le_bytes(bytes[6..14].try_into().unwrap()), bytes[27 + n..len.min(27 + n + 19)].to_vec()));
        bytes = &bytes[len..];
    }
    pages
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("codec-opus-{}-{name}.opus", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// FFmpeg's decode: frames per channel at 48 kHz.
fn ffmpeg_frames(path: &std::path::Path, channels: usize) -> usize {
    let out = Command::new("ffmpeg").args(["-v", "error", "-nostdin", "-i"]).arg(path).args(["-f", "s16le", "-"]).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.len() / 2 / channels
}

/// ffprobe's view of the first audio stream and the tags, as JSON.
fn ffprobe(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-show_format", "-of", "json"]).arg(path).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn two_seconds_decode_to_exactly_96000_frames() {
    let (ogg, pre_skip) = encode(&config(2), &sine(2, 96_000));
    let p = pages(&ogg);
    assert!(p[0].2.starts_with(b"OpusHead"));
    assert_eq!(u16::from_le_bytes([p[0].2[10], p[0].2[11]]) as u64, pre_skip, "pre-skip is the lookahead");
    assert!(pre_skip > 0);
    assert!(p[1].2.starts_with(b"OpusTags"));
    let last = p.last().unwrap();
    assert_eq!(last.0 & 4, 4, "the last page ends the stream");
    assert_eq!(last.1, 96_000 + pre_skip, "the last granule is the real end");
    // Pages every second, each with a granule position.
    assert!(p.len() >= 2 + 2);
    let path = temp_file("two-seconds", &ogg);
    assert_eq!(ffmpeg_frames(&path, 2), 96_000);
    let probe = ffprobe(&path);
    assert!(probe.contains("\"codec_name\": \"opus\""), "{probe}");
    std::fs::remove_file(path).ok();
}

#[test]
fn odd_lengths_and_layouts_are_exact() {
    for (channels, frames) in [(1u8, 12_345usize), (2, 1), (2, 960), (2, 14_400), (6, 50_000), (8, 4_800), (3, 7_777)] {
        let (ogg, _) = encode(&config(channels), &sine(channels, frames));
        let path = temp_file(&format!("{channels}-{frames}"), &ogg);
        assert_eq!(ffmpeg_frames(&path, channels.into()), frames, "{channels} channels, {frames} frames");
        assert!(ffprobe(&path).contains(&format!("\"channels\": {channels}")));
        std::fs::remove_file(path).ok();
    }
}

#[test]
fn wide_samples_and_empty_input_are_exact_too() {
    // 24-bit PCM through encode_wide: the same tone, the same exact length.
    let cfg = Config { bits_per_sample: 24, ..config(2) };
    let pcm: Vec<i32> = sine(2, 30_001).into_iter().map(|s| i32::from(s) << 8).collect();
    let mut s = OpusSession::new(&cfg).unwrap();
    let mut ogg = Vec::new();
    for chunk in pcm.chunks(2 * 7000) {
        ogg.extend(s.encode_wide(chunk).unwrap());
    }
    ogg.extend(s.finish().unwrap().tail);
    let path = temp_file("wide", &ogg);
    assert_eq!(ffmpeg_frames(&path, 2), 30_001);
    std::fs::remove_file(path).ok();
    // No input at all: a valid stream that decodes to nothing.
    let (ogg, pre_skip) = encode(&config(1), &[]);
    assert_eq!(pages(&ogg).last().unwrap().1, pre_skip);
    let path = temp_file("empty", &ogg);
    assert_eq!(ffmpeg_frames(&path, 1), 0);
    std::fs::remove_file(path).ok();
}

#[test]
fn tags_and_cover_are_read_back_by_ffprobe() {
    // A 1×1 PNG, made here so no file is needed.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";
    let cfg = Config {
        tags: Tags { title: Some("Tïtle".into()), artist: Some("Artist".into()), genre: Some("Jazz".into()), track: Some("3/12".into()), year: Some("2024".into()), ..Tags::default() },
        cover: Some(Picture { mime_type: "image/png".into(), width: 1, height: 1, data: png.to_vec() }),
        ..config(2)
    };
    let (ogg, _) = encode(&cfg, &sine(2, 48_000));
    let path = temp_file("tags", &ogg);
    let probe = ffprobe(&path).to_lowercase();
    for expected in ["\"title\": \"tïtle\"", "\"artist\": \"artist\"", "\"genre\": \"jazz\"", "\"track\": \"3/12\"", "\"date\": \"2024\"", "\"attached_pic\": 1"] {
        assert!(probe.contains(expected), "{expected} in {probe}");
    }
    assert_eq!(ffmpeg_frames(&path, 2), 48_000);
    std::fs::remove_file(path).ok();
}

#[test]
fn bitrate_changes_the_size() {
    let pcm = sine(2, 48_000 * 3);
    let size = |kbps| encode(&Config { bitrate_kbps: Some(kbps), ..config(2) }, &pcm).0.len();
    let (low, high) = (size(32), size(192));
    assert!(high > low * 3, "32 kbps: {low} bytes, 192 kbps: {high} bytes");
    assert_eq!(default_bitrate_kbps(2), 128);
    assert_eq!(default_bitrate_kbps(8), 510);
}

#[test]
fn bad_config_and_input_are_errors() {
    let err = |cfg: Config| OpusSession::new(&cfg).err().expect("an error");
    assert!(err(Config { sample_rate: 44_100, ..config(2) }).contains("48000"));
    assert!(err(config(0)).contains("channels"));
    assert!(err(config(9)).contains("channels"));
    assert!(err(Config { bitrate_kbps: Some(100), ..config(2) }).contains("bitrate"));
    assert!(err(Config { bits_per_sample: 32, ..config(2) }).contains("32-bit"));
    let mut s = OpusSession::new(&config(2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
}
