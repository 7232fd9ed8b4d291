//! What FFmpeg may do with an upload, set on every context before it reads a byte.
//!
//! An upload is hostile input, and FFmpeg's demuxers can do far more than read one file: a
//! concat list opens the files it names, an SDP file opens sockets, HLS and DASH fetch
//! playlists, image2 reads numbered files from disk. This module owns the first layer of
//! confinement, inside FFmpeg itself:
//! - only the demuxers a media upload needs ([`ACCEPTED_DEMUXERS`]) are used: a file that probes
//!   as anything else is refused before it is opened, and the same list is the context's
//!   `format_whitelist`, which FFmpeg copies to every nested context a demuxer makes;
//! - no protocol at all (`protocol_whitelist` names none): the only I/O is the custom AVIO
//!   over the stored chunks, and every nested `io_open` is refused ([`super::io`]);
//! - limits before allocation: stream count, probe size and duration, samples per audio frame,
//!   pixels per video frame ([`MAX_COVER_PIXELS`]);
//! - an interrupt callback bound to the current deadline ([`set_deadline`]), which the media
//!   sandbox sets from the job's.
//!
//! The second layer is the kernel's: FFmpeg runs in a process of its own that can open no file
//! and no socket and has a memory cap (`super::sandbox`).

use std::ffi::{CString, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ffmpeg_sys_next as ff;

/// The demuxers an upload may be read with (FFmpeg's names; a demuxer whose name lists several,
/// like `mov,mp4,m4a,3gp,3g2,mj2`, is accepted when one of them is here). Video containers,
/// audio files and raw audio streams; never one that opens other inputs or the network
/// (concat, hls, dash, sdp, rtp, rtsp, image2, imf, webm_dash_manifest, tee, data, ...).
pub const ACCEPTED_DEMUXERS: &[&str] = &[
    // Video containers.
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "asf", "rm", "nut",
    "mxf", "ogg", "dv",
    // Audio files and streams.
    "wav", "w64", "aiff", "mp3", "aac", "loas", "flac", "wv", "ape", "caf", "amr", "amrnb", "amrwb", "au", "ac3",
    "eac3", "dts", "dtshd", "truehd", "mlp", "tta", "tak", "mpc", "mpc8", "dsf", "voc", "oma", "xwma", "shn",
];

/// Streams a file may declare; more is not a media upload (FFmpeg's default is 1000).
pub const MAX_STREAMS: c_int = 64;
/// Bytes and microseconds of the file read to detect its streams (FFmpeg's defaults, set
/// explicitly so that a change of default cannot widen them).
const PROBE_BYTES: i64 = 5_000_000;
const ANALYZE_MICROSECONDS: i64 = 5_000_000;
/// Packets buffered while probing.
const MAX_PROBE_PACKETS: c_int = 2500;
/// Samples (per channel) one decoded audio frame may have; real codecs stay far below.
pub const MAX_FRAME_SAMPLES: i64 = 1 << 20;
/// Pixels of a video frame decoded for the cover: 4096 × 4096 (a 4K frame fits). A larger
/// frame is not decoded at all (the job gets no cover), so a small file of huge frames cannot
/// make FFmpeg allocate gigabytes.
pub const MAX_COVER_PIXELS: i64 = 4096 * 4096;

/// Whether FFmpeg's demuxer `name` (possibly a comma-separated family) is accepted.
pub fn is_accepted_demuxer(name: &str) -> bool {
    name.split(',').any(|part| ACCEPTED_DEMUXERS.contains(&part))
}

/// Sets an option of an FFmpeg object (a format or codec context) by name.
fn set_option(object: *mut c_void, name: &str, value: &str) -> Result<(), String> {
    let (name_c, value_c) = (CString::new(name).expect("no NUL"), CString::new(value).expect("no NUL"));
    // SAFETY: `object` is a live AVClass-enabled context; the strings are NUL-terminated and
    // copied by FFmpeg.
    let ret = unsafe { ff::av_opt_set(object, name_c.as_ptr(), value_c.as_ptr(), 0) };
    if ret < 0 {
        return Err(format!("internal error: FFmpeg option {name} refused ({ret})"));
    }
    Ok(())
}

/// Applies the limits to a fresh format context, before `avformat_open_input`.
///
/// # Safety
/// `ctx` must be a live context from `avformat_alloc_context` that no other thread uses.
pub unsafe fn limit_format_context(ctx: *mut ff::AVFormatContext) -> Result<(), String> {
    set_option(ctx.cast(), "format_whitelist", &ACCEPTED_DEMUXERS.join(","))?;
    // No protocol has this name: every URL a demuxer might open is refused by FFmpeg itself
    // (nested contexts copy the list), before `io_open` is even asked.
    set_option(ctx.cast(), "protocol_whitelist", "mp3edge-no-protocol")?;
    // SAFETY: the caller's context; plain fields read by avformat_open_input.
    unsafe {
        (*ctx).max_streams = MAX_STREAMS;
        (*ctx).probesize = PROBE_BYTES;
        (*ctx).max_analyze_duration = ANALYZE_MICROSECONDS;
        (*ctx).max_probe_packets = MAX_PROBE_PACKETS;
        (*ctx).interrupt_callback = ff::AVIOInterruptCB { callback: Some(interrupted), opaque: std::ptr::null_mut() };
    }
    Ok(())
}

/// Applies the limits to a decoder context before `avcodec_open2`.
///
/// # Safety
/// `ctx` must be a live, not yet opened codec context.
pub unsafe fn limit_codec_context(ctx: *mut ff::AVCodecContext) {
    // SAFETY: plain fields of the caller's context, read by avcodec_open2.
    unsafe {
        (*ctx).max_pixels = MAX_COVER_PIXELS;
        (*ctx).max_samples = MAX_FRAME_SAMPLES;
        // One thread: nothing is gained for audio, and a confined process may not start any.
        (*ctx).thread_count = 1;
    }
}

/// One options dictionary per stream for `avformat_find_stream_info`, which opens decoders of
/// its own to fill in stream parameters: they get the limits of [`limit_codec_context`].
pub struct StreamOptions(Vec<*mut ff::AVDictionary>);

impl StreamOptions {
    pub fn for_streams(count: usize) -> Result<StreamOptions, String> {
        let mut options = StreamOptions(vec![std::ptr::null_mut(); count]);
        let values = [("max_pixels", MAX_COVER_PIXELS.to_string()), ("max_samples", MAX_FRAME_SAMPLES.to_string()), ("threads", "1".into())];
        for dict in &mut options.0 {
            for (key, value) in &values {
                let (key, value) = (CString::new(*key).expect("no NUL"), CString::new(value.as_str()).expect("no NUL"));
                // SAFETY: `dict` is NULL or a dictionary this struct owns; FFmpeg copies both strings.
                if unsafe { ff::av_dict_set(dict, key.as_ptr(), value.as_ptr(), 0) } < 0 {
                    return Err("out of memory".into());
                }
            }
        }
        Ok(options)
    }

    /// The array FFmpeg takes (one entry per stream).
    pub fn as_mut_ptr(&mut self) -> *mut *mut ff::AVDictionary {
        self.0.as_mut_ptr()
    }
}

impl Drop for StreamOptions {
    fn drop(&mut self) {
        for dict in &mut self.0 {
            // SAFETY: each entry is NULL or a dictionary owned here (FFmpeg may have replaced it
            // with another it allocated, which is ours to free as well).
            unsafe { ff::av_dict_free(dict) };
        }
    }
}

/// The deadline of whatever FFmpeg is doing in this process, in milliseconds since the Unix
/// epoch (0: none).
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);

