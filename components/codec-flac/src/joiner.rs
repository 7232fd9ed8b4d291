//! Joins encoded segments ([`crate::segment`]) into the FLAC file a serial encode makes.
//!
//! Owns the join: the file's header (from the job's configuration), each frame renumbered to
//! its place in the whole stream (a fixed-block-size frame header carries its frame number,
//! UTF-8 coded, so the header's length, its CRC-8 and the frame's CRC-16 are made anew, after
//! the segment's own CRC-16 is checked), the checks that the segments follow each other
//! exactly, and the final STREAMINFO and seek table. STREAMINFO's MD5 is of the whole PCM,
//! which no segment sees and MD5 cannot combine from parts, so the joiner decodes each
//! segment's frames with libFLAC's decoder and hashes the samples in order.

use std::ffi::c_void;

use crc::{CRC_8_SMBUS, CRC_16_UMTS, Crc};
use libflac_sys as ffi;
use md5::{Digest, Md5};

use crate::segment::{HEADER_LEN, MAGIC, RECORD_HEAD_LEN};
use crate::{EncoderConfig, Finished, FrameLog, Layout, SeekPlan, header_bytes, patch_bytes};

/// FLAC's frame header CRC-8 (polynomial 0x07, initial 0) and frame CRC-16 (0x8005, initial 0).
const CRC8: Crc<u8> = Crc::<u8>::new(&CRC_8_SMBUS);
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_UMTS);
/// Frame numbers of fixed-block-size streams are 31 bits.
const MAX_FRAMES: u64 = 1 << 31;

/// The join of one input's segments.
pub struct Joiner {
    layout: Layout,
    seek: SeekPlan,
    /// The file's header; `None` once handed out.
    header: Option<Vec<u8>>,
    log: FrameLog,
    md5: Md5,
    /// Whether the last frame so far was shorter than a block (then it must be the last).
    short_frame: bool,
}

impl Joiner {
    pub fn new(config: &EncoderConfig) -> Result<Self, String> {
        let layout = Layout::of(config)?;
        if layout.bits_per_sample != 16 {
            return Err("flac: segments take 16-bit samples only".into());
        }
        let seek = SeekPlan::new(layout.sample_rate, config.total_frames);
        let header = header_bytes(&layout, &seek, config)?;
        Ok(Joiner { layout, seek, header: Some(header), log: FrameLog::new(), md5: Md5::new(), short_frame: false })
    }

    /// Adds the next encoded segment; the output that is now final (the header first).
    pub fn add(&mut self, segment: &[u8]) -> Result<Vec<u8>, String> {
        if segment.len() < HEADER_LEN || &segment[..4] != MAGIC {
            return Err("flac: not an encoded FLAC segment".into());
        }
        let first = u64::from_le_bytes(segment[4..HEADER_LEN].try_into().unwrap());
        if first != self.log.samples_done {
            return Err(format!("flac: segment starts at frame {first}, the stream so far ends at {}", self.log.samples_done));
        }
        let mut out = self.header.take().unwrap_or_default();
        let frames_start = out.len();
        let mut at = HEADER_LEN;
        while at < segment.len() {
            let head = segment.get(at..at + RECORD_HEAD_LEN).ok_or("flac: segment cut inside a record")?;
            let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
            let samples = u32::from_le_bytes(head[4..].try_into().unwrap());
            at += RECORD_HEAD_LEN;
            let frame = segment.get(at..at + len).ok_or("flac: segment cut inside a frame")?;
            at += len;
            if self.short_frame {
                return Err("flac: a frame follows one shorter than a block (segments not cut on blocks)".into());
            }
            if samples == 0 || samples as usize > self.layout.block_size {
                return Err(format!("flac: a segment's frame of {samples} samples (blocks are {})", self.layout.block_size));
            }
            if self.log.frame_number >= MAX_FRAMES {
                return Err("flac: stream too long (more than 2^31 frames)".into());
            }
            let before = out.len();
            renumber(frame, self.log.frame_number, &mut out)?;
            self.log.add(out.len() - before, u64::from(samples));
            self.short_frame = (samples as usize) < self.layout.block_size;
        }
        let decoded = hash_frames(&self.layout, &out[frames_start..], &mut self.md5)?;
        let expected = self.log.samples_done - first;
        if decoded != expected {
            return Err(format!("flac: a segment's frames decode to {decoded} samples, its records say {expected}"));
        }
        Ok(out)
    }

