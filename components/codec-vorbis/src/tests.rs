//! Native tests: encode generated audio and read it back with FFmpeg (an independent Ogg
//! Vorbis reader that trims to the last granule position as players do).

use super::*;
use std::process::Command;

fn sine(rate: u32, channels: u8, frames: usize) -> Vec<i16> {
    (0..frames)
        .flat_map(|i| {
            let t = i as f32 / rate as f32;
            (0..channels).map(move |c| ((t * (330.0 + 110.0 * c as f32) * std::f32::consts::TAU).sin() * 12_000.0) as i16)
        })
        .collect()
}

fn config(sample_rate: u32, channels: u8) -> Config {
    Config { sample_rate, channels, bits_per_sample: 16, ..Config::default() }
}

/// Encodes in uneven chunks, as the converter's blocks would come.
fn encode(cfg: &Config, pcm: &[i16]) -> Vec<u8> {
    let mut s = VorbisSession::new(cfg).expect("valid config");
    let mut out = Vec::new();
    for chunk in pcm.chunks(cfg.channels as usize * 4001) {
        out.extend(s.encode(chunk).unwrap());
    }
    let Finished { tail, patch } = s.finish().unwrap();
    assert!(patch.is_none(), "Ogg needs no header patch");
    out.extend(tail);
    out
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("codec-vorbis-{}-{name}.ogg", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// FFmpeg's decode: frames per channel.
fn ffmpeg_frames(path: &std::path::Path, channels: usize) -> usize {
    let out = Command::new("ffmpeg").args(["-v", "error", "-nostdin", "-i"]).arg(path).args(["-f", "s16le", "-"]).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.len() / 2 / channels
}

/// ffprobe's view of the streams and the tags, as JSON.
fn ffprobe(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-show_format", "-of", "json"]).arg(path).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lengths_rates_and_layouts_are_exact() {
    for (rate, channels, frames) in [(44_100, 2u8, 88_200usize), (22_050, 1, 12_345), (48_000, 6, 50_000), (8_000, 1, 1), (96_000, 2, 30_001), (48_000, 8, 4_800), (32_000, 3, 7_777)] {
        let ogg = encode(&config(rate, channels), &sine(rate, channels, frames));
        let path = temp_file(&format!("{rate}-{channels}-{frames}"), &ogg);
        assert_eq!(ffmpeg_frames(&path, channels.into()), frames, "{rate} Hz, {channels} channels, {frames} frames");
        let probe = ffprobe(&path);
        assert!(probe.contains("\"codec_name\": \"vorbis\""), "{probe}");
        assert!(probe.contains(&format!("\"channels\": {channels}")), "{probe}");
        assert!(probe.contains(&format!("\"sample_rate\": \"{rate}\"")), "{probe}");
        std::fs::remove_file(path).ok();
    }
}

#[test]
fn wide_samples_and_empty_input_are_exact_too() {
    let cfg = Config { bits_per_sample: 24, ..config(48_000, 2) };
    let pcm: Vec<i32> = sine(48_000, 2, 30_001).into_iter().map(|s| i32::from(s) << 8).collect();
    let mut s = VorbisSession::new(&cfg).unwrap();
    let mut ogg = Vec::new();
    for chunk in pcm.chunks(2 * 7000) {
        ogg.extend(s.encode_wide(chunk).unwrap());
    }
    ogg.extend(s.finish().unwrap().tail);
    let path = temp_file("wide", &ogg);
    assert_eq!(ffmpeg_frames(&path, 2), 30_001);
    std::fs::remove_file(path).ok();
    // No input at all: a valid stream that decodes to nothing.
    let path = temp_file("empty", &encode(&config(44_100, 1), &[]));
    assert_eq!(ffmpeg_frames(&path, 1), 0);
    std::fs::remove_file(path).ok();
}

#[test]
fn channels_land_in_vorbis_order() {
    // 5.1 in FFmpeg's order with a tone only on FC: FFmpeg reads it back as its FC again.
    let frames = 48_000;
    let mut pcm = vec![0i16; frames * 6];
    for (i, s) in sine(48_000, 1, frames).into_iter().enumerate() {
        pcm[i * 6 + 2] = s;
    }
    let path = temp_file("order", &encode(&config(48_000, 6), &pcm));
    let out = Command::new("ffmpeg").args(["-v", "error", "-nostdin", "-i"]).arg(&path).args(["-f", "s16le", "-"]).output().unwrap();
    let back: Vec<i16> = out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let energy = |c: usize| back.iter().skip(c).step_by(6).map(|&s| f64::from(s).powi(2)).sum::<f64>();
    let loudest = (0..6).max_by(|&a, &b| energy(a).total_cmp(&energy(b))).unwrap();
    assert_eq!(loudest, 2, "the centre stays the centre");
    std::fs::remove_file(path).ok();
}

#[test]
fn tags_and_cover_are_read_back_by_ffprobe() {
    // A 1×1 PNG, made here so no file is needed.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";
    let cfg = Config {
        tags: Tags { title: Some("Tïtle".into()), artist: Some("Artist".into()), genre: Some("Jazz".into()), track: Some("3/12".into()), year: Some("2024".into()), ..Tags::default() },
        cover: Some(Picture { mime_type: "image/png".into(), width: 1, height: 1, data: png.to_vec() }),
        ..config(44_100, 2)
    };
    let path = temp_file("tags", &encode(&cfg, &sine(44_100, 2, 44_100)));
    let probe = ffprobe(&path).to_lowercase();
    for expected in ["\"title\": \"tïtle\"", "\"artist\": \"artist\"", "\"genre\": \"jazz\"", "\"track\": \"3/12\"", "\"date\": \"2024\"", "\"attached_pic\": 1"] {
        assert!(probe.contains(expected), "{expected} in {probe}");
    }
    assert_eq!(ffmpeg_frames(&path, 2), 44_100);
    std::fs::remove_file(path).ok();
}

#[test]
fn quality_and_bitrate_change_the_size() {
    // Noise-like content so the quality setting has something to spend bits on.
    let pcm: Vec<i16> = (0..44_100 * 2 * 3u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 19) as i16 - 4096).collect();
    let size = |cfg: Config| encode(&cfg, &pcm).len();
    let (best, smallest) = (size(Config { vbr_quality: Some(0), ..config(44_100, 2) }), size(Config { vbr_quality: Some(9), ..config(44_100, 2) }));
    assert!(best > smallest * 2, "vbr 0: {best} bytes, vbr 9: {smallest} bytes");
    let (low, high) = (size(Config { bitrate_kbps: Some(64), ..config(44_100, 2) }), size(Config { bitrate_kbps: Some(256), ..config(44_100, 2) }));
    assert!(high > low * 2, "64 kbps: {low} bytes, 256 kbps: {high} bytes");
    assert_eq!(vorbis_quality(0).unwrap(), 1.0);
    assert_eq!(vorbis_quality(9).unwrap(), 0.1);
}

#[test]
fn bad_config_and_input_are_errors() {
    let err = |cfg: Config| VorbisSession::new(&cfg).err().expect("an error");
    assert!(err(config(7_999, 2)).contains("sample rate"));
    assert!(err(config(44_100, 0)).contains("channels"));
    assert!(err(config(44_100, 9)).contains("channels"));
    assert!(err(Config { bitrate_kbps: Some(100), ..config(44_100, 2) }).contains("bitrate"));
    assert!(err(Config { vbr_quality: Some(10), ..config(44_100, 2) }).contains("VBR quality"));
    assert!(err(Config { bits_per_sample: 8, ..config(44_100, 2) }).contains("8-bit"));
    let mut s = VorbisSession::new(&config(44_100, 2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
}
