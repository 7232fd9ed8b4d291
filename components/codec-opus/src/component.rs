//! WebAssembly component glue: exports [`OpusSession`] as the `encoder` interface.

use crate::{BIT_DEPTHS, BITRATES_KBPS, Config, MAX_CHANNELS, OpusSession, SAMPLE_RATE};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for OpusSession {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "opus".into(),
            extension: "opus".into(),
            content_type: "audio/ogg".into(),
            sample_rates: vec![SAMPLE_RATE],
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            levels: Vec::new(),
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
            vbr: false,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        let t = c.tags;
        OpusSession::new(&Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            bits_per_sample: c.bits_per_sample,
            tags: t.into(),
            cover: c.cover.map(Into::into),
        })
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        OpusSession::encode(self, pcm)
    }

    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        OpusSession::encode_wide(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        OpusSession::finish(self)
    }
}

codec_plugin_kit::export_codec!(OpusSession);
