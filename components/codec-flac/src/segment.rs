//! The encoder of one segment, when a long input is encoded as segments at the same time.
//!
//! FLAC frames are independent of each other: a frame is made from its own block of PCM
//! alone (at every level but 1 and 4, whose loose mid-side choice looks back a few frames).
//! So a segment is cut on block boundaries with no lead-in or lead-out, and its frames are
//! the frames a serial encode makes for those blocks, but numbered from 0. This module owns the
//! plan and the encoded segment's private format, which only [`crate::joiner`] reads: a
//! header ([`MAGIC`], the segment's first PCM frame in the input) and one record per frame
//! (its length and PCM frames, then its bytes).

use crate::{EncoderConfig, Layout, LibFlac, widen};

/// The first bytes of an encoded segment.
pub const MAGIC: &[u8; 4] = b"fLsg";
/// Bytes of a segment's header: the magic and its first PCM frame (u64, little-endian).
pub const HEADER_LEN: usize = 4 + 8;
/// Bytes before each frame: its length and its PCM frames (u32 each, little-endian).
pub const RECORD_HEAD_LEN: usize = 8;

/// How an input encoded with `config` is cut: (granule, lead-in, lead-out) in PCM frames, or
/// `None` when it is not segmented. Segments take 16-bit PCM only (the `segments` interface's).
pub fn plan(config: &EncoderConfig) -> Option<(u32, u32, u32)> {
    let layout = Layout::of(config).ok()?;
    (layout.bits_per_sample == 16).then_some((layout.block_size as u32, 0, 0))
}

/// Appends one frame's record to `out`.
pub(crate) fn write_record(out: &mut Vec<u8>, frame: &[u8], samples: u32) {
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend_from_slice(frame);
}

/// One segment's encoder: libFLAC at the job's level, its frames written as records.
pub struct SegmentEncoder {
    flac: LibFlac,
    wide: Vec<i32>,
    /// The segment's header; `None` once handed out.
    header: Option<Vec<u8>>,
}

impl SegmentEncoder {
    /// `first_frame`: where the segment starts in the input (on a block boundary); `lead_in`
    /// must be 0, as [`plan`] asks.
    pub fn start(config: &EncoderConfig, first_frame: u64, lead_in: u32) -> Result<Self, String> {
        let layout = Layout::of(config)?;
        if layout.bits_per_sample != 16 {
            return Err("flac: segments take 16-bit samples only".into());
        }
        if lead_in != 0 {
            return Err(format!("flac: a segment has no lead-in (asked for {lead_in} frames)"));
        }
        if !first_frame.is_multiple_of(layout.block_size as u64) {
            return Err(format!("flac: segment start {first_frame} is not on a {}-frame block boundary", layout.block_size));
        }
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&first_frame.to_le_bytes());
        Ok(SegmentEncoder { flac: LibFlac::new(&layout, true)?, wide: Vec::new(), header: Some(header) })
    }

    /// Encodes interleaved 16-bit PCM; the segment's next bytes.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        codec_plugin_kit::frames("flac", pcm.len(), self.flac.channels)?;
        let mut wide = std::mem::take(&mut self.wide);
        let done = self.flac.process(widen(&mut wide, pcm));
        self.wide = wide;
        done.map(|()| self.output())
    }

    /// Encodes the last (short) block; the segment's last bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        self.flac.finish()?;
        Ok(self.output())
    }

    fn output(&mut self) -> Vec<u8> {
        let mut out = self.header.take().unwrap_or_default();
        out.append(&mut self.flac.sink.out);
        out
    }
}
