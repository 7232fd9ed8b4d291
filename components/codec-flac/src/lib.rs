//! FLAC codec plugin: interleaved 16- or 24-bit PCM in, a streamed FLAC file out.
//!
//! This module owns the FLAC container: the `fLaC` marker and the metadata blocks (STREAMINFO,
//! SEEKTABLE, VORBIS_COMMENT, PICTURE), the seek points and the streaming. The frames
//! themselves (prediction, residual coding, stereo decorrelation, the MD5 of the PCM) are
//! libFLAC's, the reference encoder, compiled to wasm from the C sources `libflac-sys` bundles
//! (the Makefile gives its CMake build `wasm32-wasip2.cmake`). Measured on a 5-minute stereo
//! WAV, the pure-Rust `flacenc` this replaces took 3.5× libFLAC's CPU natively and 7× in the
//! plugin, at the same compression level; most of it in its predictor search.
//!
//! Streaming: the header goes out first with a placeholder STREAMINFO (no totals, no MD5) and a
//! SEEKTABLE of placeholder points; frames follow as libFLAC completes them (the metadata
//! libFLAC writes itself is dropped). At the end, the exact STREAMINFO and the filled seek
//! table are the `finish` patch at offset 0 — they sit before the tags and the cover, so the
//! patch is at most [`MAX_PATCH_BYTES`] long and always falls within the converter's first
//! output chunk. [`FlacSession`] is plain Rust, tested natively, and a [`Codec`]; the kit's
//! `export_codec!` makes it the component's `encoder` on wasm.

#[cfg(target_family = "wasm")]
mod component;
pub mod joiner;
pub mod segment;
#[cfg(test)]
mod segment_tests;
#[cfg(test)]
mod tests;

use std::ffi::{CStr, c_void};

use codec_plugin_kit::{Codec, CodecInfo};
use libflac_sys as ffi;

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
/// The libFLAC release `libflac-sys` bundles (a test holds the linked library to it).
pub const LIBFLAC_VERSION: &str = "1.5.0";
/// Name written as the Vorbis comment vendor string and `ENCODER` tag.
pub const VENDOR: &str = "mp3edge codec-flac (libFLAC 1.5.0)";

/// Metadata block types (FLAC format, METADATA_BLOCK_HEADER).
const STREAMINFO: u8 = 0;
const SEEKTABLE: u8 = 3;
const VORBIS_COMMENT: u8 = 4;
const PICTURE: u8 = 6;
/// A metadata block's length is 24 bits.
const MAX_BLOCK_LEN: usize = (1 << 24) - 1;
/// Sample number of a placeholder seek point.
const PLACEHOLDER: u64 = u64::MAX;

/// Samples per block of a level, as libFLAC's presets set them: 1152 for levels 0–2, 4096 for
/// 3–8 (libFLAC's `set_compression_level` chooses the rest: stereo decorrelation, fixed or LPC
/// prediction of order up to 12, apodizations, the rice partition search).
pub fn block_size(level: u8) -> Result<usize, String> {
    match level {
        0..=2 => Ok(1152),
        3..=8 => Ok(4096),
        _ => Err(format!("flac: level {level} out of range (0 to 8)")),
    }
}

/// Where a frame starts, for the seek table.
#[derive(Clone, Copy, Debug)]
struct SeekPoint {
    sample: u64,
    /// Bytes from the first frame's header.
    offset: u64,
    frames: u16,
}

/// The frames of a stream so far, as STREAMINFO and SEEKTABLE need them: counts, sizes, and
/// the frame starts kept as seek point candidates. Kept by a session (frames from libFLAC) and
/// by the joiner (frames from the segments).
#[derive(Debug)]
struct FrameLog {
    /// Every `stride`-th frame start, thinned by doubling `stride` so memory stays bounded
    /// for any length.
    candidates: Vec<SeekPoint>,
    stride: u64,
    frame_number: u64,
    samples_done: u64,
    /// Bytes of frames so far.
    frame_bytes: u64,
    /// Smallest and largest frame, in bytes.
    frame_sizes: Option<(usize, usize)>,
}

impl FrameLog {
    fn new() -> Self {
        FrameLog { candidates: Vec::new(), stride: 1, frame_number: 0, samples_done: 0, frame_bytes: 0, frame_sizes: None }
    }

