//! Native tests: encode generated audio and read it back with FFmpeg (an independent Ogg
//! Vorbis reader that trims to the last granule position as players do). The tests Opus runs
//! too are `ogg_writer::testing`'s.

use super::*;
use codec_plugin_kit::testing::{TempFile, ffmpeg_decode, ffmpeg_frames, ffprobe, sine};
use ogg_writer::testing;

fn config(sample_rate: u32, channels: u8) -> EncoderConfig {
    EncoderConfig { sample_rate, channels, bits_per_sample: 16, ..EncoderConfig::default() }
}

/// Encodes in uneven chunks, as the converter's blocks would come.
fn encode(cfg: &EncoderConfig, pcm: &[i16]) -> Vec<u8> {
    testing::encode::<VorbisSession>(cfg, pcm)
}

#[test]
fn lengths_rates_and_layouts_are_exact() {
    for (rate, channels, frames) in [(44_100, 2u8, 88_200usize), (22_050, 1, 12_345), (48_000, 6, 50_000), (8_000, 1, 1), (96_000, 2, 30_001), (48_000, 8, 4_800), (32_000, 3, 7_777)] {
        let ogg = encode(&config(rate, channels), &sine(rate, channels, frames));
        let file = TempFile::new(&format!("{rate}-{channels}-{frames}.ogg"), &ogg);
        assert_eq!(ffmpeg_frames(file.path(), channels.into()), frames, "{rate} Hz, {channels} channels, {frames} frames");
        let probe = ffprobe(file.path());
        assert!(probe.contains("\"codec_name\": \"vorbis\""), "{probe}");
        assert!(probe.contains(&format!("\"channels\": {channels}")), "{probe}");
        assert!(probe.contains(&format!("\"sample_rate\": \"{rate}\"")), "{probe}");
    }
}

#[test]
fn wide_samples_and_empty_input_are_exact_too() {
    testing::wide_samples_and_empty_input_are_exact::<VorbisSession>(48_000);
}

#[test]
fn channels_land_in_vorbis_order() {
    // 5.1 in FFmpeg's order with a tone only on FC: FFmpeg reads it back as its FC again.
    let frames = 48_000;
    let mut pcm = vec![0i16; frames * 6];
    for (i, s) in sine(48_000, 1, frames).into_iter().enumerate() {
        pcm[i * 6 + 2] = s;
    }
    let file = TempFile::new("order.ogg", &encode(&config(48_000, 6), &pcm));
    let back = ffmpeg_decode(file.path());
    let energy = |c: usize| back.iter().skip(c).step_by(6).map(|&s| f64::from(s).powi(2)).sum::<f64>();
    let loudest = (0..6).max_by(|&a, &b| energy(a).total_cmp(&energy(b))).unwrap();
    assert_eq!(loudest, 2, "the centre stays the centre");
}

#[test]
fn tags_and_cover_are_read_back_by_ffprobe() {
    testing::tags_and_cover_are_read_back_by_ffprobe::<VorbisSession>(44_100);
}

#[test]
fn quality_and_bitrate_change_the_size() {
    // Noise-like content so the quality setting has something to spend bits on.
    let pcm: Vec<i16> = (0..44_100 * 2 * 3u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 19) as i16 - 4096).collect();
    let size = |cfg: EncoderConfig| encode(&cfg, &pcm).len();
    let (best, smallest) = (size(EncoderConfig { vbr_quality: Some(0), ..config(44_100, 2) }), size(EncoderConfig { vbr_quality: Some(9), ..config(44_100, 2) }));
    assert!(best > smallest * 2, "vbr 0: {best} bytes, vbr 9: {smallest} bytes");
    let (low, high) = (size(EncoderConfig { bitrate_kbps: Some(64), ..config(44_100, 2) }), size(EncoderConfig { bitrate_kbps: Some(256), ..config(44_100, 2) }));
    assert!(high > low * 2, "64 kbps: {low} bytes, 256 kbps: {high} bytes");
    assert_eq!(vorbis_quality(0).unwrap(), 1.0);
    assert_eq!(vorbis_quality(9).unwrap(), 0.1);
}

#[test]
fn bad_config_and_input_are_errors() {
    let err = |cfg: EncoderConfig| VorbisSession::new(&cfg).err().expect("an error");
    assert!(err(config(7_999, 2)).contains("sample rate"));
    assert!(err(config(44_100, 0)).contains("channels"));
    assert!(err(config(44_100, 9)).contains("channels"));
    assert!(err(EncoderConfig { bitrate_kbps: Some(100), ..config(44_100, 2) }).contains("bitrate"));
    assert!(err(EncoderConfig { vbr_quality: Some(10), ..config(44_100, 2) }).contains("VBR quality"));
    assert!(err(EncoderConfig { bits_per_sample: 8, ..config(44_100, 2) }).contains("8-bit"));
    let mut s = VorbisSession::new(&config(44_100, 2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
}

#[test]
fn info_offers_what_start_accepts() {
    codec_plugin_kit::testing::info_offers_what_start_accepts::<VorbisSession>(44100);
}

/// The bitrates published per rate are exactly those a session starts with (libvorbis has a
/// managed setup for them); every other is refused.
#[test]
fn bitrates_at_is_what_libvorbis_sets_up() {
    for rate in job_rates() {
        for channels in 1..=2u8 {
            let carried = bitrates_at(rate, channels);
            for kbps in BITRATES_KBPS {
                let started = VorbisSession::new(&EncoderConfig { sample_rate: rate, channels, bitrate_kbps: Some(kbps), ..EncoderConfig::default() });
                assert_eq!(started.is_ok(), carried.contains(&kbps), "{rate} Hz {channels} ch {kbps} kbps");
            }
        }
    }
    assert!(bitrates_at(44100, 2).contains(&320) && !bitrates_at(8000, 2).contains(&320));
}

/// The rates a job's `rate` may name.
fn job_rates() -> [u32; 13] {
    [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000]
}
