//! Hostile codec plugin for tests: a panic in `encode`, i.e. a wasm trap.
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
            name: "trap".into(),
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
        unreachable!("codec-trap: encode traps on purpose")
    }

    fn finish(&self) -> Result<wit::Finished, String> {
        Ok(wit::Finished {
            tail: Vec::new(),
            patch: None,
        })
    }
}