    /// Ends the file after the last segment: the header if no segment came, and the patch with
    /// the final STREAMINFO (total samples, frame sizes, MD5) and the filled seek table.
    pub fn finish(mut self) -> Result<Finished, String> {
        let tail = self.header.take().unwrap_or_default();
        let patch = patch_bytes(&self.layout, &self.seek, &self.log, self.md5.finalize().into())?;
        Ok(Finished { tail, patch: Some(patch) })
    }
}

/// Appends `frame` to `out` with the frame number `number` in its header, and the header's
/// CRC-8 and the frame's CRC-16 made anew.
fn renumber(frame: &[u8], number: u64, out: &mut Vec<u8>) -> Result<(), String> {
    if frame.len() < 4 + 1 + 1 + 2 || frame[0] != 0xFF || frame[1] != 0xF8 {
        return Err("flac: a segment's frame does not start with a fixed-block-size frame header".into());
    }
    let coded_len = match frame[4].leading_ones() {
        0 => 1,
        n @ 2..=7 => n as usize,
        _ => return Err("flac: a segment's frame number is badly coded".into()),
    };
    // Block size stated after the number (codes 6, 7), then the rate (codes 12, 13, 14).
    let extra = match frame[2] >> 4 {
        6 => 1,
        7 => 2,
        _ => 0,
    } + match frame[2] & 0x0F {
        12 => 1,
        13 | 14 => 2,
        _ => 0,
    };
    let old_header_end = 4 + coded_len + extra + 1;
    if frame.len() < old_header_end + 2 {
        return Err("flac: a segment's frame is cut short".into());
    }
    // Checked before the CRCs are made anew, which would otherwise vouch for damaged bytes.
    let (body, crc) = frame.split_at(frame.len() - 2);
    if CRC16.checksum(body).to_be_bytes() != crc {
        return Err("flac: a segment's frame fails its CRC-16 (damaged)".into());
    }
    let start = out.len();
    out.extend_from_slice(&frame[..4]);
    utf8_number(number, out);
    out.extend_from_slice(&frame[4 + coded_len..4 + coded_len + extra]);
    let crc8 = CRC8.checksum(&out[start..]);
    out.push(crc8);
    out.extend_from_slice(&frame[old_header_end..frame.len() - 2]);
    let crc16 = CRC16.checksum(&out[start..]);
    out.extend_from_slice(&crc16.to_be_bytes());
    Ok(())
}

/// FLAC's UTF-8-like coding of a frame number (below 2^31: 1 to 6 bytes).
pub(crate) fn utf8_number(n: u64, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    // Payload bits: 5 + 6 in two bytes, 4 + 6 × 2 in three, … 1 + 6 × 5 in six, 6 × 6 in seven.
    let len: u32 = match n {
        0..0x800 => 2,
        0x800..0x1_0000 => 3,
        0x1_0000..0x20_0000 => 4,
        0x20_0000..0x400_0000 => 5,
        0x400_0000..0x8000_0000 => 6,
        _ => 7,
    };
    let lead = (0xFF00u16 >> len) as u8;
    out.push(lead | (n >> (6 * (len - 1))) as u8);
    for i in (0..len - 1).rev() {
        out.push(0x80 | ((n >> (6 * i)) & 0x3F) as u8);
    }
}

/// What the decoder's callbacks read and fill.
struct Feed<'a> {
    data: Vec<u8>,
    at: usize,
    channels: usize,
    md5: &'a mut Md5,
    samples: u64,
    bytes: Vec<u8>,
    error: Option<String>,
}

