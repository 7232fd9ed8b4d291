//! Native FFmpeg demux/decode of uploaded media into interleaved PCM (s16, s24 in s32, or the
//! float it is computed in).
//!
//! This module owns everything FFmpeg-related on the host side: it opens an upload through a
//! custom `AVIOContext` over the stored chunks ([`io`]), probes the container, picks the audio
//! stream (the default one or the requested track), decodes it, resamples/downmixes to float
//! with libswresample ([`resample`]), trims it sample-accurately (seeking near the start first
//! on long files, then counting samples from the decoded timestamps) and applies a gain
//! (loudness normalization, measured by [`loudness`]). It is
//! blocking by design: the host runs a [`Decoder`] on a dedicated thread. Errors are returned
//! as short sentences meant for end users ("the file has no audio stream"). FFmpeg's own
//! logging is silenced (it would log per packet on damaged files).
//!
//! Requires FFmpeg ≥ 5.1 (the `AVChannelLayout` API).

pub mod cover;
mod ffi;
/// The WIT `mp3edge:worker/demux` interface over this decoder (written by another engineer).
pub mod host;
mod info;
mod io;
mod mp4_tracks;
pub mod loudness;
pub mod policy;
pub mod sandbox;
mod resample;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod option_tests;
#[cfg(test)]
mod tests;

use std::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Once};

use ffmpeg_sys_next as ff;

use ffi::{CodecContext, FormatContext, Frame, Packet, av_err, cstr};
use io::{AvIo, ChunkReader};
pub use spin_host::interfaces::key_value::ValueRange;
use resample::{InputFormat, Resampler};

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

#[derive(Default, Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub year: Option<String>,
    pub comment: Option<String>,
    pub genre: Option<String>,
    pub track: Option<String>,
}

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

/// A decoder context for `stream`, opened with `codec` (named `name` in errors).
fn open_codec(codec: *const ff::AVCodec, stream: *mut ff::AVStream, name: &str) -> Result<CodecContext, String> {
    let context = CodecContext::alloc(codec)?;
    // SAFETY: both pointers are live; the stream's parameters are copied into the context,
    // which is then opened with the decoder it was allocated for.
    let ret = unsafe {
        let ret = ff::avcodec_parameters_to_context(context.as_ptr(), (*stream).codecpar);
        if ret >= 0 {
            // Lets decoders trim priming/padding samples signalled by the container.
            (*context.as_ptr()).pkt_timebase = (*stream).time_base;
            policy::limit_codec_context(context.as_ptr());
            ff::avcodec_open2(context.as_ptr(), codec, ptr::null_mut())
        } else {
            ret
        }
    };
    if ret < 0 {
        return Err(format!("could not start the {name} decoder: {}", av_err(ret)));
    }
    Ok(context)
}

impl Decoder {
    /// Opens and probes; Err is a readable reason for users, e.g. "the file has no audio
    /// stream", "not a media file FFmpeg can read", "the file is truncated or corrupt: ...".
    pub fn open(
        source: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        request: OutputRequest,
    ) -> Result<Decoder, String> {
        Self::open_with(source, layout, request, false)
    }

    /// Like [`Decoder::open`], for a decoder that only decodes: an MP4's video tracks are
    /// hidden from the demuxer ([`mp4_tracks`]), so it neither indexes nor probes them, and its
    /// [`MediaInfo`] says nothing of them; once the header is read, one source chunk is cached.
    pub fn open_audio_only(source: Arc<dyn ChunkSource>, layout: SourceLayout, request: OutputRequest) -> Result<Decoder, String> {
        Self::open_with(source, layout, request, true)
    }

