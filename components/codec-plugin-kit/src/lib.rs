//! What every codec plugin shares, written once. Natively: the plain result types a plugin's
//! encoder core returns ([`Finished`], [`HeaderPatch`]), so cores are tested without WIT. On
//! wasm, additionally: the `mp3edge:codec/codec-plugin` bindings and an adapter that exports any
//! [`Codec`] as the WIT `encoder` interface. A plugin implements [`Codec`] for its encoder and
//! writes `codec_plugin_kit::export_codec!(MyEncoder);` — nothing else touches WIT.

/// Bytes to write over the output at `offset` once encoding is over (an mp3 info frame, a WAV
/// header with the final sizes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPatch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The end of a session: the remaining output and the optional header patch.
#[derive(Clone, Debug)]
pub struct Finished {
    pub tail: Vec<u8>,
    pub patch: Option<HeaderPatch>,
}

/// The descriptive tags a core is given: the WIT `tags`, without WIT, so every core shares one
/// type and is tested natively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub year: Option<String>,
    pub comment: Option<String>,
    pub genre: Option<String>,
    /// `3` or `3/12`.
    pub track: Option<String>,
}

/// A cover picture a core is given: the WIT `picture`, without WIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    /// `image/jpeg` or `image/png`.
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

#[cfg(target_family = "wasm")]
pub mod component;
#[cfg(target_family = "wasm")]
pub use component::{AudioFormat, Codec, CodecInfo, EncoderConfig};