unsafe extern "C" fn read_callback(
    _decoder: *const ffi::FLAC__StreamDecoder,
    buffer: *mut ffi::FLAC__byte,
    bytes: *mut usize,
    client_data: *mut c_void,
) -> ffi::FLAC__StreamDecoderReadStatus {
    // SAFETY: `client_data` is the `Feed` of `hash_frames`, alive during the decode; libFLAC
    // offers `*bytes` writable bytes at `buffer`.
    unsafe {
        let feed = &mut *client_data.cast::<Feed>();
        let n = (*bytes).min(feed.data.len() - feed.at);
        std::ptr::copy_nonoverlapping(feed.data[feed.at..].as_ptr(), buffer, n);
        feed.at += n;
        *bytes = n;
        if n == 0 { ffi::FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM } else { ffi::FLAC__STREAM_DECODER_READ_STATUS_CONTINUE }
    }
}

unsafe extern "C" fn decoded_callback(
    _decoder: *const ffi::FLAC__StreamDecoder,
    frame: *const ffi::FLAC__Frame,
    buffer: *const *const ffi::FLAC__int32,
    client_data: *mut c_void,
) -> ffi::FLAC__StreamDecoderWriteStatus {
    // SAFETY: as in `read_callback`; libFLAC passes one array of `blocksize` samples per
    // channel of the stream.
    unsafe {
        let feed = &mut *client_data.cast::<Feed>();
        let (block, channels) = ((*frame).header.blocksize as usize, feed.channels);
        feed.bytes.resize(block * channels * 2, 0);
        for c in 0..channels {
            let samples = std::slice::from_raw_parts(*buffer.add(c), block);
            for (out, s) in feed.bytes[c * 2..].chunks_mut(channels * 2).zip(samples) {
                out[..2].copy_from_slice(&(*s as i16).to_le_bytes());
            }
        }
        feed.md5.update(&feed.bytes);
        feed.samples += block as u64;
    }
    ffi::FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE
}

unsafe extern "C" fn error_callback(
    _decoder: *const ffi::FLAC__StreamDecoder,
    status: ffi::FLAC__StreamDecoderErrorStatus,
    client_data: *mut c_void,
) {
    // SAFETY: as in `read_callback`.
    let feed = unsafe { &mut *client_data.cast::<Feed>() };
    feed.error.get_or_insert_with(|| format!("flac: a joined frame does not decode (libFLAC error status {status})"));
}

/// Decodes `frames` (whole frames of the stream `layout` describes) with libFLAC and adds
/// their samples to `md5`, as STREAMINFO's MD5 takes them (interleaved, little-endian);
/// the number of PCM frames decoded.
fn hash_frames(layout: &Layout, frames: &[u8], md5: &mut Md5) -> Result<u64, String> {
    if frames.is_empty() {
        return Ok(0);
    }
    // A STREAMINFO first, so that frames whose rate only STREAMINFO states decode too.
    let mut data = b"fLaC".to_vec();
    crate::metadata_block(&mut data, crate::STREAMINFO, true, &layout.streaminfo(None, 0, [0; 16]))?;
    data.extend_from_slice(frames);
    let mut feed = Feed { data, at: 0, channels: usize::from(layout.channels), md5, samples: 0, bytes: Vec::new(), error: None };
    // SAFETY: a new decoder, deleted below; its client data is `feed`, which outlives it.
    unsafe {
        let decoder = ffi::FLAC__stream_decoder_new();
        if decoder.is_null() {
            return Err("flac: out of memory for the decoder".into());
        }
        let client: *mut Feed = &mut feed;
        let status = ffi::FLAC__stream_decoder_init_stream(
            decoder,
            Some(read_callback),
            None,
            None,
            None,
            None,
            Some(decoded_callback),
            None,
            Some(error_callback),
            client.cast(),
        );
        let ok = status == ffi::FLAC__STREAM_DECODER_INIT_STATUS_OK && ffi::FLAC__stream_decoder_process_until_end_of_stream(decoder) != 0;
        ffi::FLAC__stream_decoder_delete(decoder);
        if !ok && feed.error.is_none() {
            feed.error = Some(format!("flac: decoding a joined segment failed (init status {status})"));
        }
    }
    match feed.error {
        Some(e) => Err(e),
        None => Ok(feed.samples),
    }
}
