//! One segment of a segmented encode: a LAME session over the segment's PCM (lead-in and
//! lead-out included), whose whole output is handed to the [`crate::joiner`] as one record.
//!
//! The record is LAME's output as it comes, then what only the end knows (the first
//! segment's info frame and a fixed-size trailer), so the encoder hands its bytes out as it
//! makes them and keeps none: a lane's instance stays as small as one block's output
//! whatever the segment's length (its linear memory never shrinks once grown).
//!
//! The first segment's session is an ordinary one (ID3v2 tag, placeholder info frame); the
//! others write bare frames. Because every segment starts on a frame boundary of the whole
//! input and LAME's encoder delay is the same for all, frame `g` of a segment is frame
//! `first_frame / frame_samples + g` of a serial encode.

use crate::{EncoderConfig, Mp3Session};
use codec_plugin_kit::Codec;

/// How far before and after its own range a segment's encoder is fed, in MP3 frames: enough
/// for the psychoacoustic model, the block-switching decision and the bit reservoir to settle
/// and for the joiner to find a splice point near the nominal seam.
pub const LEAD_FRAMES: u32 = 24;

/// Frames per MP3 frame at `sample_rate`: 1152 for MPEG-1 (32–48 kHz), 576 below.
pub fn frame_samples(sample_rate: u32) -> u32 {
    if sample_rate >= 32000 { 1152 } else { 576 }
}

const MAGIC: &[u8; 4] = b"MP3S";
const VERSION: u8 = 2;

/// An encoded segment as the joiner reads it.
#[derive(Debug)]
pub struct EncodedSegment {
    /// PCM frame of the whole input where this segment's input starts.
    pub first_frame: u64,
    /// PCM frames of the input before the segment's own range.
    pub lead_in: u32,
    /// PCM frames the encoder received.
    pub frames: u64,
    /// Bytes before the first audio frame: the ID3v2 tag and the placeholder info frame
    /// (first segment only).
    pub header_len: u32,
    /// The first segment's final info frame, as LAME wrote it for that segment alone: the
    /// joiner's template for the whole file's (empty when LAME writes none).
    pub info_frame: Vec<u8>,
    /// LAME's output for the segment.
    pub stream: Vec<u8>,
}

/// The trailer's fixed part: first frame, lead-in, frames, header length, info frame
/// length, version and magic.
const TRAILER: usize = 8 + 4 + 8 + 4 + 4 + 1 + 4;

impl EncodedSegment {
    /// What follows the stream in the record: the info frame, then the fixed trailer.
    fn trailer(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.info_frame.len() + TRAILER);
        out.extend_from_slice(&self.info_frame);
        out.extend_from_slice(&self.first_frame.to_le_bytes());
        out.extend_from_slice(&self.lead_in.to_le_bytes());
        out.extend_from_slice(&self.frames.to_le_bytes());
        out.extend_from_slice(&self.header_len.to_le_bytes());
        out.extend_from_slice(&(self.info_frame.len() as u32).to_le_bytes());
        out.push(VERSION);
        out.extend_from_slice(MAGIC);
        out
    }

    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, String> {
        let bad = || "mp3: not an encoded segment of this plugin".to_string();
        let n = bytes.len();
        if n < TRAILER || &bytes[n - 4..] != MAGIC || bytes[n - 5] != VERSION {
            return Err(bad());
        }
        let at = n - TRAILER;
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let (first_frame, lead_in, frames, header_len, info_len) =
            (u64_at(at), u32_at(at + 8), u64_at(at + 12), u32_at(at + 20), u32_at(at + 24));
        let info_start = at.checked_sub(info_len as usize).ok_or_else(bad)?;
        if header_len as usize > info_start {
            return Err(bad());
        }
        let info_frame = bytes[info_start..at].to_vec();
        bytes.truncate(info_start);
        Ok(EncodedSegment {
            first_frame,
            lead_in,
            frames,
            header_len,
            info_frame,
            stream: bytes,
        })
    }
}

/// The encoder of one segment.
pub struct SegmentEncoder {
    session: Mp3Session,
    channels: usize,
    first_frame: u64,
    lead_in: u32,
    frames: u64,
}

impl SegmentEncoder {
    pub fn start(config: &EncoderConfig, first_frame: u64, lead_in: u32) -> Result<Self, String> {
        let granule = u64::from(frame_samples(config.sample_rate));
        if !first_frame.is_multiple_of(granule) || !u64::from(lead_in).is_multiple_of(granule) {
            return Err(format!(
                "mp3: a segment must start on a frame boundary ({granule} samples): first frame {first_frame}, lead-in {lead_in}"
            ));
        }
        Ok(SegmentEncoder {
            session: Mp3Session::open(config, first_frame == 0)?,
            channels: usize::from(config.channels),
            first_frame,
            lead_in,
            frames: 0,
        })
    }

    /// Encodes interleaved PCM; the record's next bytes (possibly none).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        let out = self.session.encode(pcm)?;
        self.frames += (pcm.len() / self.channels.max(1)) as u64;
        Ok(out)
    }

    /// Flushes; the record's last bytes. The record is the concatenation of everything
    /// `encode` and `finish` returned.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        let SegmentEncoder {
            session,
            first_frame,
            lead_in,
            frames,
            ..
        } = self;
        let id3_len = session.first_frame;
        let finished = session.finish()?;
        let info_frame = finished.patch.map(|p| p.bytes).unwrap_or_default();
        let header_len = if first_frame == 0 {
            id3_len as u32 + info_frame.len() as u32
        } else {
            0
        };
        let mut out = finished.tail;
        out.extend(
            EncodedSegment {
                first_frame,
                lead_in,
                frames,
                header_len,
                info_frame,
                stream: Vec::new(),
            }
            .trailer(),
        );
        Ok(out)
    }
}
