//! WebAssembly component glue: exports the `encoder` interface around [`WavSession`].

use crate::{Finished, MAX_CHANNELS, WavSession};
use exports::mp3edge::codec::encoder::{self as wit, CodecInfo, EncoderConfig};
use mp3edge::codec::types::HeaderPatch;
use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../wit/codec", world: "mp3edge:codec/codec-plugin@0.1.0" });

struct Plugin;
export!(Plugin);

impl wit::Guest for Plugin {
    type Session = Session;

    fn info() -> CodecInfo {
        CodecInfo {
            name: "wav".into(),
            extension: "wav".into(),
            content_type: "audio/wav".into(),
            sample_rates: Vec::new(), // any (8 kHz to 192 kHz)
            max_channels: MAX_CHANNELS,
        }
    }
}

/// A session; `None` once finished.
struct Session(RefCell<Option<WavSession>>);

impl wit::GuestSession for Session {
    fn start(c: EncoderConfig) -> Result<wit::Session, String> {
        let session = WavSession::new(c.input.sample_rate, c.input.channels)?;
        Ok(wit::Session::new(Session(RefCell::new(Some(session)))))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.0
            .borrow_mut()
            .as_mut()
            .ok_or("wav: session already finished")?
            .encode(&pcm)
    }

    fn finish(&self) -> Result<wit::Finished, String> {
        let session = self.0.take().ok_or("wav: session already finished")?;
        let Finished { tail, patch } = session.finish()?;
        let patch = patch.map(|p| HeaderPatch {
            offset: p.offset,
            bytes: p.bytes,
        });
        Ok(wit::Finished { tail, patch })
    }
}
