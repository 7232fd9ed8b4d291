//! WebAssembly component glue: exports [`M4aSession`] as the `encoder` interface.

use crate::{BITRATES_KBPS, Config, Cover, M4aSession, MAX_CHANNELS, SAMPLE_RATES};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for M4aSession {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "aac-fdk".into(),
            extension: "m4a".into(),
            content_type: "audio/mp4".into(),
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            levels: Vec::new(),
            bit_depths: vec![16],
            cover: true,
            vbr: true,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        let t = c.tags;
        M4aSession::new(Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            vbr_quality: c.vbr_quality,
            total_frames: c.total_frames,
            tags: t.into(),
            cover: c.cover.map(|p| Cover { mime_type: p.mime_type, data: p.data }),
        })
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        M4aSession::encode(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        M4aSession::finish(self)
    }
}

codec_plugin_kit::export_codec!(M4aSession);
