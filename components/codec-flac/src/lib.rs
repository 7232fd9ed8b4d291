//! FLAC codec plugin: interleaved 16- or 24-bit PCM in, a streamed FLAC file out.
//!
//! This module owns the FLAC container: the `fLaC` marker and the metadata blocks (STREAMINFO,
//! SEEKTABLE, VORBIS_COMMENT, PICTURE), the block buffering, the seek points and the level
//! presets. The frames themselves (prediction, residual coding, stereo decorrelation) are
//! `flacenc`'s, a pure-Rust encoder, so nothing C is cross-compiled for wasm.
//!
//! Streaming: the header goes out first with a placeholder STREAMINFO (no totals, no MD5) and a
//! SEEKTABLE of placeholder points; frames follow as blocks fill up. At the end, the exact
//! STREAMINFO and the filled seek table are the `finish` patch at offset 0 — they sit before the
//! tags and the cover, so the patch is at most [`MAX_PATCH_BYTES`] long and always falls within
//! the converter's first output chunk. [`FlacSession`] is plain Rust, tested natively, and a
//! [`Codec`]; the kit's `export_codec!` makes it the component's `encoder` on wasm.

/// flacenc estimates its predictors with `mul_add`, and WebAssembly has no fused multiply-add:
/// each one compiled to a call of libm's `fma`, an exact software emulation (with `scalbn`)
/// that took 57% of the plugin's time (`perf`, a 5-minute WAV). The estimate needs no fused
/// rounding, since the residuals are computed in integers from the quantized coefficients
/// and the stream stays lossless whatever they are, so the plugin links a plain multiply-add
/// under libm's names instead.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn fma(a: f64, b: f64, c: f64) -> f64 {
    a * b + c
}

/// The `f32` form of [`fma`].
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a * b + c
}

#[cfg(test)]
mod tests;

use codec_plugin_kit::{Codec, CodecInfo};
use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, ChannelAssignment, Frame, FrameHeader, FrameOffset, StreamInfo};
use flacenc::config;
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};

/// The session result types are the plugin kit's, shared by every codec.
pub use codec_plugin_kit::{EncoderConfig, Finished, HeaderPatch, Picture as Cover, Tags};

codec_plugin_kit::export_codec!(FlacSession);

/// Highest sample rate FLAC's STREAMINFO and frame headers can state (10 Hz units × 65535).
pub const MAX_SAMPLE_RATE: u32 = 655_350;
/// Most channels FLAC carries (in WAV's channel order, as the converter delivers them).
pub const MAX_CHANNELS: u8 = 8;
/// Compression levels, as `flac -0` … `flac -8`.
pub const LEVELS: std::ops::RangeInclusive<u8> = 0..=8;
/// Level used when the job asks for none (as `flac`'s default).
pub const DEFAULT_LEVEL: u8 = 5;
/// Sample depths the plugin writes.
pub const BIT_DEPTHS: [u8; 2] = [16, 24];
/// One seek point per this many seconds at least (libFLAC's default cadence).
pub const SEEK_POINT_SECS: u64 = 10;
/// Most seek points: 4 + 38 + 4 + 18 × 800 bytes of patch stay well under the 16 KiB first chunk.
pub const MAX_SEEK_POINTS: usize = 800;
/// Seek points reserved when the length is not announced: 3.6 KiB, one per 10 s up to 33
/// minutes, spread wider over longer streams at the end.
pub const UNKNOWN_LENGTH_SEEK_POINTS: usize = 200;
/// The longest header patch (marker, STREAMINFO, SEEKTABLE with every point).
pub const MAX_PATCH_BYTES: usize = 4 + 4 + 34 + 4 + 18 * MAX_SEEK_POINTS;
/// Name written as the Vorbis comment vendor string and `ENCODER` tag.
pub const VENDOR: &str = "mp3edge codec-flac (flacenc 0.5.1)";

/// Metadata block types (FLAC format, METADATA_BLOCK_HEADER).
const STREAMINFO: u8 = 0;
const SEEKTABLE: u8 = 3;
const VORBIS_COMMENT: u8 = 4;
const PICTURE: u8 = 6;
/// A metadata block's length is 24 bits.
const MAX_BLOCK_LEN: usize = (1 << 24) - 1;
/// Sample number of a placeholder seek point.
const PLACEHOLDER: u64 = u64::MAX;

