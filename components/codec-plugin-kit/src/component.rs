//! The WIT side (wasm only): the `mp3edge:codec/codec-plugin` bindings, the conversions between
//! the WIT records and the kit's plain types, and the adapter that exports any [`Codec`] as the
//! `encoder` interface, with the session bookkeeping; [`rules`] exports a codec's
//! [`BitrateRules`](crate::BitrateRules) as the optional `bitrate-rules` interface.

use crate::Codec;
use std::cell::RefCell;
use std::marker::PhantomData;

wit_bindgen::generate!({
    path: "../../wit/codec",
    world: "mp3edge:codec/codec-plugin@0.1.0",
    pub_export_macro: true,
    default_bindings_module: "codec_plugin_kit::component",
});

pub use exports::mp3edge::codec::encoder::{CodecInfo, EncoderConfig};
pub use mp3edge::codec::types::{AudioFormat, Finished, HeaderPatch, Picture, Tags};

use exports::mp3edge::codec::encoder as wit;

impl From<EncoderConfig> for crate::EncoderConfig {
    fn from(c: EncoderConfig) -> Self {
        let Tags { title, artist, album, year, comment, genre, track } = c.tags;
        crate::EncoderConfig {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            vbr_quality: c.vbr_quality,
            level: c.level,
            bits_per_sample: c.bits_per_sample,
            total_frames: c.total_frames,
            tags: crate::Tags { title, artist, album, year, comment, genre, track },
            cover: c.cover.map(|p| crate::Picture { mime_type: p.mime_type, width: p.width, height: p.height, data: p.data }),
        }
    }
}

impl From<crate::CodecInfo> for CodecInfo {
    fn from(i: crate::CodecInfo) -> Self {
        let crate::CodecInfo { name, extension, content_type, sample_rates, max_channels, bitrates, vbr, levels, bit_depths, cover } = i;
        CodecInfo { name, extension, content_type, sample_rates, max_channels, bitrates, vbr, levels, bit_depths, cover }
    }
}

impl From<crate::Finished> for Finished {
    fn from(f: crate::Finished) -> Self {
        Finished { tail: f.tail, patch: f.patch.map(|crate::HeaderPatch { offset, bytes }| HeaderPatch { offset, bytes }) }
    }
}

/// The exported plugin for codec `C` (see [`export_codec!`](crate::export_codec!)).
pub struct Plugin<C>(PhantomData<C>);

/// A session of codec `C`; `None` once finished.
pub struct Session<C>(RefCell<Option<C>>);

impl<C: Codec> wit::Guest for Plugin<C> {
    type Session = Session<C>;

    fn info() -> CodecInfo {
        C::info().into()
    }
}

impl<C: Codec> Session<C> {
    fn finished() -> String {
        format!("{}: session already finished", C::info().name)
    }
}

impl<C: Codec> wit::GuestSession for Session<C> {
    fn start(config: EncoderConfig) -> Result<wit::Session, String> {
        Ok(wit::Session::new(Session(RefCell::new(Some(C::start(config.into())?)))))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().as_mut().ok_or_else(Self::finished)?.encode(&pcm)
    }

    fn encode_wide(&self, pcm: Vec<i32>) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().as_mut().ok_or_else(Self::finished)?.encode_wide(&pcm)
    }

    fn finish(&self) -> Result<Finished, String> {
        Ok(self.0.take().ok_or_else(Self::finished)?.finish()?.into())
    }
}

/// The optional `bitrate-rules` export (see [`export_bitrate_rules!`](crate::export_bitrate_rules!)).
pub mod rules {
    use std::marker::PhantomData;

    wit_bindgen::generate!({
        path: "../../wit/codec",
        world: "mp3edge:codec/bitrate-rules-export@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_rules",
        default_bindings_module: "codec_plugin_kit::component::rules",
    });

    /// The exported rules of codec `C`.
    pub struct Rules<C>(PhantomData<C>);

    impl<C: crate::BitrateRules> exports::mp3edge::codec::bitrate_rules::Guest for Rules<C> {
        fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32> {
            C::bitrates_at(sample_rate, channels)
        }
    }
}
