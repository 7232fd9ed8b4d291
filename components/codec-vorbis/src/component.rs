//! WebAssembly component glue: exports [`VorbisSession`] as the `encoder` interface.

use crate::{BIT_DEPTHS, BITRATES_KBPS, Config, MAX_CHANNELS, VorbisSession};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for VorbisSession {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "vorbis".into(),
            extension: "ogg".into(),
            content_type: "audio/ogg".into(),
            sample_rates: Vec::new(), // any from 8 kHz to 192 kHz
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            levels: Vec::new(),
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
            vbr: true,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        let t = c.tags;
        VorbisSession::new(&Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            vbr_quality: c.vbr_quality,
            bits_per_sample: c.bits_per_sample,
            tags: t.into(),
            cover: c.cover.map(Into::into),
        })
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        VorbisSession::encode(self, pcm)
    }

    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        VorbisSession::encode_wide(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        VorbisSession::finish(self)
    }
}

codec_plugin_kit::export_codec!(VorbisSession);