/// The encoder settings of a level, after libFLAC's presets as far as `flacenc` has the knobs:
/// levels 0–2 use 1152-sample blocks and fixed predictors only (order ≤ 2 without stereo
/// decorrelation, ≤ 3, ≤ 4); 3–8 use 4096-sample blocks and linear prediction of order 6, 7, 8,
/// 10, 11, 12 (3 without stereo decorrelation). Every level stays within FLAC's streamable
/// subset (LPC order ≤ 12, blocks ≤ 4608).
pub fn level_config(level: u8) -> Result<config::Encoder, String> {
    if !LEVELS.contains(&level) {
        return Err(format!("flac: level {level} out of range (0 to 8)"));
    }
    let mut c = config::Encoder::default();
    c.multithread = false;
    c.block_size = if level <= 2 { 1152 } else { 4096 };
    let stereo = level != 0 && level != 3;
    c.stereo_coding.use_leftside = stereo;
    c.stereo_coding.use_rightside = stereo;
    c.stereo_coding.use_midside = stereo;
    let sub = &mut c.subframe_coding;
    sub.use_lpc = level >= 3;
    sub.fixed.max_order = match level {
        0 => 2,
        1 => 3,
        _ => 4,
    };
    sub.qlpc.lpc_order = match level {
        0..=3 => 6,
        4 => 7,
        5 => 8,
        6 => 10,
        7 => 11,
        _ => 12,
    };
    c.verify().map_err(|e| format!("flac: level {level}: {e}"))?;
    Ok(c)
}

/// Where a frame starts, for the seek table.
#[derive(Clone, Copy, Debug)]
struct SeekPoint {
    sample: u64,
    /// Bytes from the first frame's header.
    offset: u64,
    frames: u16,
}

/// One FLAC encoding run.
pub struct FlacSession {
    config: flacenc::error::Verified<config::Encoder>,
    stream_info: StreamInfo,
    /// The block being filled, and the MD5/sample count of everything filled so far.
    framebuf: FrameBuf,
    context: Context,
    /// Interleaved samples waiting for a full block.
    pending: Vec<i32>,
    channels: usize,
    block_size: usize,
    bits_per_sample: u8,
    sample_rate: u32,
    /// Whether frame headers are relabelled with `sample_rate` (see `new`).
    relabel: bool,
    /// Header bytes (marker to the last metadata block); `None` once handed out.
    header: Option<Vec<u8>>,
    /// Placeholder points reserved in the header.
    seek_slots: usize,
    /// Samples between the seek points we want.
    seek_spacing: u64,
    /// Frame starts kept as seek point candidates: every `stride`-th frame, thinned by
    /// doubling `stride` so memory stays bounded for any length.
    candidates: Vec<SeekPoint>,
    stride: u64,
    frame_number: u64,
    samples_done: u64,
    /// Bytes of frames written so far.
    frame_bytes: u64,
    sink: MemSink<u8>,
}

impl FlacSession {
    /// Validates `config`; the header comes out with the first `encode` (or `finish`). Of the
    /// configuration it reads the layout, the sample depth (16 or 24), the level (0 fastest – 8
    /// smallest; `None` is [`DEFAULT_LEVEL`]), the announced length (it spaces the seek points),
    /// the tags and the cover.
    pub fn new(config: EncoderConfig) -> Result<Self, String> {
        let EncoderConfig { sample_rate, channels, bits_per_sample, level, total_frames, ref tags, ref cover, .. } = config;
        if !(1..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(format!("flac: sample rate {sample_rate} Hz out of range (1 to {MAX_SAMPLE_RATE})"));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("flac: {channels} channels not supported (1 to {MAX_CHANNELS})"));
        }
        if !BIT_DEPTHS.contains(&bits_per_sample) {
            return Err(format!("flac: {bits_per_sample}-bit samples not supported (16 or 24)"));
        }
        let encoder = level_config(level.unwrap_or(DEFAULT_LEVEL))?;
        let block_size = encoder.block_size;
        let config = encoder.into_verified().map_err(|(_, e)| format!("flac: {e}"))?;
        let (ch, bps) = (usize::from(channels), usize::from(bits_per_sample));
        // flacenc's StreamInfo stops at 96 kHz; FLAC goes to 655350 Hz. flacenc only reads the
        // rate to label frame headers (the STREAMINFO written is ours), so above 96 kHz it gets
        // a stand-in: 96 kHz when frame headers can state the real rate (`flush_block` then
        // relabels each frame), else 65537 Hz, which no header can state, so frames say "rate
        // in STREAMINFO" as FLAC allows.
        let (label_rate, relabel) = if sample_rate <= 96_000 {
            (sample_rate, false)
        } else if header_states_rate(sample_rate) {
            (96_000, true)
        } else {
            (65_537, false)
        };
        let stream_info = StreamInfo::new(label_rate as usize, ch, bps).map_err(|e| format!("flac: {e}"))?;

