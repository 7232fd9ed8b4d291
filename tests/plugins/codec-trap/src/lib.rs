//! Hostile codec plugin for tests: a panic in `encode`, i.e. a wasm trap.
//! `info`, `start` and `finish` behave; only `encode` misbehaves. Wasm-only (empty natively).
#![cfg(target_family = "wasm")]

use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

struct Hostile;

impl Codec for Hostile {
    fn info() -> CodecInfo {
        CodecInfo::new("trap", "bin", "application/octet-stream")
    }

    fn start(_: EncoderConfig) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        let _ = pcm;
        unreachable!("codec-trap: encode traps on purpose")
    }

    fn finish(self) -> Result<Finished, String> {
        Ok(Finished { tail: Vec::new(), patch: None })
    }
}

codec_plugin_kit::export_codec!(Hostile);
