//! WebAssembly component glue: exports [`WavSession`] as the `encoder` interface.

use crate::{MAX_CHANNELS, WavSession};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for WavSession {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "wav".into(),
            extension: "wav".into(),
            content_type: "audio/wav".into(),
            sample_rates: Vec::new(), // any (8 kHz to 192 kHz)
            max_channels: MAX_CHANNELS,
            bitrates: Vec::new(),
            levels: Vec::new(),
            bit_depths: vec![16],
            cover: false,
            vbr: false,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        WavSession::new(c.input.sample_rate, c.input.channels)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        WavSession::encode(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        WavSession::finish(self)
    }
}

codec_plugin_kit::export_codec!(WavSession);