        // Seek points every SEEK_POINT_SECS, or spread wider to fit MAX_SEEK_POINTS over the
        // announced length; without one, UNKNOWN_LENGTH_SEEK_POINTS slots are reserved and the
        // spacing is widened at the end if the stream outgrew them.
        let min_spacing = u64::from(sample_rate) * SEEK_POINT_SECS;
        let (seek_slots, seek_spacing) = match total_frames {
            Some(total) => {
                let spacing = min_spacing.max(total.div_ceil(MAX_SEEK_POINTS as u64));
                ((total.div_ceil(spacing) as usize).clamp(1, MAX_SEEK_POINTS), spacing)
            }
            None => (UNKNOWN_LENGTH_SEEK_POINTS, min_spacing),
        };
        let mut header = b"fLaC".to_vec();
        metadata_block(&mut header, STREAMINFO, false, &streaminfo_bytes(&stream_info, sample_rate, block_size, 0, [0; 16]))?;
        metadata_block(&mut header, SEEKTABLE, false, &seektable_bytes(&[], seek_slots))?;
        let comments = vorbis_comment_bytes(tags);
        metadata_block(&mut header, VORBIS_COMMENT, cover.is_none(), &comments)?;
        if let Some(cover) = cover {
            metadata_block(&mut header, PICTURE, true, &picture_bytes(cover)?)?;
        }
        Ok(Self {
            config,
            stream_info,
            framebuf: FrameBuf::with_size(ch, block_size).map_err(|e| format!("flac: {e}"))?,
            context: Context::new(bps, ch),
            pending: Vec::with_capacity(block_size * ch),
            channels: ch,
            block_size,
            bits_per_sample,
            sample_rate,
            relabel,
            header: Some(header),
            seek_slots,
            seek_spacing,
            candidates: Vec::new(),
            stride: 1,
            frame_number: 0,
            samples_done: 0,
            frame_bytes: 0,
            sink: MemSink::new(),
        })
    }
}

impl Codec for FlacSession {
    fn info() -> CodecInfo {
        // Any sample rate, up to 655350 Hz.
        CodecInfo {
            max_channels: MAX_CHANNELS,
            levels: LEVELS.collect(),
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
            ..CodecInfo::new("flac", "flac", "audio/flac")
        }
    }

    fn start(config: EncoderConfig) -> Result<Self, String> {
        FlacSession::new(config)
    }

    /// Encodes interleaved 16-bit PCM (a session of 16 bits per sample).
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        if self.bits_per_sample != 16 {
            return Err("flac: this session takes 24-bit samples (encode-wide)".into());
        }
        self.push(pcm.iter().map(|&s| i32::from(s)), pcm.len())
    }

    /// Encodes interleaved 24-bit PCM (−8388608 ..= 8388607; a session of 24 bits per sample).
    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        if self.bits_per_sample != 24 {
            return Err("flac: this session takes 16-bit samples (encode)".into());
        }
        if let Some(bad) = pcm.iter().find(|s| !(-(1 << 23)..(1 << 23)).contains(*s)) {
            return Err(format!("flac: sample {bad} outside the 24-bit range"));
        }
        self.push(pcm.iter().copied(), pcm.len())
    }

    /// Encodes the last (short) block; the tail and the patch with the final STREAMINFO (exact
    /// total samples, MD5 of the PCM) and the filled seek table.
    fn finish(mut self) -> Result<Finished, String> {
        let mut tail = self.header.take().unwrap_or_default();
        if self.frame_number >= (1 << 31) {
            return Err("flac: stream too long (more than 2^31 frames)".into());
        }
        self.flush_block(&mut tail)?;
        let total = self.samples_done;
        let md5 = if total == 0 { [0; 16] } else { self.context.md5_digest() };
        // No frame at all: STREAMINFO still needs valid (non-zero) block sizes.
        let mut patch = b"fLaC".to_vec();
        metadata_block(&mut patch, STREAMINFO, false, &streaminfo_bytes(&self.stream_info, self.sample_rate, self.block_size, total, md5))?;
        metadata_block(&mut patch, SEEKTABLE, false, &seektable_bytes(&self.seek_points(total), self.seek_slots))?;
        Ok(Finished { tail, patch: Some(HeaderPatch { offset: 0, bytes: patch }) })
    }
}

