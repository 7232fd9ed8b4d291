//! Native FFmpeg demux/decode of uploaded media into interleaved PCM (s16, s24 in s32, or the
//! float it is computed in).
//!
//! This crate owns everything FFmpeg-related on the host side: it opens an upload through a
//! custom `AVIOContext` over the stored chunks ([`io`]), probes the container and picks the
//! audio stream (the default one or the requested track; [`open`]), decodes it and
//! resamples/downmixes to float with libswresample ([`decode`], [`resample`]), trims it
//! sample-accurately (seeking near the start first on long files, then counting samples from
//! the decoded timestamps; [`trim`]) and applies a gain (loudness normalization, measured by
//! [`loudness`]). Every upload is parsed in a confined process of its own ([`sandbox`]), and
//! [`host`] offers it to the converter as the worker's `demux` interface. It is
//! blocking by design: the host runs a [`Decoder`] on a dedicated thread. Errors are returned
//! as short sentences meant for end users ("the file has no audio stream"). FFmpeg's own
//! logging is silenced (it would log per packet on damaged files).
//!
//! Requires FFmpeg ≥ 5.1 (the `AVChannelLayout` API).

pub mod cover;
mod decode;
mod ffi;
/// The WIT `mp3edge:worker/demux` interface over this decoder.
pub mod host;
mod info;
mod io;
mod mp4_tracks;
mod open;
pub mod loudness;
pub mod policy;
pub mod sandbox;
mod resample;
mod trim;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod option_tests;
#[cfg(test)]
mod tests;

use std::ffi::c_int;
use std::ptr;
use std::sync::Once;

use ffmpeg_sys_next as ff;

use ffi::{CodecContext, FormatContext, Frame, Packet};
use io::AvIo;
pub use spin_host::interfaces::key_value::ValueRange;
use resample::Resampler;

pub(crate) use open::{open_codec, open_input};
pub(crate) use trim::trim_start;

/// Random access to the stored source: up to `len` bytes from `offset` of chunk `index` of the
/// uploaded file (all chunks are `chunk_size` bytes except the last), with that chunk's whole
/// length. Blocking.
pub trait ChunkSource: Send + Sync {
    fn read_range(&self, index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange>;
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct SourceLayout {
    pub size: u64,
    pub chunks: u32,
    pub chunk_size: u32,
}

#[derive(Default, Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OutputRequest {
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// Index among the file's audio streams; `None`: the default stream.
    pub track: Option<u32>,
    /// Trim, in seconds into the source.
    pub start_secs: Option<f64>,
    pub end_secs: Option<f64>,
    /// Gain applied to every sample, in dB.
    pub gain_db: Option<f64>,
}

/// One audio stream of the source (see [`MediaInfo::streams`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StreamInfo {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u8,
    pub language: Option<String>,
    pub title: Option<String>,
    pub default: bool,
}

/// The source's descriptive tags: the plugins' own type, so what FFmpeg reads is what a plugin
/// writes.
pub use audio_tags::Tags;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MediaInfo {
    /// Short container name: "mp4", "mov", "m4a", "webm", "matroska", "avi", "mpegts", "flv",
    /// "wav", "mp3", "ogg", ... (FFmpeg's demuxer name, refined for the mov/matroska families).
    pub container: String,
    /// FFmpeg codec name of the chosen audio stream: "aac", "opus", "mp3", "vorbis", ...
    pub codec: String,
    pub duration_secs: Option<f64>,
    pub sample_rate: u32,
    pub channels: u8,
    pub audio_streams: u32,
    pub tags: Tags,
    /// Every audio stream, in file order.
    pub streams: Vec<StreamInfo>,
    /// Index in `streams` of the decoded one.
    pub track: u32,
    /// Significant bits per sample of the decoded stream (16 for lossy codecs).
    pub bits_per_sample: u8,
    /// A video stream (not an attached picture) is present.
    pub has_video: bool,
}

impl MediaInfo {
    /// The description as the worker accepts it from a media process, which parses hostile
    /// input: strings no longer than a tag may be ([`info::MAX_TAG_CHARS`]), at most
    /// [`policy::MAX_STREAMS`] streams, and a track that is one of them.
    pub fn bounded(mut self) -> MediaInfo {
        let cut = |s: &mut String| {
            if let Some((at, _)) = s.char_indices().nth(info::MAX_TAG_CHARS) {
                s.truncate(at);
            }
        };
        let cut_opt = |s: &mut Option<String>| s.iter_mut().for_each(cut);
        cut(&mut self.container);
        cut(&mut self.codec);
        let tags = &mut self.tags;
        for tag in [&mut tags.title, &mut tags.artist, &mut tags.album, &mut tags.year, &mut tags.comment, &mut tags.genre, &mut tags.track] {
            cut_opt(tag);
        }
        self.streams.truncate(policy::MAX_STREAMS as usize);
        for stream in &mut self.streams {
            cut(&mut stream.codec);
            cut_opt(&mut stream.language);
            cut_opt(&mut stream.title);
        }
        self.audio_streams = self.audio_streams.min(self.streams.len() as u32);
        if self.track as usize >= self.streams.len() {
            self.track = 0;
        }
        if self.duration_secs.is_some_and(|d| !d.is_finite() || d < 0.0) {
            self.duration_secs = None;
        }
        self
    }
}

