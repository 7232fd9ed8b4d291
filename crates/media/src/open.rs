//! Opening an upload: probing the container through the custom AVIO (only the demuxers the
//! policy allows), picking the audio stream (the default one or the requested track), opening
//! its decoder, and the readable reasons when any of it fails.

use std::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use ffmpeg_sys_next as ff;

use super::ffi::{CodecContext, FormatContext, Frame, Packet, av_err, cstr};
use super::io::{AvIo, ChunkReader};
use super::*;

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

    pub(crate) fn open_with(
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
}

/// A decoder context for `stream`, opened with `codec` (named `name` in errors).
pub(crate) fn open_codec(codec: *const ff::AVCodec, stream: *mut ff::AVStream, name: &str) -> Result<CodecContext, String> {
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

/// Probes the container and opens it, reading through `io`; only streams of the `wanted`
/// kind (or not yet known) are probed.
pub(crate) fn open_input(io: &AvIo, wanted: ff::AVMediaType) -> Result<FormatContext, String> {
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

pub(crate) fn open_failed(io: &AvIo, input_format: *const ff::AVInputFormat, code: c_int) -> String {
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

pub(crate) fn first_audio_codec_name(format: &FormatContext) -> String {
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
pub(crate) fn index_end(stream: *mut ff::AVStream) -> Option<u64> {
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