    /// Counts the next frame: `bytes` long, `samples` PCM frames.
    fn add(&mut self, bytes: usize, samples: u64) {
        if self.frame_number.is_multiple_of(self.stride) {
            self.candidates.push(SeekPoint { sample: self.samples_done, offset: self.frame_bytes, frames: samples as u16 });
            if self.candidates.len() >= 4 * MAX_SEEK_POINTS {
                // Keep every other candidate: still twice MAX_SEEK_POINTS over the whole.
                self.candidates = self.candidates.iter().step_by(2).copied().collect();
                self.stride *= 2;
            }
        }
        let (min, max) = self.frame_sizes.unwrap_or((usize::MAX, 0));
        self.frame_sizes = Some((min.min(bytes), max.max(bytes)));
        self.frame_number += 1;
        self.samples_done += samples;
        self.frame_bytes += bytes as u64;
    }
}

/// The placeholder seek points reserved in the header and their spacing.
#[derive(Clone, Copy, Debug)]
struct SeekPlan {
    slots: usize,
    /// Samples between the seek points we want.
    spacing: u64,
}

impl SeekPlan {
    /// Seek points every SEEK_POINT_SECS, or spread wider to fit MAX_SEEK_POINTS over the
    /// announced length; without one, UNKNOWN_LENGTH_SEEK_POINTS slots are reserved and the
    /// spacing is widened at the end if the stream outgrew them.
    fn new(sample_rate: u32, total_frames: Option<u64>) -> Self {
        let min_spacing = u64::from(sample_rate) * SEEK_POINT_SECS;
        match total_frames {
            Some(total) => {
                let spacing = min_spacing.max(total.div_ceil(MAX_SEEK_POINTS as u64));
                SeekPlan { slots: (total.div_ceil(spacing) as usize).clamp(1, MAX_SEEK_POINTS), spacing }
            }
            None => SeekPlan { slots: UNKNOWN_LENGTH_SEEK_POINTS, spacing: min_spacing },
        }
    }

    /// The seek points to write: the first frame at or after each multiple of the spacing,
    /// widened so that they fit the reserved slots, in increasing order without duplicates.
    fn points(&self, log: &FrameLog) -> Vec<SeekPoint> {
        let spacing = self.spacing.max(log.samples_done.div_ceil(self.slots as u64));
        let mut points: Vec<SeekPoint> = Vec::new();
        let mut next_target = 0u64;
        for p in &log.candidates {
            if p.sample >= next_target {
                points.push(*p);
                next_target = (p.sample / spacing + 1) * spacing;
            }
        }
        points.truncate(self.slots);
        points
    }
}

/// The stream's layout, checked: what the header and the encoder are made from.
#[derive(Clone, Copy, Debug)]
struct Layout {
    sample_rate: u32,
    channels: u8,
    bits_per_sample: u8,
    level: u8,
    block_size: usize,
}

impl Layout {
    fn of(config: &EncoderConfig) -> Result<Self, String> {
        let EncoderConfig { sample_rate, channels, bits_per_sample, level, .. } = *config;
        if !(1..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(format!("flac: sample rate {sample_rate} Hz out of range (1 to {MAX_SAMPLE_RATE})"));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("flac: {channels} channels not supported (1 to {MAX_CHANNELS})"));
        }
        if !BIT_DEPTHS.contains(&bits_per_sample) {
            return Err(format!("flac: {bits_per_sample}-bit samples not supported (16 or 24)"));
        }
        let level = level.unwrap_or(DEFAULT_LEVEL);
        Ok(Layout { sample_rate, channels, bits_per_sample, level, block_size: block_size(level)? })
    }

    /// STREAMINFO's bytes; frame sizes, total and MD5 as far as they are known.
    fn streaminfo(&self, frame_sizes: Option<(usize, usize)>, total: u64, md5: [u8; 16]) -> Vec<u8> {
        streaminfo_bytes(self.sample_rate, self.channels, self.bits_per_sample, self.block_size, frame_sizes, total, md5)
    }
}

