//! The cover picture: a frame of the source's video, encoded as JPEG natively.
//!
//! This module owns choosing and making it. A few points of the video are tried (10 %, 25 %,
//! 50 %, 75 % of its length), each by seeking there and decoding up to the first frame at or
//! after it; the first frame bright and varied enough (not a black intro, a fade or a title
//! card of one colour) wins, else the best one seen unless all were near black. The frame is
//! scaled (libswscale, keeping the display aspect ratio) so its longer side is at most the
//! asked size, and encoded with libavcodec's MJPEG encoder. Files whose only pictures are
//! attached covers, or that have no video at all, get none.

use std::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use ffmpeg_sys_next as ff;

use super::ffi::{CodecContext, Frame, Packet, av_err};
use super::io::{AvIo, ChunkReader};
use super::{ChunkSource, SourceLayout, open_input, policy, silence_ffmpeg_logs};

/// Where frames are tried, as fractions of the video's length (first good one wins).
const CANDIDATES: [f64; 4] = [0.1, 0.25, 0.5, 0.75];
/// A frame is good when its average luma (0–255) and its spread reach these.
const MIN_MEAN_LUMA: f64 = 40.0;
const MIN_LUMA_SPREAD: f64 = 12.0;
/// Below both of these, a frame counts as black and is never used.
const BLACK_MEAN_LUMA: f64 = 16.0;
const BLACK_LUMA_SPREAD: f64 = 4.0;
/// Frames decoded after a seek before taking whatever comes (a long GOP).
const MAX_FRAMES_PER_POINT: u32 = 300;
/// Packets read per point before giving up on it.
const MAX_PACKETS_PER_POINT: u32 = 5000;
/// MJPEG quantizer scale (2 best – 31 smallest): 3 is visually clean at a few tens of KB.
const JPEG_QSCALE: c_int = 3;

/// A JPEG picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// A candidate frame, scaled to the output size, with its luma statistics.
struct Scaled {
    frame: Frame,
    width: c_int,
    height: c_int,
    mean: f64,
    spread: f64,
}

impl Scaled {
    fn good(&self) -> bool {
        self.mean >= MIN_MEAN_LUMA && self.spread >= MIN_LUMA_SPREAD
    }

    fn black(&self) -> bool {
        self.mean < BLACK_MEAN_LUMA && self.spread < BLACK_LUMA_SPREAD
    }

    fn score(&self) -> f64 {
        self.mean.min(128.0) + 2.0 * self.spread
    }
}

