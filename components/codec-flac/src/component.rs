//! WebAssembly component glue that is this plugin's own: the segment encoder and joiner as the
//! `segments` interface (the `encoder` export is the kit's `export_codec!`, in `lib.rs`).

use crate::{EncoderConfig, joiner, segment};
use codec_plugin_kit::component::mp3edge::codec::types as wit_types;
use std::cell::RefCell;

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

struct Segments;

impl wit::Guest for Segments {
    type SegmentEncoder = SegmentEncoderResource;
    type Joiner = JoinerResource;

    fn plan(config: wit_types::EncoderConfig) -> Option<wit::SegmentPlan> {
        let (granule, lead_in, lead_out) = segment::plan(&EncoderConfig::from(config))?;
        Some(wit::SegmentPlan { granule, lead_in, lead_out })
    }
}

/// A segment encoder; `None` once finished.
struct SegmentEncoderResource(RefCell<Option<segment::SegmentEncoder>>);

impl wit::GuestSegmentEncoder for SegmentEncoderResource {
    fn start(config: wit_types::EncoderConfig, first_frame: u64, lead_in: u32) -> Result<wit::SegmentEncoder, String> {
        let encoder = segment::SegmentEncoder::start(&config.into(), first_frame, lead_in)?;
        Ok(wit::SegmentEncoder::new(SegmentEncoderResource(RefCell::new(Some(encoder)))))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().as_mut().ok_or("flac: segment already finished")?.encode(&pcm)
    }

    fn finish(&self) -> Result<Vec<u8>, String> {
        self.0.take().ok_or("flac: segment already finished")?.finish()
    }
}

/// A joiner; `None` once finished.
struct JoinerResource(RefCell<Option<joiner::Joiner>>);

impl wit::GuestJoiner for JoinerResource {
    fn start(config: wit_types::EncoderConfig) -> Result<wit::Joiner, String> {
        let joiner = joiner::Joiner::new(&config.into())?;
        Ok(wit::Joiner::new(JoinerResource(RefCell::new(Some(joiner)))))
    }

    fn add(&self, segment: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().as_mut().ok_or("flac: joiner already finished")?.add(&segment)
    }

    fn finish(&self) -> Result<wit_types::Finished, String> {
        let finished = self.0.take().ok_or("flac: joiner already finished")?.finish()?;
        Ok(finished.into())
    }
}

segments_export::export!(Segments with_types_in segments_export);