/// The file's header (marker, placeholder STREAMINFO and SEEKTABLE, Vorbis comments, cover).
fn header_bytes(layout: &Layout, seek: &SeekPlan, config: &EncoderConfig) -> Result<Vec<u8>, String> {
    let mut header = b"fLaC".to_vec();
    metadata_block(&mut header, STREAMINFO, false, &layout.streaminfo(None, 0, [0; 16]))?;
    metadata_block(&mut header, SEEKTABLE, false, &seektable_bytes(&[], seek.slots))?;
    let comments = vorbis_comment_bytes(&config.tags);
    metadata_block(&mut header, VORBIS_COMMENT, config.cover.is_none(), &comments)?;
    if let Some(cover) = &config.cover {
        metadata_block(&mut header, PICTURE, true, &picture_bytes(cover)?)?;
    }
    Ok(header)
}

/// The `finish` patch at offset 0: marker, final STREAMINFO and the filled SEEKTABLE. With no
/// frame at all, total and MD5 stay 0 ("unknown") and the block sizes the nominal ones.
fn patch_bytes(layout: &Layout, seek: &SeekPlan, log: &FrameLog, md5: [u8; 16]) -> Result<HeaderPatch, String> {
    let total = log.samples_done;
    let md5 = if total == 0 { [0; 16] } else { md5 };
    let mut patch = b"fLaC".to_vec();
    metadata_block(&mut patch, STREAMINFO, false, &layout.streaminfo(log.frame_sizes, total, md5))?;
    metadata_block(&mut patch, SEEKTABLE, false, &seektable_bytes(&seek.points(log), seek.slots))?;
    Ok(HeaderPatch { offset: 0, bytes: patch })
}

/// What libFLAC's callbacks fill: the frames written since they were last taken, their log,
/// and at the end the MD5 of libFLAC's final STREAMINFO. Boxed, so its address (libFLAC's
/// client data) stays put while its owner moves.
struct Sink {
    out: Vec<u8>,
    log: FrameLog,
    /// Whether each frame is written as a segment's record ([`segment`]) rather than bare.
    records: bool,
    md5: Option<[u8; 16]>,
}

/// libFLAC's write callback: metadata (`samples` 0, before the first frame) is dropped, since
/// the plugin writes its own; each frame comes whole.
unsafe extern "C" fn write_callback(
    _encoder: *const ffi::FLAC__StreamEncoder,
    buffer: *const ffi::FLAC__byte,
    bytes: usize,
    samples: u32,
    _current_frame: u32,
    client_data: *mut c_void,
) -> ffi::FLAC__StreamEncoderWriteStatus {
    if samples > 0 {
        // SAFETY: `client_data` is the encoder's boxed `Sink`, alive as long as the encoder;
        // libFLAC hands `bytes` readable bytes at `buffer`.
        let (sink, frame) = unsafe { (&mut *client_data.cast::<Sink>(), std::slice::from_raw_parts(buffer, bytes)) };
        sink.log.add(frame.len(), u64::from(samples));
        if sink.records {
            segment::write_record(&mut sink.out, frame, samples);
        } else {
            sink.out.extend_from_slice(frame);
        }
    }
    ffi::FLAC__STREAM_ENCODER_WRITE_STATUS_OK
}

/// libFLAC's metadata callback, called once by `finish` with the final STREAMINFO.
unsafe extern "C" fn metadata_callback(
    _encoder: *const ffi::FLAC__StreamEncoder,
    metadata: *const ffi::FLAC__StreamMetadata,
    client_data: *mut c_void,
) {
    // SAFETY: as in `write_callback`; libFLAC passes a STREAMINFO block here.
    unsafe {
        if (*metadata).type_ == ffi::FLAC__METADATA_TYPE_STREAMINFO {
            (*client_data.cast::<Sink>()).md5 = Some((*metadata).data.stream_info.md5sum);
        }
    }
}

unsafe extern "C" {
    /// Whether the encoder computes the MD5 of its input (on by default). Left out of
    /// libFLAC's public headers (`include/share/private.h`) but exported, with the promise
    /// that it will not change; `libflac-sys` has no binding for it. A segment's MD5 would be
    /// of a part of the input, which the joiner cannot use: it hashes the decoded whole.
    fn FLAC__stream_encoder_set_do_md5(encoder: *mut ffi::FLAC__StreamEncoder, value: ffi::FLAC__bool) -> ffi::FLAC__bool;
}

/// libFLAC's description of the state an encoder is in (why a call failed).
fn encoder_state(encoder: *const ffi::FLAC__StreamEncoder) -> String {
    // SAFETY: a live encoder; libFLAC returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::FLAC__stream_encoder_get_resolved_state_string(encoder)) }.to_string_lossy().into_owned()
}

