//! The WIT side (wasm only): the `mp3edge:codec/codec-plugin` bindings and the adapter that
//! exports any [`Codec`] as the `encoder` interface, with the session bookkeeping.

use std::cell::RefCell;
use std::marker::PhantomData;

wit_bindgen::generate!({
    path: "../../wit/codec",
    world: "mp3edge:codec/codec-plugin@0.1.0",
    pub_export_macro: true,
    default_bindings_module: "codec_plugin_kit::component",
});

pub use exports::mp3edge::codec::encoder::{CodecInfo, EncoderConfig};
pub use mp3edge::codec::types::{AudioFormat, Picture as WitPicture, Tags as WitTags};

impl From<WitTags> for crate::Tags {
    fn from(t: WitTags) -> Self {
        crate::Tags { title: t.title, artist: t.artist, album: t.album, year: t.year, comment: t.comment, genre: t.genre, track: t.track }
    }
}

impl From<WitPicture> for crate::Picture {
    fn from(p: WitPicture) -> Self {
        crate::Picture { mime_type: p.mime_type, width: p.width, height: p.height, data: p.data }
    }
}

use exports::mp3edge::codec::encoder as wit;

/// An encoder, as a plugin provides it.
pub trait Codec: Sized + 'static {
    /// What the plugin is and what PCM it accepts.
    fn info() -> CodecInfo;
    /// A new session; an unusable configuration is an error with a readable reason.
    fn start(config: EncoderConfig) -> Result<Self, String>;
    /// Encodes interleaved s16 PCM; returns the output produced so far.
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String>;
    /// Encodes interleaved 24-bit PCM (a session started with `bits_per_sample` 24). Only a
    /// codec that lists 24 in its `bit_depths` is sent any; the others keep this refusal.
    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        let _ = pcm;
        Err(format!("{} encodes 16-bit samples only", Self::info().name))
    }
    /// Flushes; the tail and an optional header patch.
    fn finish(self) -> Result<crate::Finished, String>;
}

/// The exported plugin for codec `C` (see [`export_codec!`]).
pub struct Plugin<C>(PhantomData<C>);

/// A session of codec `C`; `None` once finished.
pub struct Session<C>(RefCell<Option<C>>);

impl<C: Codec> wit::Guest for Plugin<C> {
    type Session = Session<C>;

    fn info() -> CodecInfo {
        C::info()
    }
}

impl<C: Codec> wit::GuestSession for Session<C> {
    fn start(config: EncoderConfig) -> Result<wit::Session, String> {
        Ok(wit::Session::new(Session(RefCell::new(Some(C::start(config)?)))))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        let mut session = self.0.borrow_mut();
        session.as_mut().ok_or_else(|| format!("{}: session already finished", C::info().name))?.encode(&pcm)
    }

    fn encode_wide(&self, pcm: Vec<i32>) -> Result<Vec<u8>, String> {
        let mut session = self.0.borrow_mut();
        session.as_mut().ok_or_else(|| format!("{}: session already finished", C::info().name))?.encode_wide(&pcm)
    }

    fn finish(&self) -> Result<wit::Finished, String> {
        let session = self.0.take().ok_or_else(|| format!("{}: session already finished", C::info().name))?;
        let crate::Finished { tail, patch } = session.finish()?;
        let patch = patch.map(|crate::HeaderPatch { offset, bytes }| mp3edge::codec::types::HeaderPatch { offset, bytes });
        Ok(wit::Finished { tail, patch })
    }
}

/// Exports `$codec` (a type implementing [`Codec`]) as this component's `encoder`.
#[macro_export]
macro_rules! export_codec {
    ($codec:ty) => {
        type ExportedCodecPlugin = $crate::component::Plugin<$codec>;
        $crate::component::export!(ExportedCodecPlugin with_types_in $crate::component);
    };
}