impl FlacSession {
    fn push(&mut self, samples: impl Iterator<Item = i32>, len: usize) -> Result<Vec<u8>, String> {
        codec_plugin_kit::frames("flac", len, self.channels)?;
        let mut out = self.header.take().unwrap_or_default();
        let block = self.block_size * self.channels;
        for s in samples {
            self.pending.push(s);
            if self.pending.len() == block {
                self.flush_block(&mut out)?;
            }
        }
        Ok(out)
    }

    /// Encodes the pending samples as one frame and appends it to `out`.
    fn flush_block(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let frames = self.pending.len() / self.channels;
        if frames == 0 {
            return Ok(());
        }
        (&mut self.framebuf, &mut self.context)
            .fill_interleaved(&self.pending)
            .map_err(|e| format!("flac: {e}"))?;
        self.pending.clear();
        let frame = flacenc::encode_fixed_size_frame(&self.config, &self.framebuf, self.frame_number as usize, &self.stream_info)
            .map_err(|e| format!("flac: {e}"))?;
        let frame = if !self.relabel {
            frame
        } else {
            let (header, subframes) = frame.into_parts();
            let header = FrameHeader::new(
                frames,
                header.channel_assignment().clone(),
                usize::from(self.bits_per_sample),
                self.sample_rate as usize,
                FrameOffset::Frame(self.frame_number as u32),
            )
            .map_err(|e| format!("flac: frame header: {e}"))?;
            Frame::new(header, subframes.into_iter()).map_err(|e| format!("flac: {e}"))?
        };
        self.stream_info.update_frame_info(&frame);
        self.sink.clear();
        frame.write(&mut self.sink).map_err(|e| format!("flac: writing a frame: {e}"))?;
        let bytes = self.sink.as_slice();

        if self.frame_number.is_multiple_of(self.stride) {
            self.candidates.push(SeekPoint { sample: self.samples_done, offset: self.frame_bytes, frames: frames as u16 });
            if self.candidates.len() >= 4 * MAX_SEEK_POINTS {
                // Keep every other candidate: still twice MAX_SEEK_POINTS over the whole.
                self.candidates = self.candidates.iter().step_by(2).copied().collect();
                self.stride *= 2;
            }
        }
        self.frame_number += 1;
        self.samples_done += frames as u64;
        self.frame_bytes += bytes.len() as u64;
        out.extend_from_slice(bytes);
        Ok(())
    }

    /// The seek points to write: the first frame at or after each multiple of the spacing,
    /// widened so that they fit the reserved slots, in increasing order without duplicates.
    fn seek_points(&self, total: u64) -> Vec<SeekPoint> {
        let spacing = self.seek_spacing.max(total.div_ceil(self.seek_slots as u64));
        let mut points: Vec<SeekPoint> = Vec::new();
        let mut next_target = 0u64;
        for p in &self.candidates {
            if p.sample >= next_target {
                points.push(*p);
                next_target = (p.sample / spacing + 1) * spacing;
            }
        }
        points.truncate(self.seek_slots);
        points
    }
}

/// Whether a frame header can state `rate` itself (a coded rate, kHz, 10 Hz or Hz units), as
/// flacenc's frame header constructor decides.
fn header_states_rate(rate: u32) -> bool {
    FrameHeader::new(4096, ChannelAssignment::Independent(1), 16, rate as usize, FrameOffset::Frame(0)).is_ok()
}

/// Appends a metadata block (header + body) to `out`.
fn metadata_block(out: &mut Vec<u8>, kind: u8, last: bool, body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BLOCK_LEN {
        return Err(format!("flac: metadata block of {} bytes exceeds FLAC's 16 MiB limit", body.len()));
    }
    out.push(kind | if last { 0x80 } else { 0 });
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    Ok(())
}

