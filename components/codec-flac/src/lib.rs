//! FLAC codec plugin: interleaved 16- or 24-bit PCM in, a streamed FLAC file out.
//!
//! This module owns the FLAC container: the `fLaC` marker and the metadata blocks (STREAMINFO,
//! SEEKTABLE, VORBIS_COMMENT, PICTURE), the seek points and the streaming. The frames
//! themselves (prediction, residual coding, stereo decorrelation, the MD5 of the PCM) are
//! libFLAC's, the reference encoder, compiled to wasm from the C sources `libflac-sys` bundles
//! (the Makefile gives its CMake build `wasm32-wasip2.cmake`). On the 5-minute stereo bench
//! WAV at level 5, the pure-Rust `flacenc` this replaces took 1.7 s natively against libFLAC's
//! 0.46 s, and `mp3edge convert` with it 3.3 s of CPU against 0.8 s: most of it in flacenc's
//! predictor search (autocorrelation through `fma` calls) and rice parameter search.
//!
//! Streaming: the header goes out first with a placeholder STREAMINFO (no totals, no MD5) and a
//! SEEKTABLE of placeholder points; frames follow as libFLAC completes them (the metadata
//! libFLAC writes itself is dropped). At the end, the exact STREAMINFO and the filled seek
//! table are the `finish` patch at offset 0 — they sit before the tags and the cover, so the
//! patch is at most [`MAX_PATCH_BYTES`] long and always falls within the converter's first
//! output chunk. [`FlacSession`] is plain Rust, tested natively, and a [`Codec`]; the kit's
//! `export_codec!` makes it the component's `encoder` on wasm.

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

/// What libFLAC's callbacks fill: the frames written since the last `encode`, the seek point
/// candidates, and at the end its STREAMINFO. Boxed, so its address (libFLAC's client data)
/// stays put while the session moves.
#[derive(Default)]
struct Sink {
    out: Vec<u8>,
    /// Frame starts kept as seek point candidates: every `stride`-th frame, thinned by
    /// doubling `stride` so memory stays bounded for any length.
    candidates: Vec<SeekPoint>,
    stride: u64,
    frame_number: u64,
    samples_done: u64,
    /// Bytes of frames written so far.
    frame_bytes: u64,
    /// Smallest and largest frame, in bytes.
    frame_sizes: Option<(usize, usize)>,
    /// The MD5 of the PCM, from libFLAC's final STREAMINFO.
    md5: Option<[u8; 16]>,
}