/// One libFLAC stream encoder, initialized for a layout at its level's preset; its frames
/// collect in `sink.out`. Deleted on drop.
struct LibFlac {
    encoder: *mut ffi::FLAC__StreamEncoder,
    sink: Box<Sink>,
    channels: usize,
}

impl Drop for LibFlac {
    fn drop(&mut self) {
        // SAFETY: the encoder is ours and deleted once; deleting an unfinished one finishes it
        // first, through the callbacks into `sink`, which is dropped only after this.
        unsafe { ffi::FLAC__stream_encoder_delete(self.encoder) };
    }
}

impl LibFlac {
    /// `records`: frames are written as a segment's records instead of bare.
    fn new(layout: &Layout, records: bool) -> Result<Self, String> {
        // SAFETY: a new encoder, owned by the `LibFlac` from here on (deleted by `Drop`).
        let encoder = unsafe { ffi::FLAC__stream_encoder_new() };
        if encoder.is_null() {
            return Err("flac: out of memory for the encoder".into());
        }
        let mut flac = LibFlac {
            encoder,
            sink: Box::new(Sink { out: Vec::new(), log: FrameLog::new(), records, md5: None }),
            channels: usize::from(layout.channels),
        };
        // SAFETY: a fresh encoder, configured before its init; the client data is the boxed
        // sink, which outlives it.
        let status = unsafe {
            // Rates a frame header cannot state (65537 Hz, 100001 Hz…) are outside FLAC's
            // streamable subset, which libFLAC otherwise holds the stream to; its frames then
            // say "rate in STREAMINFO".
            let subset = ffi::FLAC__format_sample_rate_is_subset(layout.sample_rate) != 0;
            let set = ffi::FLAC__stream_encoder_set_channels(encoder, u32::from(layout.channels))
                & ffi::FLAC__stream_encoder_set_bits_per_sample(encoder, u32::from(layout.bits_per_sample))
                & ffi::FLAC__stream_encoder_set_sample_rate(encoder, layout.sample_rate)
                & ffi::FLAC__stream_encoder_set_compression_level(encoder, u32::from(layout.level))
                & ffi::FLAC__stream_encoder_set_blocksize(encoder, layout.block_size as u32)
                & ffi::FLAC__stream_encoder_set_streamable_subset(encoder, i32::from(subset))
                & ffi::FLAC__stream_encoder_set_verify(encoder, 0)
                & FLAC__stream_encoder_set_do_md5(encoder, i32::from(!records));
            if set == 0 {
                return Err(format!("flac: configuring the encoder: {}", encoder_state(encoder)));
            }
            let client: *mut Sink = &mut *flac.sink;
            ffi::FLAC__stream_encoder_init_stream(encoder, Some(write_callback), None, None, Some(metadata_callback), client.cast())
        };
        if status != ffi::FLAC__STREAM_ENCODER_INIT_STATUS_OK {
            return Err(format!("flac: starting the encoder (init status {status}): {}", encoder_state(encoder)));
        }
        Ok(flac)
    }

    /// Encodes `pcm` (interleaved, whole frames, in range); the frames it completed go to
    /// `sink.out`.
    fn process(&mut self, pcm: &[i32]) -> Result<(), String> {
        let frames = (pcm.len() / self.channels) as u32;
        // SAFETY: the initialized encoder; `pcm` holds `frames` × channels samples.
        if frames > 0 && unsafe { ffi::FLAC__stream_encoder_process_interleaved(self.encoder, pcm.as_ptr(), frames) } == 0 {
            return Err(format!("flac: encoding: {}", encoder_state(self.encoder)));
        }
        Ok(())
    }

    /// Encodes the last (short) block; libFLAC's MD5 of the PCM lands in `sink.md5`.
    fn finish(&mut self) -> Result<(), String> {
        // SAFETY: the initialized encoder; the callbacks write into `sink`.
        if unsafe { ffi::FLAC__stream_encoder_finish(self.encoder) } == 0 {
            return Err(format!("flac: finishing the stream: {}", encoder_state(self.encoder)));
        }
        Ok(())
    }
}

