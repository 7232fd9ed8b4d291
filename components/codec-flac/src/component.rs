//! WebAssembly component glue: exports [`FlacSession`] as the `encoder` interface.

use crate::{BIT_DEPTHS, Config, FlacSession, LEVELS, MAX_CHANNELS};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for FlacSession {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "flac".into(),
            extension: "flac".into(),
            content_type: "audio/flac".into(),
            sample_rates: Vec::new(), // any, up to 655350 Hz
            max_channels: MAX_CHANNELS,
            bitrates: Vec::new(),
            vbr: false,
            levels: LEVELS.collect(),
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        let t = c.tags;
        FlacSession::new(Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bits_per_sample: c.bits_per_sample,
            level: c.level,
            total_frames: c.total_frames,
            tags: t.into(),
            cover: c.cover.map(Into::into),
        })
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        FlacSession::encode(self, pcm)
    }

    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        FlacSession::encode_wide(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        FlacSession::finish(self)
    }
}

codec_plugin_kit::export_codec!(FlacSession);