    fn open_with(
        source: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        request: OutputRequest,
        audio_only: bool,
    ) -> Result<Decoder, String> {
        if let Some(rate) = request.sample_rate
            && !(1..=MAX_OUTPUT_RATE).contains(&rate)
        {
            return Err(format!("unsupported output sample rate {rate} Hz"));
        }
        if let Some(channels) = request.channels
            && !(1..=MAX_OUTPUT_CHANNELS).contains(&channels)
        {
            return Err(format!("unsupported output channel count {channels}"));
        }
        if layout.size == 0 {
            return Err("the file is empty".into());
        }
        silence_ffmpeg_logs();

        let mut reader =
            ChunkReader::new(source, &layout).map_err(|e| format!("internal error: {e}"))?;
        if audio_only {
            reader.hide_video_tracks();
        }
        let io = AvIo::new(reader)?;
        let format = open_input(&io, ff::AVMediaType::AVMEDIA_TYPE_AUDIO)?;
        // Header parsing may look past the end (e.g. optional trailing tags); only seeks
        // while reading packets count as a sign of truncation.
        io.reader().take_seeked_past_end();
        if audio_only {
            io.reader().keep_one_window();
        }

        let audio: Vec<c_int> = format
            .streams()
            .iter()
            .enumerate()
            // SAFETY: live streams of a live context, each with codecpar set.
            .filter(|&(_, &st)| unsafe { (*(*st).codecpar).codec_type } == ff::AVMediaType::AVMEDIA_TYPE_AUDIO)
            .map(|(i, _)| i as c_int)
            .collect();
        let audio_streams = audio.len() as u32;
        if audio_streams == 0 {
            return Err(NO_AUDIO.into());
        }
        let mut codec: *const ff::AVCodec = ptr::null();
        // SAFETY: the context is open; `codec` receives a static decoder pointer.
        let best = unsafe {
            ff::av_find_best_stream(
                format.as_ptr(),
                ff::AVMediaType::AVMEDIA_TYPE_AUDIO,
                -1,
                -1,
                &mut codec,
                0,
            )
        };
        // The file's default stream (even when its codec is unknown, for the stream list).
        let default_track = audio.iter().position(|&i| i == best).unwrap_or(0) as u32;
        let index = match request.track {
            None => {
                if best == ff::AVERROR_DECODER_NOT_FOUND || (best >= 0 && codec.is_null()) {
                    let name = first_audio_codec_name(&format);
                    return Err(format!("the audio codec ({name}) is not supported"));
                }
                if best < 0 {
                    return Err(NO_AUDIO.into());
                }
                best
            }
            Some(track) => {
                let Some(&index) = audio.get(track as usize) else {
                    return Err(format!(
                        "the file has {audio_streams} audio stream{} (track 0{}), so there is no track {track}",
                        if audio_streams == 1 { "" } else { "s" },
                        if audio_streams == 1 { String::new() } else { format!(" to {}", audio_streams - 1) },
                    ));
                };
                // SAFETY: live stream with codecpar; the decoder pointer is static or NULL.
                codec = unsafe { ff::avcodec_find_decoder((*(*format.streams()[index as usize]).codecpar).codec_id) };
                if codec.is_null() {
                    let name = info::codec_name(format.streams()[index as usize]);
                    return Err(format!("the audio codec of track {track} ({name}) is not supported"));
                }
                index
            }
        };
        let track = audio.iter().position(|&i| i == index).unwrap_or(0) as u32;
        let stream = format.streams()[index as usize];
        for &st in format.streams() {
            if st != stream {
                // SAFETY: live stream; setting `discard` before reading is the documented way
                // to have the demuxer skip a stream's packets.
                unsafe { (*st).discard = ff::AVDiscard::AVDISCARD_ALL };
            }
        }
        if let Some(end) = index_end(stream)
            && end > layout.size
        {
            return Err(format!(
                "{TRUNCATED}: it ends after {} of the {end} bytes its index refers to",
                layout.size
            ));
        }

        let info = info::media_info(&format, stream, &audio, track, default_track);
        let codec_ctx = open_codec(codec, stream, &info.codec)?;

        let out_rate = request.sample_rate.unwrap_or(info.sample_rate);
        let out_channels = request.channels.unwrap_or(info.channels);
        if out_rate == 0 || out_channels == 0 {
            return Err(format!(
                "{TRUNCATED}: the audio format could not be determined"
            ));
        }
        let start = trim_start(&info, request.start_secs)?;
        let to_frames = |secs: f64| (secs * f64::from(out_rate)).round() as u64;
        // SAFETY: live stream of an open context.
        let (time_base, start_pts) = unsafe { ((*stream).time_base, (*stream).start_time) };
        let start_pts = if start_pts == ff::AV_NOPTS_VALUE { 0 } else { start_pts };
        tracing::debug!(
            container = %info.container,
            codec = %info.codec,
            duration = ?info.duration_secs,
            rate = info.sample_rate,
            channels = info.channels,
            out_rate,
            out_channels,
            "opened media"
        );
        let mut decoder = Decoder {
            info,
            out_rate,
            out_channels,
            stream_index: index,
            state: State::Demuxing,
            pending: Vec::new(),
            position: Some(0),
            trim_start: to_frames(start),
            trim_end: request.end_secs.map(to_frames),
            kept: 0,
            gain: request.gain_db.map_or(1.0, |db| 10f64.powf(db / 20.0) as f32),
            time_base,
            start_pts,
            decoded_secs: 0.0,
            decode_errors_in_row: 0,
            last_decode_error: None,
            resampler: None,
            frame: Frame::alloc()?,
            packet: Packet::alloc()?,
            codec: codec_ctx,
            format,
            io,
        };
        // A file that cannot seek is decoded from the beginning.
        decoder.seek_before(start);
        Ok(decoder)
    }

