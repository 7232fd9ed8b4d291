//! Hostile codec plugin for tests: `encode` allocates without bound (only a memory cap stops it).
//! `info`, `start` and `finish` behave; only `encode` misbehaves. Wasm-only (empty natively).
#![cfg(target_family = "wasm")]

use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

struct Hostile;

impl Codec for Hostile {
    fn info() -> CodecInfo {
        CodecInfo::new("memory-bomb", "bin", "application/octet-stream")
    }

    fn start(_: EncoderConfig) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        let _ = pcm;
        static HOARD: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
        let mut hoard = HOARD.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // Filled with non-zero bytes, so every page is really written.
            hoard.push(std::hint::black_box(vec![0xA5; 16 << 20]));
        }
    }

    fn finish(self) -> Result<Finished, String> {
        Ok(Finished { tail: Vec::new(), patch: None })
    }
}

codec_plugin_kit::export_codec!(Hostile);
