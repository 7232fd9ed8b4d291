//! WebAssembly component glue: exports [`Mp3Session`] as the `encoder` interface, and the
//! segment encoder and joiner as the `segments` interface.

use crate::{BITRATES_KBPS, Config, Mp3Session, SAMPLE_RATES, Tags, joiner, segment};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for Mp3Session {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "mp3-lame".into(),
            extension: "mp3".into(),
            content_type: "audio/mpeg".into(),
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: 2,
            bitrates: BITRATES_KBPS.to_vec(),
            levels: Vec::new(),
            bit_depths: vec![16],
            cover: true,
            vbr: true,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        Mp3Session::new(&config_of(c))
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        Mp3Session::encode(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        Mp3Session::finish(self)
    }
}

/// The plugin's configuration from the WIT one.
fn config_of(c: EncoderConfig) -> Config {
    let t = c.tags;
    Config {
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
            genre: t.genre,
            track: t.track,
            picture: c.cover.map(|p| p.data),
        },
    }
}

codec_plugin_kit::export_codec!(Mp3Session);

/// The `segments` export, with the kit's types.
mod segments_export {
    wit_bindgen::generate!({
        path: "../../wit/codec",
        world: "mp3edge:codec/segments-export@0.1.0",
        with: { "mp3edge:codec/types@0.1.0": codec_plugin_kit::component::mp3edge::codec::types },
    });
    pub use exports::mp3edge::codec::segments::*;
}

use segments_export as wit;
use std::cell::RefCell;

struct Segments;

impl wit::Guest for Segments {
    type SegmentEncoder = SegmentEncoderResource;
    type Joiner = JoinerResource;

    fn plan(config: EncoderConfig) -> Option<wit::SegmentPlan> {
        let config = config_of(config);
        // Only configurations a session accepts are segmented.
        Mp3Session::start(&config, false).ok()?;
        let granule = segment::frame_samples(config.sample_rate);
        let lead = segment::LEAD_FRAMES * granule;
        Some(wit::SegmentPlan {
            granule,
            lead_in: lead,
            lead_out: lead,
        })
    }
}

/// A segment encoder; `None` once finished.
struct SegmentEncoderResource(RefCell<Option<segment::SegmentEncoder>>);

impl wit::GuestSegmentEncoder for SegmentEncoderResource {
    fn start(
        config: EncoderConfig,
        first_frame: u64,
        lead_in: u32,
    ) -> Result<wit::SegmentEncoder, String> {
        let encoder = segment::SegmentEncoder::start(&config_of(config), first_frame, lead_in)?;
        Ok(wit::SegmentEncoder::new(SegmentEncoderResource(
            RefCell::new(Some(encoder)),
        )))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.0
            .borrow_mut()
            .as_mut()
            .ok_or("mp3: segment already finished")?
            .encode(&pcm)
    }

    fn finish(&self) -> Result<Vec<u8>, String> {
        self.0
            .take()
            .ok_or("mp3: segment already finished")?
            .finish()
    }
}

/// A joiner; `None` once finished.
struct JoinerResource(RefCell<Option<joiner::Joiner>>);

impl wit::GuestJoiner for JoinerResource {
    fn start(config: EncoderConfig) -> Result<wit::Joiner, String> {
        Ok(wit::Joiner::new(JoinerResource(RefCell::new(Some(
            joiner::Joiner::new(config.input.sample_rate),
        )))))
    }

    fn add(&self, segment: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0
            .borrow_mut()
            .as_mut()
            .ok_or("mp3: joiner already finished")?
            .add(segment)
    }

    fn finish(
        &self,
    ) -> Result<codec_plugin_kit::component::mp3edge::codec::types::Finished, String> {
        let codec_plugin_kit::Finished { tail, patch } = self
            .0
            .take()
            .ok_or("mp3: joiner already finished")?
            .finish()?;
        let patch =
            patch.map(
                |p| codec_plugin_kit::component::mp3edge::codec::types::HeaderPatch {
                    offset: p.offset,
                    bytes: p.bytes,
                },
            );
        Ok(codec_plugin_kit::component::mp3edge::codec::types::Finished { tail, patch })
    }
}

segments_export::export!(Segments with_types_in segments_export);