/// 16-bit samples widened to libFLAC's 32-bit ones, in `buffer` (reused).
fn widen<'a>(buffer: &'a mut Vec<i32>, pcm: &[i16]) -> &'a [i32] {
    buffer.clear();
    buffer.extend(pcm.iter().map(|&s| i32::from(s)));
    buffer
}

/// One FLAC encoding run.
pub struct FlacSession {
    flac: LibFlac,
    layout: Layout,
    seek: SeekPlan,
    /// 16-bit input widened to libFLAC's 32-bit samples.
    wide: Vec<i32>,
    /// Header bytes (marker to the last metadata block); `None` once handed out.
    header: Option<Vec<u8>>,
}

impl FlacSession {
    /// Validates `config`; the header comes out with the first `encode` (or `finish`). Of the
    /// configuration it reads the layout, the sample depth (16 or 24), the level (0 fastest – 8
    /// smallest; `None` is [`DEFAULT_LEVEL`]), the announced length (it spaces the seek points),
    /// the tags and the cover.
    pub fn new(config: EncoderConfig) -> Result<Self, String> {
        let layout = Layout::of(&config)?;
        let seek = SeekPlan::new(layout.sample_rate, config.total_frames);
        let header = header_bytes(&layout, &seek, &config)?;
        Ok(FlacSession { flac: LibFlac::new(&layout, false)?, layout, seek, wide: Vec::new(), header: Some(header) })
    }

    /// The header (the first time) and the frames completed since the last call.
    fn output(&mut self) -> Vec<u8> {
        let mut out = self.header.take().unwrap_or_default();
        out.append(&mut self.flac.sink.out);
        out
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
        if self.layout.bits_per_sample != 16 {
            return Err("flac: this session takes 24-bit samples (encode-wide)".into());
        }
        codec_plugin_kit::frames("flac", pcm.len(), self.flac.channels)?;
        let mut wide = std::mem::take(&mut self.wide);
        let done = self.flac.process(widen(&mut wide, pcm));
        self.wide = wide;
        done.map(|()| self.output())
    }

    /// Encodes interleaved 24-bit PCM (−8388608 ..= 8388607; a session of 24 bits per sample).
    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        if self.layout.bits_per_sample != 24 {
            return Err("flac: this session takes 16-bit samples (encode)".into());
        }
        codec_plugin_kit::frames("flac", pcm.len(), self.flac.channels)?;
        if let Some(bad) = pcm.iter().find(|s| !(-(1 << 23)..(1 << 23)).contains(*s)) {
            return Err(format!("flac: sample {bad} outside the 24-bit range"));
        }
        self.flac.process(pcm).map(|()| self.output())
    }

    /// Encodes the last (short) block; the tail and the patch with the final STREAMINFO (exact
    /// total samples, MD5 of the PCM) and the filled seek table.
    fn finish(mut self) -> Result<Finished, String> {
        self.flac.finish()?;
        let tail = self.output();
        let md5 = match self.flac.sink.md5 {
            Some(md5) => md5,
            None if self.flac.sink.log.samples_done == 0 => [0; 16],
            None => return Err("flac: libFLAC gave no final STREAMINFO".into()),
        };
        let patch = patch_bytes(&self.layout, &self.seek, &self.flac.sink.log, md5)?;
        Ok(Finished { tail, patch: Some(patch) })
    }
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
/// last block, so both block sizes are the nominal one (as libFLAC writes fixed-size streams).
fn streaminfo_bytes(
    sample_rate: u32,
    channels: u8,
    bits_per_sample: u8,
    block_size: usize,
    frame_sizes: Option<(usize, usize)>,
    total: u64,
    md5: [u8; 16],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(34);
    let (min_block, max_block) = (block_size as u16, block_size as u16);
    let (min_frame, max_frame) = frame_sizes.map_or((0, 0), |(min, max)| (min as u32, max as u32));
    b.extend_from_slice(&min_block.to_be_bytes());
    b.extend_from_slice(&max_block.to_be_bytes());
    b.extend_from_slice(&min_frame.to_be_bytes()[1..]);
    b.extend_from_slice(&max_frame.to_be_bytes()[1..]);
    // 20 bits rate, 3 bits channels − 1, 5 bits bps − 1, 36 bits total samples.
    let packed: u64 = (u64::from(sample_rate) << 44)
        | (u64::from(channels - 1) << 41)
        | (u64::from(bits_per_sample - 1) << 36)
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
