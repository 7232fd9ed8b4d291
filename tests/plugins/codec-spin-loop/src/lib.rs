//! Hostile codec plugin for tests: `encode` never returns, burning CPU (only an epoch/fuel deadline stops it).
//! `info`, `start` and `finish` behave; only `encode` misbehaves. Wasm-only (empty natively).
#![cfg(target_family = "wasm")]

use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

struct Hostile;

impl Codec for Hostile {
    fn info() -> CodecInfo {
        CodecInfo::new("spin-loop", "bin", "application/octet-stream")
    }

    fn start(_: EncoderConfig) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        let mut x = pcm.len() as u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }

    fn finish(self) -> Result<Finished, String> {
        Ok(Finished { tail: Vec::new(), patch: None })
    }
}

codec_plugin_kit::export_codec!(Hostile);