    /// Far enough into the stream, seeks to a little before `start` seconds (the first frame
    /// decoded then tells where decoding is); otherwise, or when the file cannot seek, leaves
    /// the demuxer where it is. True when it seeked.
    fn seek_before(&mut self, start: f64) -> bool {
        let time_base = self.time_base;
        if !(start > SEEK_AFTER_SECS && time_base.num > 0 && time_base.den > 0) {
            return false;
        }
        let target = start - SEEK_RUN_UP_SECS;
        let ts = self.start_pts + (target * f64::from(time_base.den) / f64::from(time_base.num)) as i64;
        // SAFETY: open context, one of its streams, a timestamp in that stream's time base.
        let ret = unsafe { ff::av_seek_frame(self.format.as_ptr(), self.stream_index, ts, ff::AVSEEK_FLAG_BACKWARD as c_int) };
        self.io.reader().take_seeked_past_end();
        if ret >= 0 {
            self.position = None;
        }
        ret >= 0
    }

    /// Starts over on another stretch of the same stream, as a decoder opened with that trim
    /// would decode it: the decoder is opened anew, the demuxer seeks, and the trim is
    /// `start_secs`..`end_secs`. A segment lane decodes its next segment this way instead of
    /// opening (and indexing) the container again. False when the stretch starts too near the
    /// beginning for a seek, or the file cannot seek: decoding from the very start is what a
    /// fresh decoder does exactly (the container's priming trim applies only there), so the
    /// caller opens one.
    pub fn restart(&mut self, start_secs: Option<f64>, end_secs: Option<f64>) -> Result<bool, String> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let start = trim_start(&self.info, start_secs)?;
        let to_frames = |secs: f64| (secs * f64::from(self.out_rate)).round() as u64;
        (self.trim_start, self.trim_end) = (to_frames(start), end_secs.map(to_frames));
        self.state = State::Demuxing;
        self.pending.clear();
        self.kept = 0;
        self.decoded_secs = 0.0;
        self.decode_errors_in_row = 0;
        self.last_decode_error = None;
        self.resampler = None;
        // A new decoder, not a flushed one: a flush keeps state that outlives the frames it
        // came from (AAC's noise generator for PNS bands, for one), and a restarted lane must
        // decode what a fresh decoder decodes, so that a segment encoded twice is the same
        // bytes whichever lane encoded it.
        // SAFETY: the open context's decoder and one of the format's streams, both live.
        let (codec, stream) = unsafe { ((*self.codec.as_ptr()).codec, self.format.streams()[self.stream_index as usize]) };
        self.codec = open_codec(codec, stream, &self.info.codec)?;
        Ok(self.seek_before(start))
    }

    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// (sample_rate, channels) of what `read` returns: the request's values, else the
    /// source's (the source's channel count is kept unless a count was requested).
    pub fn output_format(&self) -> (u32, u8) {
        (self.out_rate, self.out_channels)
    }

    /// Up to `max_frames` frames (at least 1) of interleaved s16 PCM, resampled/downmixed,
    /// trimmed and amplified per the request; an empty Vec means end of stream. (The host
    /// hands out float blocks; this is the decoder's own tests' view.)
    #[cfg(test)]
    pub fn read(&mut self, max_frames: usize) -> Result<Vec<i16>, String> {
        Ok(self.read_f32(max_frames)?.into_iter().map(to_s16).collect())
    }

    /// Like [`Decoder::read`], as float samples (full scale ±1.0). Fewer than `max_frames`
    /// are returned only at the end. Decoding errors → Err(readable reason), and every later
    /// call too.
    pub fn read_f32(&mut self, max_frames: usize) -> Result<Vec<f32>, String> {
        self.read_with(max_frames, <[f32]>::to_vec)
    }

    /// Like [`Decoder::read_f32`], handing the block to `take` where it was decoded, so that
    /// a reader that wants other samples converts it without a float copy.
    pub fn read_with<R>(&mut self, max_frames: usize, take: impl FnOnce(&[f32]) -> R) -> Result<R, String> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let channels = usize::from(self.out_channels);
        let wanted = max_frames.max(1).saturating_mul(channels);
        while self.pending.len() < wanted && self.state != State::Finished {
            if let Err(e) = self.step() {
                self.state = State::Failed(e.clone());
                self.pending = Vec::new();
                return Err(e);
            }
        }
        let n = self.pending.len().min(wanted);
        let block = &mut self.pending[..n];
        let gain = self.gain;
        if gain != 1.0 {
            block.iter_mut().for_each(|s| *s *= gain);
        }
        let out = take(block);
        self.pending.drain(..n);
        Ok(out)
    }

    /// One unit of progress: takes a decoded frame, or feeds the decoder one packet, or
    /// finishes the stream.
    fn step(&mut self) -> Result<(), String> {
        // SAFETY: the codec context is open and `frame` is ours to fill.
        let ret = unsafe { ff::avcodec_receive_frame(self.codec.as_ptr(), self.frame.as_ptr()) };
        if ret >= 0 {
            self.decode_errors_in_row = 0;
            let result = self.convert_frame();
            self.frame.unref();
            return result;
        }
        if ret == ff::AVERROR_EOF {
            return self.finish();
        }
        if ret != ff::AVERROR(libc::EAGAIN) {
            return self.decode_error(ret);
        }
        if self.state == State::Draining {
            // A drained decoder answers EOF, not EAGAIN; don't spin if one misbehaves.
            return self.finish();
        }
        self.feed_packet()
    }

    fn feed_packet(&mut self) -> Result<(), String> {
        let mut eagain = 0;
        loop {
            // SAFETY: the format context is open; `packet` is blank (unref'd after each use).
            let ret = unsafe { ff::av_read_frame(self.format.as_ptr(), self.packet.as_ptr()) };
            if let Some(e) = self.io.reader().take_error() {
                self.packet.unref();
                return Err(read_failed(&e));
            }
            if ret == ff::AVERROR(libc::EAGAIN) && eagain < MAX_CONSECUTIVE_EAGAIN {
                eagain += 1;
                continue;
            }
            if ret == ff::AVERROR_EOF {
                self.state = State::Draining;
                // SAFETY: a NULL packet enters draining mode.
                let ret = unsafe { ff::avcodec_send_packet(self.codec.as_ptr(), ptr::null()) };
                if ret < 0 && ret != ff::AVERROR_EOF {
                    return self.decode_error(ret);
                }
                return Ok(());
            }
            if ret < 0 {
                return Err(format!("{TRUNCATED}: {}", av_err(ret)));
            }
            if self.packet.stream_index() != self.stream_index {
                self.packet.unref();
                continue;
            }
            // SAFETY: open decoder and a packet just read for its stream.
            let ret = unsafe { ff::avcodec_send_packet(self.codec.as_ptr(), self.packet.as_ptr()) };
            self.packet.unref();
            // EAGAIN cannot happen: we only send after receive_frame asked for input.
            if ret < 0 {
                return self.decode_error(ret);
            }
            return Ok(());
        }
    }

    fn convert_frame(&mut self) -> Result<(), String> {
        // SAFETY: the frame is alive for the whole call and only read here; `trim_from` and the
        // resampler never touch `self.frame` (so the borrow may overlap theirs of `self`).
        let frame = unsafe { &*self.frame.as_ptr() };
        if frame.nb_samples <= 0 {
            return Ok(());
        }
        let input = InputFormat::of(frame);
        if input.rate > 0 {
            self.decoded_secs += f64::from(frame.nb_samples) / f64::from(input.rate);
        }
        if !self.resampler.as_ref().is_some_and(|r| r.accepts(&input)) {
            // The input format changed mid-stream (or this is the first frame): drain the old
            // resampler, then build one for the new format.
            if let Some(mut old) = self.resampler.take() {
                let before = self.pending.len();
                old.convert(None, &mut self.pending)?;
                self.trim_from(before);
                if self.state == State::Finished {
                    return Ok(());
                }
            }
            self.resampler = Some(Resampler::new(input, self.out_rate, self.out_channels)?);
        }
        if self.position.is_none() {
            // The first frame after a seek: where it lies decides the trim from now on.
            let pts = frame.best_effort_timestamp;
            if pts == ff::AV_NOPTS_VALUE {
                return Err("the file cannot be trimmed precisely: its audio has no timestamps".into());
            }
            let secs = (pts - self.start_pts) as f64 * f64::from(self.time_base.num) / f64::from(self.time_base.den);
            let position = (secs.max(0.0) * f64::from(self.out_rate)).round() as u64;
            if position > self.trim_start {
                // The seek landed after the trim start (an inexact index): decode from the
                // beginning instead, counting samples.
                return self.rewind();
            }
            self.position = Some(position);
        }
        let before = self.pending.len();
        let resampler = self.resampler.as_mut().expect("set above");
        resampler.convert(Some(frame), &mut self.pending)?;
        self.trim_from(before);
        Ok(())
    }

    /// Goes back to the start of the stream after a seek that overshot, to decode from there.
    fn rewind(&mut self) -> Result<(), String> {
        // SAFETY: open context and decoder; seeking to the stream's first timestamp, then
        // flushing the decoder so nothing from the overshoot comes out.
        let ret = unsafe {
            let ret = ff::av_seek_frame(self.format.as_ptr(), self.stream_index, self.start_pts, ff::AVSEEK_FLAG_BACKWARD as c_int);
            ff::avcodec_flush_buffers(self.codec.as_ptr());
            ret
        };
        if ret < 0 {
            return Err(format!("the file cannot be trimmed precisely: seeking back failed ({})", av_err(ret)));
        }
        self.io.reader().take_seeked_past_end();
        self.resampler = None;
        self.position = Some(0);
        Ok(())
    }

    /// Applies the trim to the samples converted since `pending[before]`, and finishes the
    /// stream once the end of the trim is passed.
    fn trim_from(&mut self, before: usize) {
        let channels = usize::from(self.out_channels);
        let new_frames = ((self.pending.len() - before) / channels) as u64;
        let first = self.position.unwrap_or(0);
        self.position = Some(first + new_frames);
        let keep_from = self.trim_start.saturating_sub(first).min(new_frames);
        let keep_to = self.trim_end.map_or(new_frames, |end| end.saturating_sub(first).min(new_frames));
        let (keep_from, keep_to) = (keep_from as usize, (keep_to as usize).max(keep_from as usize));
        if keep_to < new_frames as usize {
            self.pending.truncate(before + keep_to * channels);
        }
        if keep_from > 0 {
            self.pending.drain(before..before + keep_from * channels);
        }
        self.kept += (keep_to - keep_from) as u64;
        if self.trim_end.is_some_and(|end| first + new_frames >= end) {
            self.resampler = None;
            self.state = State::Finished;
        }
    }

    fn decode_error(&mut self, code: c_int) -> Result<(), String> {
        if let Some(e) = self.io.reader().take_error() {
            return Err(read_failed(&e));
        }
        if code == ff::AVERROR(libc::ENOMEM) {
            return Err("out of memory while decoding".into());
        }
        self.decode_errors_in_row += 1;
        self.last_decode_error = Some(av_err(code));
        if self.decode_errors_in_row >= MAX_CONSECUTIVE_DECODE_ERRORS {
            return Err(format!(
                "{TRUNCATED}: the audio could not be decoded ({})",
                av_err(code)
            ));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(mut resampler) = self.resampler.take() {
            let before = self.pending.len();
            resampler.convert(None, &mut self.pending)?;
            self.trim_from(before);
        }
        self.state = State::Finished;
        if self.io.reader().take_seeked_past_end() {
            return Err(format!(
                "{TRUNCATED}: audio data is missing at the end of the file"
            ));
        }
        if self.decoded_secs == 0.0 {
            return Err(match &self.last_decode_error {
                Some(e) => format!("{TRUNCATED}: the audio could not be decoded ({e})"),
                None => "the audio stream contains no audio data".into(),
            });
        }
        if self.kept == 0 && self.trim_start > 0 {
            return Err(format!(
                "the trim starts at {:.3} s, but the audio ends at {:.3} s",
                self.trim_start as f64 / f64::from(self.out_rate),
                self.position.unwrap_or(0) as f64 / f64::from(self.out_rate)
            ));
        }
        Ok(())
    }
}

