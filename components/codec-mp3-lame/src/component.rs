//! WebAssembly component glue: exports the `encoder` interface around [`Mp3Session`].

use crate::{Config, Finished, Mp3Session, SAMPLE_RATES, Tags};
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
            name: "mp3-lame".into(),
            extension: "mp3".into(),
            content_type: "audio/mpeg".into(),
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: 2,
        }
    }
}

/// A session; `None` once finished.
struct Session(RefCell<Option<Mp3Session>>);

impl wit::GuestSession for Session {
    fn start(c: EncoderConfig) -> Result<wit::Session, String> {
        let t = c.tags;
        let config = Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            vbr_quality: c.vbr_quality,
            tags: Tags {
                title: t.title,
                artist: t.artist,
                album: t.album,
                year: t.year,
                comment: t.comment,
            },
        };
        let session = Mp3Session::new(&config)?;
        Ok(wit::Session::new(Session(RefCell::new(Some(session)))))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.0
            .borrow_mut()
            .as_mut()
            .ok_or("mp3: session already finished")?
            .encode(&pcm)
    }

    fn finish(&self) -> Result<wit::Finished, String> {
        let session = self.0.take().ok_or("mp3: session already finished")?;
        let Finished { tail, patch } = session.finish()?;
        let patch = patch.map(|p| HeaderPatch {
            offset: p.offset,
            bytes: p.bytes,
        });
        Ok(wit::Finished { tail, patch })
    }
}