impl Sink {
    fn frame(&mut self, bytes: &[u8], samples: u64) {
        if self.frame_number.is_multiple_of(self.stride) {
            self.candidates.push(SeekPoint { sample: self.samples_done, offset: self.frame_bytes, frames: samples as u16 });
            if self.candidates.len() >= 4 * MAX_SEEK_POINTS {
                // Keep every other candidate: still twice MAX_SEEK_POINTS over the whole.
                self.candidates = self.candidates.iter().step_by(2).copied().collect();
                self.stride *= 2;
            }
        }
        let (min, max) = self.frame_sizes.unwrap_or((usize::MAX, 0));
        self.frame_sizes = Some((min.min(bytes.len()), max.max(bytes.len())));
        self.frame_number += 1;
        self.samples_done += samples;
        self.frame_bytes += bytes.len() as u64;
        self.out.extend_from_slice(bytes);
    }
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
        // SAFETY: `client_data` is the session's boxed `Sink`, alive as long as the encoder;
        // libFLAC hands `bytes` readable bytes at `buffer`.
        let (sink, frame) = unsafe { (&mut *client_data.cast::<Sink>(), std::slice::from_raw_parts(buffer, bytes)) };
        sink.frame(frame, u64::from(samples));
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

/// libFLAC's description of the state an encoder is in (why a call failed).
fn encoder_state(encoder: *const ffi::FLAC__StreamEncoder) -> String {
    // SAFETY: a live encoder; libFLAC returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::FLAC__stream_encoder_get_resolved_state_string(encoder)) }.to_string_lossy().into_owned()
}

/// One FLAC encoding run.
pub struct FlacSession {
    /// libFLAC's encoder, initialized; deleted on drop.
    encoder: *mut ffi::FLAC__StreamEncoder,
    sink: Box<Sink>,
    /// 16-bit input widened to libFLAC's 32-bit samples.
    wide: Vec<i32>,
    channels: usize,
    block_size: usize,
    bits_per_sample: u8,
    sample_rate: u32,
    /// Header bytes (marker to the last metadata block); `None` once handed out.
    header: Option<Vec<u8>>,
    /// Placeholder points reserved in the header.
    seek_slots: usize,
    /// Samples between the seek points we want.
    seek_spacing: u64,
}

impl Drop for FlacSession {
    fn drop(&mut self) {
        // SAFETY: the encoder is ours and deleted once; deleting an unfinished one finishes it
        // first, through the callbacks into `sink`, which is dropped only after this.
        unsafe { ffi::FLAC__stream_encoder_delete(self.encoder) };
    }
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
        let level = level.unwrap_or(DEFAULT_LEVEL);
        let block_size = block_size(level)?;

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
        metadata_block(&mut header, STREAMINFO, false, &streaminfo_bytes(sample_rate, channels, bits_per_sample, block_size, None, 0, [0; 16]))?;
        metadata_block(&mut header, SEEKTABLE, false, &seektable_bytes(&[], seek_slots))?;
        let comments = vorbis_comment_bytes(tags);
        metadata_block(&mut header, VORBIS_COMMENT, cover.is_none(), &comments)?;
        if let Some(cover) = cover {
            metadata_block(&mut header, PICTURE, true, &picture_bytes(cover)?)?;
        }

        // SAFETY: a new encoder, owned by the session from here on (deleted by `Drop`).
        let encoder = unsafe { ffi::FLAC__stream_encoder_new() };
        if encoder.is_null() {
            return Err("flac: out of memory for the encoder".into());
        }
        let mut session = Self {
            encoder,
            sink: Box::new(Sink { stride: 1, ..Sink::default() }),
            wide: Vec::new(),
            channels: usize::from(channels),
            block_size,
            bits_per_sample,
            sample_rate,
            header: Some(header),
            seek_slots,
            seek_spacing,
        };
        // SAFETY: a fresh encoder, configured before its init; the client data is the boxed
        // sink, which outlives it.
        let status = unsafe {
            // Rates a frame header cannot state (65537 Hz, 100001 Hz…) are outside FLAC's
            // streamable subset, which libFLAC otherwise holds the stream to; its frames then
            // say "rate in STREAMINFO".
            let subset = ffi::FLAC__format_sample_rate_is_subset(sample_rate) != 0;
            let set = ffi::FLAC__stream_encoder_set_channels(encoder, u32::from(channels))
                & ffi::FLAC__stream_encoder_set_bits_per_sample(encoder, u32::from(bits_per_sample))
                & ffi::FLAC__stream_encoder_set_sample_rate(encoder, sample_rate)
                & ffi::FLAC__stream_encoder_set_compression_level(encoder, u32::from(level))
                & ffi::FLAC__stream_encoder_set_blocksize(encoder, block_size as u32)
                & ffi::FLAC__stream_encoder_set_streamable_subset(encoder, i32::from(subset))
                & ffi::FLAC__stream_encoder_set_verify(encoder, 0);
            if set == 0 {
                return Err(format!("flac: configuring the encoder: {}", encoder_state(encoder)));
            }
            let client: *mut Sink = &mut *session.sink;
            ffi::FLAC__stream_encoder_init_stream(encoder, Some(write_callback), None, None, Some(metadata_callback), client.cast())
        };
        if status != ffi::FLAC__STREAM_ENCODER_INIT_STATUS_OK {
            return Err(format!("flac: starting the encoder (init status {status}): {}", encoder_state(encoder)));
        }
        Ok(session)
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
        codec_plugin_kit::frames("flac", pcm.len(), self.channels)?;
        let mut wide = std::mem::take(&mut self.wide);
        wide.clear();
        wide.extend(pcm.iter().map(|&s| i32::from(s)));
        let out = self.process(&wide);
        self.wide = wide;
        out
    }

