//! Hostile codec plugin for tests: `encode` allocates (and touches) 16 MiB after 16 MiB, never freeing, until the memory limit (or 4 GiB) traps it.
//! `info`, `start` and `finish` behave; only `encode` misbehaves. Wasm-only (empty natively).
#![cfg(target_family = "wasm")]

use exports::mp3edge::codec::encoder::{self as wit, CodecInfo, EncoderConfig};

wit_bindgen::generate!({ path: "../../../wit/codec", world: "mp3edge:codec/codec-plugin@0.1.0" });

struct Plugin;
export!(Plugin);

impl wit::Guest for Plugin {
    type Session = Session;

    fn info() -> CodecInfo {
        CodecInfo {
            name: "memory-bomb".into(),
            extension: "bin".into(),
            content_type: "application/octet-stream".into(),
            sample_rates: Vec::new(),
            max_channels: 8,
        }
    }
}

struct Session;

impl wit::GuestSession for Session {
    fn start(_: EncoderConfig) -> Result<wit::Session, String> {
        Ok(wit::Session::new(Session))
    }

    fn encode(&self, _pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        static HOARD: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
        let mut hoard = HOARD.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // Filled with non-zero bytes, so every page is really written.
            hoard.push(std::hint::black_box(vec![0xA5; 16 << 20]));
        }
    }

    fn finish(&self) -> Result<wit::Finished, String> {
        Ok(wit::Finished {
            tail: Vec::new(),
            patch: None,
        })
    }
}
