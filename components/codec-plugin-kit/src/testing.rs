//! What the plugins' native tests share (feature `testing`, enabled in dev-dependencies only):
//! a generated tone, encoding in uneven chunks as the converter's blocks come, a temporary file
//! that removes itself, and FFmpeg's reading of an output (an independent decoder: it applies
//! the containers' trimming as players do).

use crate::{Codec, EncoderConfig, Finished, Tags};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tone per channel, `base_hz` on the first and `step_hz` higher on each further one, at
/// 12000 of 32767: `frames` interleaved frames at `rate`.
pub fn tone(rate: u32, channels: u8, frames: usize, base_hz: f32, step_hz: f32) -> Vec<i16> {
    (0..frames)
        .flat_map(|i| {
            let t = i as f32 / rate as f32;
            (0..channels).map(move |c| ((t * (base_hz + step_hz * c as f32) * std::f32::consts::TAU).sin() * 12_000.0) as i16)
        })
        .collect()
}

/// [`tone`] from 330 Hz in steps of 110 Hz.
pub fn sine(rate: u32, channels: u8, frames: usize) -> Vec<i16> {
    tone(rate, channels, frames, 330.0, 110.0)
}

/// Every tag, the title in three scripts: what the tag tests write and read back.
pub fn every_tag() -> Tags {
    Tags {
        title: Some("Ünïcødé – 日本語".into()),
        artist: Some("mp3edge".into()),
        album: Some("Tests".into()),
        year: Some("2026".into()),
        comment: Some("generated".into()),
        genre: Some("Ambient".into()),
        track: Some("3/12".into()),
    }
}

/// A 1×1 PNG, made here so no file is needed.
pub const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";

/// Feeds `pcm` (interleaved, `channels` channels) to `session` through `encode` (`C::encode` or
/// `C::encode_wide`) in chunks of `chunk_frames` frames, then finishes it: everything the
/// session returned, the tail appended, and the patch, not applied.
pub fn encode_in_chunks<C: Codec, T>(
    mut session: C,
    channels: u8,
    pcm: &[T],
    chunk_frames: usize,
    encode: fn(&mut C, &[T]) -> Result<Vec<u8>, String>,
) -> (Vec<u8>, Finished) {
    let mut out = Vec::new();
    for chunk in pcm.chunks(usize::from(channels) * chunk_frames) {
        out.extend(encode(&mut session, chunk).expect("encode"));
    }
    let finished = session.finish().expect("finish");
    out.extend_from_slice(&finished.tail);
    (out, finished)
}

/// A file in the temporary directory, named after the process and `name`, removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(name: &str, bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("mp3edge-codec-test-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// FFmpeg's decode of `path`'s first audio stream: interleaved s16 samples.
pub fn ffmpeg_decode(path: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg").args(["-v", "error", "-nostdin", "-i"]).arg(path).args(["-map", "0:a:0", "-f", "s16le", "-"]).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// The frames per channel FFmpeg decodes from `path`.
pub fn ffmpeg_frames(path: &Path, channels: usize) -> usize {
    ffmpeg_decode(path).len() / channels
}

/// ffprobe's view of the streams and the format (tags included), as JSON.
pub fn ffprobe(path: &Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-show_format", "-of", "json"]).arg(path).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What `C::info()` offers, `C::start` takes (the host validates a job's options against the
/// offer, so a gap would fail jobs it accepted): every listed sample rate (or `any_rate` when
/// any is taken) and every channel count up to the most; at 48 kHz (or the one listed rate)
/// stereo, each bitrate, VBR 0 and 9, each level and each bit depth. One channel more than the
/// most is refused with a reason.
pub fn info_offers_what_start_accepts<C: Codec>(any_rate: u32) {
    let info = C::info();
    let rates = if info.sample_rates.is_empty() { vec![any_rate] } else { info.sample_rates.clone() };
    let base = EncoderConfig { sample_rate: if rates.contains(&48_000) { 48_000 } else { rates[0] }, channels: 2, ..EncoderConfig::default() };
    let start = |config: EncoderConfig, what: String| {
        if let Err(e) = C::start(config) {
            panic!("{} offers {what} but refuses it: {e}", info.name);
        }
    };
    for &sample_rate in &rates {
        for channels in 1..=info.max_channels {
            start(EncoderConfig { sample_rate, channels, ..base.clone() }, format!("{sample_rate} Hz with {channels} channels"));
        }
    }
    // A bitrate may depend on the rate (MP3's `bitrate-rules`): each is taken at one rate at least.
    for &kbps in &info.bitrates {
        let taken = rates.iter().any(|&sample_rate| C::start(EncoderConfig { bitrate_kbps: Some(kbps), sample_rate, ..base.clone() }).is_ok());
        assert!(taken, "{} offers {kbps} kbps but refuses it at every rate it takes", info.name);
    }
    if info.vbr {
        for q in [0, 9] {
            start(EncoderConfig { vbr_quality: Some(q), ..base.clone() }, format!("VBR {q}"));
        }
    }
    for &level in &info.levels {
        start(EncoderConfig { level: Some(level), ..base.clone() }, format!("level {level}"));
    }
    for &bits_per_sample in &info.bit_depths {
        start(EncoderConfig { bits_per_sample, ..base.clone() }, format!("{bits_per_sample}-bit samples"));
    }
    let too_many = info.max_channels + 1;
    let refusal = C::start(EncoderConfig { channels: too_many, ..base }).err().unwrap_or_else(|| panic!("{} takes {too_many} channels", info.name));
    assert!(refusal.contains("channels"), "{refusal}");
}