const NOT_MEDIA: &str = "not a media file FFmpeg can read";
const NO_AUDIO: &str = "the file has no audio stream";
const TRUNCATED: &str = "the file is truncated or corrupt";
/// Highest output rate / channel count a request may ask for.
const MAX_OUTPUT_RATE: u32 = 384_000;
const MAX_OUTPUT_CHANNELS: u8 = 8;
/// Isolated undecodable packets are skipped (as the ffmpeg CLI does); this many in a row fail.
const MAX_CONSECUTIVE_DECODE_ERRORS: u32 = 8;
/// Guard against a demuxer that keeps answering EAGAIN.
const MAX_CONSECUTIVE_EAGAIN: u32 = 1000;
/// A trim starting later than this seeks instead of decoding everything before it.
const SEEK_AFTER_SECS: f64 = 10.0;
/// How far before the trim start the seek lands, so decoders that need a run-up (AAC, MP3's
/// bit reservoir) produce exact samples by the start.
const SEEK_RUN_UP_SECS: f64 = 3.0;

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Reading packets from the demuxer.
    Demuxing,
    /// The demuxer hit the end; the decoder is being drained.
    Draining,
    /// Everything (including the resampler's tail) has been handed out or is in `pending`.
    Finished,
    Failed(String),
}

/// A blocking decoder for one upload. See the module docs.
pub struct Decoder {
    info: MediaInfo,
    out_rate: u32,
    out_channels: u8,
    stream_index: c_int,
    state: State,
    /// Converted samples not yet returned. A block is read from its front, and the rest (less
    /// than one decoded frame) moves to the front: the buffer lives as long as the decoder.
    /// A new buffer per block, which the resampler's last frame grew past the 256 KiB that
    /// glibc maps (`main.rs`), had been mapped, faulted in and unmapped for every half second
    /// of audio: 100,000 page faults of an hour's conversion.
    pending: Vec<f32>,
    /// Output frames (at the output rate) of the source before the next converted one;
    /// `None` after a seek until the first decoded frame tells where it is.
    position: Option<u64>,
    /// Trim, in output frames: frames before `trim_start` and from `trim_end` on are dropped.
    trim_start: u64,
    trim_end: Option<u64>,
    /// Output frames kept so far.
    kept: u64,
    gain: f32,
    /// Stream time base and start, for reading where a decoded frame lies.
    time_base: ff::AVRational,
    start_pts: i64,
    /// Decoded input duration so far, in seconds (for the "no audio at all" check).
    decoded_secs: f64,
    decode_errors_in_row: u32,
    last_decode_error: Option<String>,
    // FFmpeg objects. Field order is drop order: everything using the format context / AVIO
    // goes first, the format context before the AVIOContext it reads through.
    resampler: Option<Resampler>,
    frame: Frame,
    packet: Packet,
    codec: CodecContext,
    format: FormatContext,
    io: AvIo,
}

// SAFETY: all FFmpeg objects behind the raw pointers are owned exclusively by this Decoder and
// are only touched through `&mut self` (or `&self` reads of plain fields); libavformat,
// libavcodec and libswresample contexts have no thread affinity, so moving the whole set to
// another thread is sound. The chunk source is `Send + Sync`. (Decoder is not `Sync`.)
unsafe impl Send for Decoder {}

/// A float sample (full scale ±1.0) as s16, rounded half away from zero and clipped as
/// libswresample does (NaN is 0).
///
/// Written without `f32::round`: on x86-64's baseline that is a call to libm's `roundf` for
/// every sample (2.7% of a serial mp3 conversion's CPU, issue 13). Clipped first, the value
/// truncates exactly to an integer, and its fraction (`x - trunc(x)`, exact below 2^23)
/// decides the rounding; branch-free, so a block converts in vector instructions. The
/// truncation is unchecked: Rust's saturating `as` kept each sample's conversion scalar, with
/// branches for NaN and the range (1.3% of an hour's conversion, then 2.7 times as fast).
#[inline]
pub fn to_s16(sample: f32) -> i16 {
    let x = sample * 32768.0;
    let x = if x.is_nan() { 0.0 } else { x.clamp(-32768.0, 32767.0) };
    // SAFETY: `x` is finite and within i16's range, so it truncates to an i32 exactly.
    let whole = unsafe { x.to_int_unchecked::<i32>() };
    let fraction = x - whole as f32;
    (whole + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)) as i16
}

/// A float sample as a 24-bit value in an i32 (rounded and clipped like [`to_s16`]).
#[inline]
pub fn to_s24(sample: f32) -> i32 {
    let x = f64::from(sample) * 8_388_608.0;
    let x = if x.is_nan() { 0.0 } else { x.clamp(-8_388_608.0, 8_388_607.0) };
    // SAFETY: `x` is finite and within 24 bits, so it truncates to an i32 exactly.
    let whole = unsafe { x.to_int_unchecked::<i32>() };
    let fraction = x - f64::from(whole);
    whole + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

fn read_failed(e: &str) -> String {
    format!("could not read the uploaded file: {e}")
}

pub(crate) fn silence_ffmpeg_logs() {
    static ONCE: Once = Once::new();
    // SAFETY: sets a global integer; FFmpeg reads it atomically enough for a log level.
    ONCE.call_once(|| unsafe { ff::av_log_set_level(ff::AV_LOG_QUIET) });
}
