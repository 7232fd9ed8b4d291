//! Reading outputs back with an independent, real decoder: FFmpeg's `ffprobe` and `ffmpeg`
//! command-line tools (Debian's, the same the fixtures are made with). Every format's test checks
//! codec, layout, exact length, tags and cover picture with these, so no format is judged by its
//! own code.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What `ffprobe` and a full decode say about an audio file.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Container as `ffprobe` names it (`mp3`, `flac`, `ogg`, `mov,mp4,m4a,3gp,3g2,mj2`, `wav`).
    pub container: String,
    /// Codec of the first audio stream (`mp3`, `flac`, `opus`, `vorbis`, `aac`, `pcm_s16le`).
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// Bits per raw sample when the codec has them (FLAC, WAV), else 0.
    pub bits_per_sample: u32,
    /// Duration the container declares, in seconds.
    pub duration_secs: Option<f64>,
    /// Frames per channel a full decode yields (after the container's priming and padding
    /// trims, as players apply them).
    pub decoded_frames: u64,
    /// Tags of the container and the audio stream, keys lower-cased.
    pub tags: BTreeMap<String, String>,
    /// Whether an attached picture (cover) stream is present.
    pub has_cover: bool,
}

/// Probes `path` and decodes it fully; panics with ffprobe's words if it is not readable.
pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .unwrap_or_else(|| panic!("{}: no audio stream: {json}", path.display()))
        .clone();
    let has_cover = streams
        .iter()
        .any(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64() == Some(1));
    let mut tags = BTreeMap::new();
    for source in [&json["format"]["tags"], &audio["tags"]] {
        if let Some(map) = source.as_object() {
            for (key, value) in map {
                if let Some(value) = value.as_str() {
                    tags.insert(key.to_lowercase(), value.to_string());
                }
            }
        }
    }
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).or_else(|| v.as_f64());
    let channels = audio["channels"].as_u64().unwrap_or(0) as u32;
    Probe {
        container: json["format"]["format_name"].as_str().unwrap_or_default().to_string(),
        codec: audio["codec_name"].as_str().unwrap_or_default().to_string(),
        sample_rate: number(&audio["sample_rate"]).unwrap_or(0.0) as u32,
        channels,
        bits_per_sample: number(&audio["bits_per_raw_sample"])
            .or_else(|| number(&audio["bits_per_sample"]))
            .unwrap_or(0.0) as u32,
        duration_secs: number(&json["format"]["duration"]).or_else(|| number(&audio["duration"])),
        decoded_frames: decoded_frames(path, channels.max(1)),
        tags,
        has_cover,
    }
}

/// Frames per channel of a full decode of the first audio stream, at its own rate.
pub fn decoded_frames(path: &Path, channels: u32) -> u64 {
    let pcm = decode_f32(path);
    (pcm.len() / channels as usize) as u64
}

/// The first audio stream decoded to interleaved f32 at its own rate and layout.
pub fn decode_f32(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg decode {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// MD5 (hex) of the first audio stream decoded to s16le, as FFmpeg's `md5` muxer gives it: two
/// files with the same MD5 hold the same samples.
pub fn pcm_md5(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-c:a", "pcm_s16le", "-f", "md5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("MD5=").to_string()
}

/// Integrated loudness (LUFS) and true peak (dBTP) measured by FFmpeg's `ebur128` filter, an
/// independent BS.1770 meter.
pub fn loudness(path: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-nostdin", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ebur128 {}: {text}", path.display());
    // The summary at the end: "I:  -16.0 LUFS" and, under "True peak:", "Peak:  -1.2 dBFS".
    let summary = text.rsplit("Summary:").next().unwrap_or_default();
    let value_after = |label: &str| {
        summary
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {label} in ebur128's summary: {summary}"))
    };
    (value_after("I:"), value_after("Peak:"))
}

/// Extracts the attached cover picture as its own file bytes (JPEG or PNG), if there is one,
/// and checks that FFmpeg decodes it as an image: returns its (width, height).
pub fn cover_size(path: &Path) -> Option<(u32, u32)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-select_streams", "v"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let stream = json["streams"].as_array()?.iter().find(|s| s["disposition"]["attached_pic"].as_i64() == Some(1))?.clone();
    let index = stream["index"].as_u64()?;
    // Decoding the picture to raw pixels proves it is an image, not just bytes in a tag.
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", &format!("0:{index}"), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg runs");
    let (w, h) = (stream["width"].as_u64()? as u32, stream["height"].as_u64()? as u32);
    (decoded.status.success() && decoded.stdout.len() as u64 == u64::from(w) * u64::from(h)).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_a_flac_ffmpeg_made_with_tags_and_loudness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.flac");
        let made = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=f=440:d=3:sample_rate=44100", "-ac", "2"])
            .args(["-metadata", "title=Hi"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let p = probe(&path);
        assert_eq!((p.codec.as_str(), p.sample_rate, p.channels), ("flac", 44100, 2));
        assert_eq!(p.decoded_frames, 3 * 44100);
        assert_eq!(p.tags.get("title").map(String::as_str), Some("Hi"));
        assert!(!p.has_cover && cover_size(&path).is_none());
        let (integrated, peak) = loudness(&path);
        assert!(integrated < -10.0 && integrated > -30.0, "{integrated}");
        assert!(peak < 0.0, "{peak}");
    }
}
