//! Hostile codec plugin for tests: it exports `segments` and traps (a panic) in the encoder of
//! every segment after the first, so one segment of a segmented job fails. Serially it writes
//! the raw PCM. Wasm-only (empty natively).
#![cfg(target_family = "wasm")]

use codec_plugin_kit::component::{EncoderConfig as WitConfig, Finished as WitFinished};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

struct Raw;

impl Codec for Raw {
    fn info() -> CodecInfo {
        CodecInfo::new("segment-trap", "raw", "application/octet-stream")
    }

    fn start(_: EncoderConfig) -> Result<Self, String> {
        Ok(Raw)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        Ok(pcm.iter().flat_map(|s| s.to_le_bytes()).collect())
    }

    fn finish(self) -> Result<Finished, String> {
        Ok(Finished { tail: Vec::new(), patch: None })
    }
}

codec_plugin_kit::export_codec!(Raw);

mod segments_export {
    wit_bindgen::generate!({
        path: "../../../wit/codec",
        world: "mp3edge:codec/segments-export@0.1.0",
        with: { "mp3edge:codec/types@0.1.0": codec_plugin_kit::component::mp3edge::codec::types },
    });
    pub use exports::mp3edge::codec::segments::*;
}

use segments_export as wit;

struct Segments;

impl wit::Guest for Segments {
    type SegmentEncoder = Segment;
    type Joiner = Joiner;

    fn plan(_: WitConfig) -> Option<wit::SegmentPlan> {
        Some(wit::SegmentPlan { granule: 1, lead_in: 0, lead_out: 0 })
    }
}

struct Segment(u64);

impl wit::GuestSegmentEncoder for Segment {
    fn start(_: WitConfig, first_frame: u64, _: u32) -> Result<wit::SegmentEncoder, String> {
        Ok(wit::SegmentEncoder::new(Segment(first_frame)))
    }

    fn encode(&self, pcm: Vec<i16>) -> Result<Vec<u8>, String> {
        if self.0 > 0 {
            unreachable!("codec-segment-trap: a later segment traps on purpose");
        }
        Ok(pcm.iter().flat_map(|s| s.to_le_bytes()).collect())
    }

    fn finish(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
}

struct Joiner;

impl wit::GuestJoiner for Joiner {
    fn start(_: WitConfig) -> Result<wit::Joiner, String> {
        Ok(wit::Joiner::new(Joiner))
    }

    fn add(&self, segment: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(segment)
    }

    fn finish(&self) -> Result<WitFinished, String> {
        Ok(WitFinished { tail: Vec::new(), patch: None })
    }
}

segments_export::export!(Segments with_types_in segments_export);
