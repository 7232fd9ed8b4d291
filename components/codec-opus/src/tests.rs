//! Native tests: encode generated audio, read the Ogg pages back, and decode with FFmpeg (an
//! independent Ogg/Opus reader that applies pre-skip and end trimming as players do). The
//! tests Vorbis runs too are `ogg_writer::testing`'s.

use super::*;
use codec_plugin_kit::testing::{TempFile, ffmpeg_frames, ffprobe};
use ogg_writer::testing;

fn sine(channels: u8, frames: usize) -> Vec<i16> {
    codec_plugin_kit::testing::sine(SAMPLE_RATE, channels, frames)
}

fn config(channels: u8) -> EncoderConfig {
    EncoderConfig { sample_rate: SAMPLE_RATE, channels, bits_per_sample: 16, ..EncoderConfig::default() }
}

/// Encodes in uneven chunks, as the converter's blocks would come; also the pre-skip.
fn encode(cfg: &EncoderConfig, pcm: &[i16]) -> (Vec<u8>, u64) {
    let s = OpusSession::new(cfg).expect("valid config");
    let pre_skip = s.pre_skip();
    (testing::encode_session(s, cfg.channels, pcm), pre_skip)
}

/// Pages as (flags, granule, body), their CRCs checked.
fn pages(bytes: &[u8]) -> Vec<(u8, u64, Vec<u8>)> {
    testing::read_pages(bytes).into_iter().map(|(flags, granule, _, _, body)| (flags, granule, body)).collect()
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
    let file = TempFile::new("two-seconds.opus", &ogg);
    assert_eq!(ffmpeg_frames(file.path(), 2), 96_000);
    let probe = ffprobe(file.path());
    assert!(probe.contains("\"codec_name\": \"opus\""), "{probe}");
}

#[test]
fn odd_lengths_and_layouts_are_exact() {
    for (channels, frames) in [(1u8, 12_345usize), (2, 1), (2, 960), (2, 14_400), (6, 50_000), (8, 4_800), (3, 7_777)] {
        let (ogg, _) = encode(&config(channels), &sine(channels, frames));
        let file = TempFile::new(&format!("{channels}-{frames}.opus"), &ogg);
        assert_eq!(ffmpeg_frames(file.path(), channels.into()), frames, "{channels} channels, {frames} frames");
        assert!(ffprobe(file.path()).contains(&format!("\"channels\": {channels}")));
    }
}

#[test]
fn wide_samples_and_empty_input_are_exact_too() {
    let empty = testing::wide_samples_and_empty_input_are_exact::<OpusSession>(SAMPLE_RATE);
    // The empty stream's last granule is the pre-skip alone.
    let pre_skip = OpusSession::new(&config(1)).unwrap().pre_skip();
    assert_eq!(pages(&empty).last().unwrap().1, pre_skip);
}

#[test]
fn tags_and_cover_are_read_back_by_ffprobe() {
    testing::tags_and_cover_are_read_back_by_ffprobe::<OpusSession>(SAMPLE_RATE);
}

#[test]
fn bitrate_changes_the_size() {
    let pcm = sine(2, 48_000 * 3);
    let size = |kbps| encode(&EncoderConfig { bitrate_kbps: Some(kbps), ..config(2) }, &pcm).0.len();
    let (low, high) = (size(32), size(192));
    assert!(high > low * 3, "32 kbps: {low} bytes, 192 kbps: {high} bytes");
    assert_eq!(default_bitrate_kbps(2), 128);
    assert_eq!(default_bitrate_kbps(8), 510);
}

#[test]
fn bad_config_and_input_are_errors() {
    let err = |cfg: EncoderConfig| OpusSession::new(&cfg).err().expect("an error");
    assert!(err(EncoderConfig { sample_rate: 44_100, ..config(2) }).contains("48000"));
    assert!(err(config(0)).contains("channels"));
    assert!(err(config(9)).contains("channels"));
    assert!(err(EncoderConfig { bitrate_kbps: Some(100), ..config(2) }).contains("bitrate"));
    assert!(err(EncoderConfig { bits_per_sample: 32, ..config(2) }).contains("32-bit"));
    let mut s = OpusSession::new(&config(2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
}

#[test]
fn info_offers_what_start_accepts() {
    codec_plugin_kit::testing::info_offers_what_start_accepts::<OpusSession>(48000);
}