    /// Encodes interleaved 24-bit PCM (−8388608 ..= 8388607; a session of 24 bits per sample).
    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        if self.bits_per_sample != 24 {
            return Err("flac: this session takes 16-bit samples (encode)".into());
        }
        codec_plugin_kit::frames("flac", pcm.len(), self.channels)?;
        if let Some(bad) = pcm.iter().find(|s| !(-(1 << 23)..(1 << 23)).contains(*s)) {
            return Err(format!("flac: sample {bad} outside the 24-bit range"));
        }
        self.process(pcm)
    }

    /// Encodes the last (short) block; the tail and the patch with the final STREAMINFO (exact
    /// total samples, MD5 of the PCM) and the filled seek table.
    fn finish(mut self) -> Result<Finished, String> {
        let mut tail = self.header.take().unwrap_or_default();
        // SAFETY: the session's initialized encoder; the callbacks write into `sink`.
        if unsafe { ffi::FLAC__stream_encoder_finish(self.encoder) } == 0 {
            return Err(format!("flac: finishing the stream: {}", encoder_state(self.encoder)));
        }
        tail.append(&mut self.sink.out);
        let total = self.sink.samples_done;
        let md5 = match self.sink.md5 {
            _ if total == 0 => [0; 16],
            Some(md5) => md5,
            None => return Err("flac: libFLAC gave no final STREAMINFO".into()),
        };
        let streaminfo = streaminfo_bytes(
            self.sample_rate,
            self.channels as u8,
            self.bits_per_sample,
            self.block_size,
            self.sink.frame_sizes,
            total,
            md5,
        );
        // No frame at all: STREAMINFO still needs valid (non-zero) block sizes.
        let mut patch = b"fLaC".to_vec();
        metadata_block(&mut patch, STREAMINFO, false, &streaminfo)?;
        metadata_block(&mut patch, SEEKTABLE, false, &seektable_bytes(&self.seek_points(total), self.seek_slots))?;
        Ok(Finished { tail, patch: Some(HeaderPatch { offset: 0, bytes: patch }) })
    }
}

impl FlacSession {
    /// Hands `pcm` (interleaved, whole frames) to libFLAC; the header (the first time) and the
    /// frames it completed.
    fn process(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        let frames = (pcm.len() / self.channels) as u32;
        // SAFETY: the session's initialized encoder; `pcm` holds `frames` × channels samples.
        if frames > 0 && unsafe { ffi::FLAC__stream_encoder_process_interleaved(self.encoder, pcm.as_ptr(), frames) } == 0 {
            return Err(format!("flac: encoding: {}", encoder_state(self.encoder)));
        }
        let mut out = self.header.take().unwrap_or_default();
        out.append(&mut self.sink.out);
        Ok(out)
    }

    /// The seek points to write: the first frame at or after each multiple of the spacing,
    /// widened so that they fit the reserved slots, in increasing order without duplicates.
    fn seek_points(&self, total: u64) -> Vec<SeekPoint> {
        let spacing = self.seek_spacing.max(total.div_ceil(self.seek_slots as u64));
        let mut points: Vec<SeekPoint> = Vec::new();
        let mut next_target = 0u64;
        for p in &self.sink.candidates {
            if p.sample >= next_target {
                points.push(*p);
                next_target = (p.sample / spacing + 1) * spacing;
            }
        }
        points.truncate(self.seek_slots);
        points
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