/// Where a trim starts, in seconds (0 without one); refused when the container says the audio
/// ends before it.
fn trim_start(info: &MediaInfo, start_secs: Option<f64>) -> Result<f64, String> {
    let start = start_secs.unwrap_or(0.0).max(0.0);
    match info.duration_secs {
        Some(duration) if start > 0.0 && start >= duration => {
            Err(format!("the trim starts at {start} s, but the audio ends at {duration:.3} s"))
        }
        _ => Ok(start),
    }
}

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

/// Probes the container and opens it, reading through `io`; only streams of the `wanted`
/// kind (or not yet known) are probed.
fn open_input(io: &AvIo, wanted: ff::AVMediaType) -> Result<FormatContext, String> {
    let mut input_format: *const ff::AVInputFormat = ptr::null();
    // SAFETY: `io` is a valid read context positioned at 0; `input_format` receives a static
    // demuxer description. The probed bytes stay buffered in `io` for avformat_open_input.
    let score = unsafe {
        ff::av_probe_input_buffer2(
            io.as_ptr(),
            &mut input_format,
            c"".as_ptr(),
            ptr::null_mut(),
            0,
            0,
        )
    };
    if let Some(e) = io.reader().take_error() {
        return Err(read_failed(&e));
    }
    if score < 0 || input_format.is_null() {
        return Err(NOT_MEDIA.into());
    }
    // SAFETY: `input_format` is a static demuxer description returned by the probe.
    let (name, long_name) = unsafe { (cstr((*input_format).name).unwrap_or_default(), cstr((*input_format).long_name)) };
    if !policy::is_accepted_demuxer(&name) {
        return Err(format!(
            "files of this kind ({}) are not accepted: upload a video or audio file (MP4, MOV, MKV, WebM, AVI, MP3, WAV, FLAC, Ogg, ...)",
            long_name.unwrap_or(name)
        ));
    }
    // SAFETY: plain allocation, checked below.
    let ctx = unsafe { ff::avformat_alloc_context() };
    if ctx.is_null() {
        return Err("out of memory".into());
    }
    // SAFETY: `ctx` is a fresh context no one else uses.
    if let Err(e) = unsafe { policy::limit_format_context(ctx) } {
        // SAFETY: the context was never opened; this frees it and what the options allocated.
        unsafe { ff::avformat_free_context(ctx) };
        return Err(e);
    }
    // SAFETY: `ctx` is a fresh context. We give it our AVIOContext (custom I/O, so FFmpeg will
    // not close it), refuse nested opens, and point `opaque` at the reader for that callback.
    unsafe {
        (*ctx).pb = io.as_ptr();
        (*ctx).flags |= ff::AVFMT_FLAG_CUSTOM_IO;
        (*ctx).opaque = io.opaque();
        (*ctx).io_open = Some(io::deny_io_open);
    }
    let mut ctx_ptr = ctx;
    // SAFETY: on failure avformat_open_input frees the context and NULLs `ctx_ptr`; on success
    // we take ownership of it.
    let ret = unsafe {
        ff::avformat_open_input(&mut ctx_ptr, c"".as_ptr(), input_format, ptr::null_mut())
    };
    let opened = NonNull::new(ctx_ptr).filter(|_| ret >= 0);
    let Some(opened) = opened else {
        return Err(open_failed(io, input_format, ret));
    };
    // SAFETY: `opened` came from a successful avformat_open_input and is owned by no one else.
    let format = unsafe { FormatContext::from_raw(opened) };
    // Only the wanted kind matters: streams already known to be something else are skipped
    // before the probe, so it neither buffers their packets nor opens their decoders. This
    // keeps the worker's memory small and flat whatever the video is (when decoding audio).
    for &st in format.streams() {
        // SAFETY: live streams of an open context; `discard` is set before any packet is read.
        unsafe {
            let kind = (*(*st).codecpar).codec_type;
            if kind != wanted && kind != ff::AVMediaType::AVMEDIA_TYPE_UNKNOWN {
                (*st).discard = ff::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
    // The decoders FFmpeg opens to fill in stream parameters get the same limits as ours.
    let mut options = policy::StreamOptions::for_streams(format.streams().len())?;
    // SAFETY: the context is open; this reads some packets to fill in stream parameters, with
    // one options dictionary per stream (FFmpeg reads and updates them, we free them).
    let ret = unsafe { ff::avformat_find_stream_info(format.as_ptr(), options.as_mut_ptr()) };
    drop(options);
    if ret < 0 {
        return Err(open_failed(io, input_format, ret));
    }
    Ok(format)
}

fn open_failed(io: &AvIo, input_format: *const ff::AVInputFormat, code: c_int) -> String {
    let mut reader = io.reader();
    if let Some(e) = reader.take_error() {
        return read_failed(&e);
    }
    if reader.nested_open_denied() {
        return "the file refers to other files or URLs (playlists and references are not supported)".into();
    }
    // SAFETY: `input_format` is a static demuxer description returned by the probe.
    let name = cstr(unsafe { (*input_format).long_name }).unwrap_or_else(|| "media".into());
    format!(
        "{TRUNCATED}: the {name} data could not be read ({})",
        av_err(code)
    )
}

fn read_failed(e: &str) -> String {
    format!("could not read the uploaded file: {e}")
}

fn first_audio_codec_name(format: &FormatContext) -> String {
    format
        .streams()
        .iter()
        .find_map(|&st| {
            // SAFETY: live stream with codecpar; avcodec_get_name returns a static string.
            unsafe {
                let par = &*(*st).codecpar;
                (par.codec_type == ff::AVMediaType::AVMEDIA_TYPE_AUDIO)
                    .then(|| cstr(ff::avcodec_get_name(par.codec_id)))
            }
        })
        .flatten()
        .unwrap_or_else(|| "unknown".into())
}

/// The furthest byte the demuxer's index for `stream` says its packets reach, counting only
/// entries with a known size (mov/mp4 sample tables, AVI idx1). `None` without such entries.
fn index_end(stream: *mut ff::AVStream) -> Option<u64> {
    // SAFETY: live stream of an open context.
    let count = unsafe { ff::avformat_index_get_entries_count(stream) };
    let mut end = None;
    for i in 0..count {
        // SAFETY: `i` is in range; the entry is read before any other FFmpeg call.
        let entry = unsafe { ff::avformat_index_get_entry(stream, i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: non-NULL entry owned by the stream.
        let entry = unsafe { &*entry };
        let size = entry.size();
        if entry.pos >= 0 && size > 0 {
            let e = entry.pos as u64 + size as u64;
            end = Some(end.map_or(e, |m: u64| m.max(e)));
        }
    }
    end
}

pub(crate) fn silence_ffmpeg_logs() {
    static ONCE: Once = Once::new();
    // SAFETY: sets a global integer; FFmpeg reads it atomically enough for a log level.
    ONCE.call_once(|| unsafe { ff::av_log_set_level(ff::AV_LOG_QUIET) });
}