/// A JPEG of a well-lit frame of the video, at most `max_side` pixels on its longer side;
/// `None` for a file without video (or whose video is black wherever it was tried).
pub fn cover(source: Arc<dyn ChunkSource>, layout: SourceLayout, max_side: u32) -> Result<Option<Picture>, String> {
    if layout.size == 0 {
        return Ok(None);
    }
    silence_ffmpeg_logs();
    let max_side = max_side.clamp(16, 4096) as c_int;
    let reader = ChunkReader::new(source, &layout).map_err(|e| format!("internal error: {e}"))?;
    let io = AvIo::new(reader)?;
    let format = open_input(&io, ff::AVMediaType::AVMEDIA_TYPE_VIDEO)?;
    let mut codec: *const ff::AVCodec = ptr::null();
    // SAFETY: the context is open; `codec` receives a static decoder pointer.
    let index = unsafe {
        ff::av_find_best_stream(format.as_ptr(), ff::AVMediaType::AVMEDIA_TYPE_VIDEO, -1, -1, &mut codec, 0)
    };
    if index < 0 || codec.is_null() {
        return Ok(None);
    }
    let stream = format.streams()[index as usize];
    // SAFETY: live stream of an open context.
    if unsafe { (*stream).disposition } & ff::AV_DISPOSITION_ATTACHED_PIC as c_int != 0 {
        return Ok(None);
    }
    for &st in format.streams() {
        if st != stream {
            // SAFETY: live stream; discarding before reading makes the demuxer skip it.
            unsafe { (*st).discard = ff::AVDiscard::AVDISCARD_ALL };
        }
    }
    // Frames too large to decode safely give no cover: the size is checked before the decoder
    // allocates anything, and the decoder itself refuses a frame that grows past it later.
    // SAFETY: live stream with codecpar set.
    let (width, height) = unsafe { (i64::from((*(*stream).codecpar).width), i64::from((*(*stream).codecpar).height)) };
    if width <= 0 || height <= 0 || width * height > policy::MAX_COVER_PIXELS {
        tracing::debug!(width, height, "no cover: the video's frames are too large to decode for one");
        return Ok(None);
    }
    let decoder = CodecContext::alloc(codec)?;
    // SAFETY: live pointers; the stream's parameters are copied into the context, which is
    // then opened with the decoder it was allocated for (one thread: a single frame is wanted).
    let ret = unsafe {
        let ret = ff::avcodec_parameters_to_context(decoder.as_ptr(), (*stream).codecpar);
        if ret >= 0 {
            (*decoder.as_ptr()).pkt_timebase = (*stream).time_base;
            policy::limit_codec_context(decoder.as_ptr());
            ff::avcodec_open2(decoder.as_ptr(), codec, ptr::null_mut())
        } else {
            ret
        }
    };
    if ret < 0 {
        return Ok(None);
    }
    // SAFETY: live stream and context.
    let (time_base, start, duration) = unsafe {
        let st = &*stream;
        let ctx = &*format.as_ptr();
        let start = if st.start_time == ff::AV_NOPTS_VALUE { 0 } else { st.start_time };
        let duration = if ctx.duration > 0 { Some(ctx.duration as f64 / f64::from(ff::AV_TIME_BASE)) } else { None };
        (st.time_base, start, duration)
    };
    let points: Vec<Option<i64>> = match duration {
        Some(d) if time_base.num > 0 && time_base.den > 0 => CANDIDATES
            .iter()
            .map(|f| Some(start + (f * d * f64::from(time_base.den) / f64::from(time_base.num)) as i64))
            .collect(),
        _ => vec![None],
    };
    let mut packet = Packet::alloc()?;
    let mut frame = Frame::alloc()?;
    let mut best: Option<Scaled> = None;
    for target in points {
        if let Some(ts) = target {
            // SAFETY: open context, its stream, a timestamp in that stream's time base; the
            // decoder is flushed so no frame from before the seek comes out.
            unsafe {
                if ff::av_seek_frame(format.as_ptr(), index, ts, ff::AVSEEK_FLAG_BACKWARD as c_int) < 0 {
                    continue;
                }
                ff::avcodec_flush_buffers(decoder.as_ptr());
            }
        }
        if !decode_at(format.as_ptr(), &decoder, index, target, &mut packet, &mut frame) {
            continue;
        }
        let scaled = scale(&frame, max_side);
        frame.unref();
        let Ok(scaled) = scaled else { continue };
        if scaled.good() {
            best = Some(scaled);
            break;
        }
        if best.as_ref().is_none_or(|b| scaled.score() > b.score()) {
            best = Some(scaled);
        }
    }
    let Some(best) = best.filter(|b| !b.black()) else {
        return Ok(None);
    };
    let jpeg = encode_jpeg(&best)?;
    Ok(Some(Picture { width: best.width as u32, height: best.height as u32, jpeg }))
}

