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

#[cfg(target_family = "wasm")]
pub mod component;
#[cfg(target_family = "wasm")]
pub use component::{AudioFormat, Codec, CodecInfo, EncoderConfig, Picture, Tags};