/// Makes FFmpeg's blocking calls give up (as "interrupted") once `deadline` has passed. The
/// media sandbox's process serves one job's decoding, so one deadline covers it.
pub fn set_deadline(deadline: Option<SystemTime>) {
    let ms = deadline.and_then(|d| d.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis().max(1) as u64);
    DEADLINE_MS.store(ms, Ordering::Relaxed);
}

/// Whether the deadline has passed.
pub fn past_deadline() -> bool {
    passed(DEADLINE_MS.load(Ordering::Relaxed), SystemTime::now())
}

/// Whether a deadline of `deadline_ms` (0: none) has passed at `now`.
fn passed(deadline_ms: u64, now: SystemTime) -> bool {
    deadline_ms != 0 && now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64) >= deadline_ms
}

unsafe extern "C" fn interrupted(_opaque: *mut c_void) -> c_int {
    c_int::from(past_deadline())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_demuxers_are_accepted_including_families() {
        assert!(is_accepted_demuxer("mov,mp4,m4a,3gp,3g2,mj2"));
        assert!(is_accepted_demuxer("matroska,webm"));
        assert!(is_accepted_demuxer("wav"));
        for refused in ["concat", "sdp", "rtp", "rtsp", "hls", "dash", "image2", "imf", "webm_dash_manifest", "data", "ffmetadata", "lavfi", ""] {
            assert!(!is_accepted_demuxer(refused), "{refused} must be refused");
        }
        // A name is matched whole, not by prefix.
        assert!(!is_accepted_demuxer("mp3x"));
        assert!(!is_accepted_demuxer("wa"));
    }

    #[test]
    fn a_deadline_has_passed_from_its_millisecond_on() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(5_000);
        assert!(!passed(0, at), "no deadline never passes");
        assert!(!passed(5_001, at));
        assert!(passed(5_000, at));
        assert!(passed(4_000, at));
    }
}