/// Decodes from the current position up to the first frame at or after `target` (any frame
/// when `None`), leaving it in `frame`. `false` when none came.
fn decode_at(
    format: *mut ff::AVFormatContext,
    decoder: &CodecContext,
    index: c_int,
    target: Option<i64>,
    packet: &mut Packet,
    frame: &mut Frame,
) -> bool {
    let mut frames = 0;
    let mut packets = 0;
    let mut draining = false;
    loop {
        // SAFETY: open decoder; `frame` is ours to fill.
        let ret = unsafe { ff::avcodec_receive_frame(decoder.as_ptr(), frame.as_ptr()) };
        if ret >= 0 {
            frames += 1;
            // SAFETY: a frame just received.
            let pts = unsafe { (*frame.as_ptr()).best_effort_timestamp };
            if target.is_none_or(|t| pts == ff::AV_NOPTS_VALUE || pts >= t) || frames >= MAX_FRAMES_PER_POINT {
                return true;
            }
            frame.unref();
            continue;
        }
        if ret != ff::AVERROR(libc::EAGAIN) || draining {
            return false;
        }
        loop {
            packets += 1;
            if packets > MAX_PACKETS_PER_POINT {
                return false;
            }
            // SAFETY: open context; `packet` is blank (unref'd after each use).
            let ret = unsafe { ff::av_read_frame(format, packet.as_ptr()) };
            if ret < 0 {
                draining = true;
                // SAFETY: a NULL packet starts draining the decoder.
                unsafe { ff::avcodec_send_packet(decoder.as_ptr(), ptr::null()) };
                break;
            }
            if packet.stream_index() != index {
                packet.unref();
                continue;
            }
            // SAFETY: open decoder and a packet of its stream. A damaged packet is skipped.
            let ret = unsafe { ff::avcodec_send_packet(decoder.as_ptr(), packet.as_ptr()) };
            packet.unref();
            if ret >= 0 {
                break;
            }
        }
    }
}

/// An owned libswscale context.
struct Sws(NonNull<ff::SwsContext>);

impl Drop for Sws {
    fn drop(&mut self) {
        // SAFETY: we own the context.
        unsafe { ff::sws_freeContext(self.0.as_ptr()) };
    }
}

/// Scales a decoded frame to full-range YUV 4:2:0 (what the JPEG encoder takes) with its
/// longer displayed side at most `max_side`, and measures its luma.
fn scale(frame: &Frame, max_side: c_int) -> Result<Scaled, String> {
    // SAFETY: a decoded frame, alive for this call.
    let src = unsafe { &*frame.as_ptr() };
    let (w, h) = (src.width, src.height);
    if w <= 0 || h <= 0 || src.format < 0 || src.format >= ff::AVPixelFormat::AV_PIX_FMT_NB as c_int {
        return Err("the video frame has no size or format".into());
    }
    // SAFETY: the value came from the same libavutil whose enum the bindings were generated
    // from, and lies in its range (checked above); the enum is a C int.
    let src_format: ff::AVPixelFormat = unsafe { std::mem::transmute::<c_int, ff::AVPixelFormat>(src.format) };
    let sar = src.sample_aspect_ratio;
    let display_w = if sar.num > 0 && sar.den > 0 { (i64::from(w) * i64::from(sar.num) / i64::from(sar.den)) as f64 } else { f64::from(w) };
    let factor = (f64::from(max_side) / display_w.max(f64::from(h))).min(1.0);
    let even = |v: f64| ((v.round() as c_int) & !1).max(2);
    let (dw, dh) = (even(display_w * factor), even(f64::from(h) * factor));
    let out_format = ff::AVPixelFormat::AV_PIX_FMT_YUVJ420P;
    // SAFETY: plain parameters; NULL filters and params mean defaults; checked for NULL.
    let sws = unsafe {
        ff::sws_getContext(w, h, src_format, dw, dh, out_format, ff::SWS_AREA as c_int, ptr::null_mut(), ptr::null_mut(), ptr::null())
    };
    let sws = Sws(NonNull::new(sws).ok_or("the video frame's pixel format cannot be converted")?);
    let out = Frame::alloc()?;
    // SAFETY: a fresh frame; its buffers are allocated for the size and format set here.
    let ret = unsafe {
        let f = &mut *out.as_ptr();
        f.width = dw;
        f.height = dh;
        f.format = out_format as c_int;
        ff::av_frame_get_buffer(out.as_ptr(), 0)
    };
    if ret < 0 {
        return Err(format!("could not allocate the cover picture: {}", av_err(ret)));
    }
    // SAFETY: source planes of a decoded `w`×`h` frame and destination planes just allocated
    // for `dw`×`dh` in the format the context converts to.
    let ret = unsafe {
        let dst = &*out.as_ptr();
        ff::sws_scale(
            sws.0.as_ptr(),
            src.data.as_ptr() as *const *const u8,
            src.linesize.as_ptr(),
            0,
            h,
            dst.data.as_ptr(),
            dst.linesize.as_ptr(),
        )
    };
    if ret <= 0 {
        return Err(format!("could not scale the video frame: {}", av_err(ret)));
    }
    // Luma statistics over the scaled picture's Y plane.
    // SAFETY: plane 0 holds `dh` rows of `linesize` bytes, of which `dw` are pixels.
    let (mean, spread) = unsafe {
        let dst = &*out.as_ptr();
        let (mut sum, mut sum_sq, n) = (0f64, 0f64, f64::from(dw) * f64::from(dh));
        for y in 0..dh as isize {
            let row = std::slice::from_raw_parts(dst.data[0].offset(y * dst.linesize[0] as isize), dw as usize);
            for &v in row {
                sum += f64::from(v);
                sum_sq += f64::from(v) * f64::from(v);
            }
        }
        let mean = sum / n;
        (mean, (sum_sq / n - mean * mean).max(0.0).sqrt())
    };
    Ok(Scaled { frame: out, width: dw, height: dh, mean, spread })
}

