//! The tests both Ogg plugins (Opus, Vorbis) run, written once and run against either codec
//! (feature `testing`, enabled in their dev-dependencies only): FFmpeg, an independent reader,
//! must find the tags and the cover, and decode exactly the length that went in, also for
//! 24-bit input and for none at all.

use codec_plugin_kit::testing::{PNG_1X1, TempFile, encode_in_chunks, every_tag, ffmpeg_frames, ffprobe, sine};
use codec_plugin_kit::{Codec, EncoderConfig, Picture};

pub use crate::pages::{Page, read_pages};

/// Feeds `pcm` to `session` in uneven chunks (4001 frames), as the converter's blocks come,
/// and returns the whole stream; an Ogg stream has no header patch.
pub fn encode_session<C: Codec>(session: C, channels: u8, pcm: &[i16]) -> Vec<u8> {
    let (out, finished) = encode_in_chunks(session, channels, pcm, 4001, C::encode);
    assert!(finished.patch.is_none(), "Ogg needs no header patch");
    out
}

/// [`encode_session`] with a session of codec `C` started with `config`.
pub fn encode<C: Codec>(config: &EncoderConfig, pcm: &[i16]) -> Vec<u8> {
    encode_session(C::start(config.clone()).expect("valid config"), config.channels, pcm)
}

/// Every tag and a PNG cover, on one second of stereo at `rate`: ffprobe reads each back as a
/// Vorbis comment (the cover as an attached picture), and the audio is still exact.
pub fn tags_and_cover_are_read_back_by_ffprobe<C: Codec>(rate: u32) {
    let config = EncoderConfig {
        sample_rate: rate,
        channels: 2,
        tags: every_tag(),
        cover: Some(Picture { mime_type: "image/png".into(), width: 1, height: 1, data: PNG_1X1.to_vec() }),
        ..EncoderConfig::default()
    };
    let file = TempFile::new(&format!("tags.{}", C::info().extension), &encode::<C>(&config, &sine(rate, 2, rate as usize)));
    let probe = ffprobe(file.path()).to_lowercase();
    for expected in [
        "\"title\": \"ünïcødé – 日本語\"",
        "\"artist\": \"mp3edge\"",
        "\"album\": \"tests\"",
        "\"date\": \"2026\"",
        "\"comment\": \"generated\"",
        "\"genre\": \"ambient\"",
        "\"track\": \"3/12\"",
        "\"attached_pic\": 1",
    ] {
        assert!(probe.contains(expected), "{expected} in {probe}");
    }
    assert_eq!(ffmpeg_frames(file.path(), 2), rate as usize);
}

/// 24-bit PCM through `encode_wide` (stereo at `rate`, in 7000-frame chunks) decodes to exactly
/// its length, and so does no input at all (mono): nothing. Returns that empty stream, for the
/// codec's own checks of it.
pub fn wide_samples_and_empty_input_are_exact<C: Codec>(rate: u32) -> Vec<u8> {
    let config = EncoderConfig { sample_rate: rate, channels: 2, bits_per_sample: 24, ..EncoderConfig::default() };
    let pcm: Vec<i32> = sine(rate, 2, 30_001).into_iter().map(|s| i32::from(s) << 8).collect();
    let (wide, _) = encode_in_chunks(C::start(config).expect("valid config"), 2, &pcm, 7000, C::encode_wide);
    let file = TempFile::new(&format!("wide.{}", C::info().extension), &wide);
    assert_eq!(ffmpeg_frames(file.path(), 2), 30_001);
    let empty = encode::<C>(&EncoderConfig { sample_rate: rate, channels: 1, ..EncoderConfig::default() }, &[]);
    let file = TempFile::new(&format!("empty.{}", C::info().extension), &empty);
    assert_eq!(ffmpeg_frames(file.path(), 1), 0);
    empty
}