/// STREAMINFO's 34 bytes. Before the end, totals, frame sizes and MD5 are 0 ("unknown").
/// Every block but the last has the nominal size, and FLAC's minimum block size excludes the
/// last block, so both block sizes are the nominal one (as libFLAC writes fixed-size streams);
/// `flacenc` tracks the real minimum and maximum frame sizes as frames are written.
fn streaminfo_bytes(info: &StreamInfo, sample_rate: u32, block_size: usize, total: u64, md5: [u8; 16]) -> Vec<u8> {
    let mut b = Vec::with_capacity(34);
    let (min_block, max_block) = (block_size as u16, block_size as u16);
    let (min_frame, max_frame) =
        if total == 0 { (0, 0) } else { (info.min_frame_size() as u32, info.max_frame_size() as u32) };
    b.extend_from_slice(&min_block.to_be_bytes());
    b.extend_from_slice(&max_block.to_be_bytes());
    b.extend_from_slice(&min_frame.to_be_bytes()[1..]);
    b.extend_from_slice(&max_frame.to_be_bytes()[1..]);
    // 20 bits rate, 3 bits channels − 1, 5 bits bps − 1, 36 bits total samples.
    let packed: u64 = (u64::from(sample_rate) << 44)
        | ((info.channels() as u64 - 1) << 41)
        | ((info.bits_per_sample() as u64 - 1) << 36)
        | if total < 1 << 36 { total } else { 0 }; // 36 bits, else "unknown"
    b.extend_from_slice(&packed.to_be_bytes());
    b.extend_from_slice(&md5);
    b
}

/// SEEKTABLE with `points` followed by placeholder points up to `slots`.
fn seektable_bytes(points: &[SeekPoint], slots: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(18 * slots);
    for p in points.iter().take(slots) {
        b.extend_from_slice(&p.sample.to_be_bytes());
        b.extend_from_slice(&p.offset.to_be_bytes());
        b.extend_from_slice(&p.frames.to_be_bytes());
    }
    for _ in points.len().min(slots)..slots {
        b.extend_from_slice(&PLACEHOLDER.to_be_bytes());
        b.extend_from_slice(&[0; 10]);
    }
    b
}

/// VORBIS_COMMENT: vendor string, then `NAME=value` fields (little-endian lengths).
fn vorbis_comment_bytes(tags: &Tags) -> Vec<u8> {
    let mut fields: Vec<String> = Vec::new();
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            fields.push(format!("{name}={v}"));
        }
    };
    add("TITLE", &tags.title);
    add("ARTIST", &tags.artist);
    add("ALBUM", &tags.album);
    add("DATE", &tags.year);
    add("COMMENT", &tags.comment);
    add("GENRE", &tags.genre);
    if let Some(track) = tags.track.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        match track.split_once('/') {
            Some((number, total)) => {
                add("TRACKNUMBER", &Some(number.into()));
                add("TRACKTOTAL", &Some(total.into()));
            }
            None => add("TRACKNUMBER", &Some(track.into())),
        }
    }
    add("ENCODER", &Some(VENDOR.into()));
    let mut b = Vec::new();
    b.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    b.extend_from_slice(VENDOR.as_bytes());
    b.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for f in &fields {
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f.as_bytes());
    }
    b
}

/// PICTURE, type 3 (front cover), no description; colour depth 24 and no palette.
fn picture_bytes(cover: &Cover) -> Result<Vec<u8>, String> {
    if cover.mime_type.is_empty() || !cover.mime_type.is_ascii() {
        return Err(format!("flac: cover MIME type {:?} is not printable ASCII", cover.mime_type));
    }
    let mut b = Vec::with_capacity(32 + cover.mime_type.len() + cover.data.len());
    b.extend_from_slice(&3u32.to_be_bytes());
    b.extend_from_slice(&(cover.mime_type.len() as u32).to_be_bytes());
    b.extend_from_slice(cover.mime_type.as_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&cover.width.to_be_bytes());
    b.extend_from_slice(&cover.height.to_be_bytes());
    b.extend_from_slice(&24u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(cover.data.len() as u32).to_be_bytes());
    b.extend_from_slice(&cover.data);
    Ok(b)
}