/// Encodes the picture with libavcodec's MJPEG encoder (one frame is a baseline JPEG file).
fn encode_jpeg(picture: &Scaled) -> Result<Vec<u8>, String> {
    // SAFETY: returns a static encoder description or NULL.
    let codec = unsafe { ff::avcodec_find_encoder(ff::AVCodecID::AV_CODEC_ID_MJPEG) };
    if codec.is_null() {
        return Err("FFmpeg has no JPEG encoder".into());
    }
    let encoder = CodecContext::alloc(codec)?;
    let quality = ff::FF_QP2LAMBDA as c_int * JPEG_QSCALE;
    // SAFETY: a fresh context configured before opening; the frame is ours.
    let ret = unsafe {
        let c = &mut *encoder.as_ptr();
        c.width = picture.width;
        c.height = picture.height;
        c.pix_fmt = ff::AVPixelFormat::AV_PIX_FMT_YUVJ420P;
        c.time_base = ff::AVRational { num: 1, den: 25 };
        c.flags |= ff::AV_CODEC_FLAG_QSCALE as c_int;
        c.global_quality = quality;
        let f = &mut *picture.frame.as_ptr();
        f.pts = 0;
        f.quality = quality;
        ff::avcodec_open2(encoder.as_ptr(), codec, ptr::null_mut())
    };
    if ret < 0 {
        return Err(format!("could not start the JPEG encoder: {}", av_err(ret)));
    }
    let packet = Packet::alloc()?;
    // SAFETY: open encoder; the frame matches its size and format; NULL then flushes.
    let ret = unsafe {
        let ret = ff::avcodec_send_frame(encoder.as_ptr(), picture.frame.as_ptr());
        if ret >= 0 { ff::avcodec_send_frame(encoder.as_ptr(), ptr::null()) } else { ret }
    };
    if ret < 0 {
        return Err(format!("could not encode the cover picture: {}", av_err(ret)));
    }
    let mut jpeg = Vec::new();
    loop {
        // SAFETY: open encoder; `packet` is ours to fill.
        let ret = unsafe { ff::avcodec_receive_packet(encoder.as_ptr(), packet.as_ptr()) };
        if ret < 0 {
            break;
        }
        // SAFETY: a packet just received holds `size` bytes at `data`.
        unsafe {
            let p = &*packet.as_ptr();
            if !p.data.is_null() && p.size > 0 {
                jpeg.extend_from_slice(std::slice::from_raw_parts(p.data, p.size as usize));
            }
            ff::av_packet_unref(packet.as_ptr());
        }
    }
    if jpeg.is_empty() {
        return Err("the JPEG encoder produced nothing".into());
    }
    Ok(jpeg)
}
