//! Thin owning wrappers around the FFmpeg objects the decoder uses (format context, codec
//! context, packet, frame, channel layout) plus small helpers (error text, dictionary
//! look-ups). Each wrapper frees its object in `Drop`, so every exit path of `Decoder::open`
//! and the decoder's own drop release everything without hand-written cleanup.

use std::ffi::{CStr, c_int};
use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ff;

/// FFmpeg's description of an error code, e.g. "Invalid data found when processing input".
pub(super) fn av_err(code: c_int) -> String {
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: `buf` is writable for its full length, which we pass; av_strerror always
    // NUL-terminates (it writes a generic message for unknown codes).
    let ret = unsafe { ff::av_strerror(code, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        return format!("error {code}");
    }
    // SAFETY: NUL-terminated by av_strerror, inside `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Copies a possibly-NULL C string.
pub(super) fn cstr(p: *const std::ffi::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: callers pass NUL-terminated strings owned by FFmpeg objects that are alive.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Case-insensitive look-up of `key` in an FFmpeg dictionary (which may be NULL).
pub(super) fn dict_get(dict: *const ff::AVDictionary, key: &CStr) -> Option<String> {
    if dict.is_null() {
        return None;
    }
    // SAFETY: `dict` is a live dictionary of a live format context/stream; av_dict_get
    // only reads it and returns an entry owned by it (or NULL).
    let entry = unsafe { ff::av_dict_get(dict, key.as_ptr(), ptr::null(), 0) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: `entry` is non-NULL and points into the dictionary.
    cstr(unsafe { (*entry).value })
}

/// An opened demuxer (`avformat_open_input` succeeded). Uses custom I/O, so closing it does
/// not touch the `AVIOContext`, which its owner must keep alive longer than this.
pub(super) struct FormatContext(NonNull<ff::AVFormatContext>);

impl FormatContext {
    /// # Safety
    /// `ptr` must be a context returned by a successful `avformat_open_input`, not owned
    /// elsewhere.
    pub(super) unsafe fn from_raw(ptr: NonNull<ff::AVFormatContext>) -> Self {
        FormatContext(ptr)
    }

    pub(super) fn as_ptr(&self) -> *mut ff::AVFormatContext {
        self.0.as_ptr()
    }

    pub(super) fn get(&self) -> &ff::AVFormatContext {
        // SAFETY: the context is alive and only mutated by FFmpeg calls made through `&mut`
        // paths of the owner (never while this borrow is held).
        unsafe { self.0.as_ref() }
    }

    /// The streams as raw pointers (valid while the context lives).
    pub(super) fn streams(&self) -> &[*mut ff::AVStream] {
        let ctx = self.get();
        if ctx.streams.is_null() || ctx.nb_streams == 0 {
            return &[];
        }
        // SAFETY: `streams` holds `nb_streams` valid stream pointers owned by the context.
        unsafe { std::slice::from_raw_parts(ctx.streams, ctx.nb_streams as usize) }
    }
}

impl Drop for FormatContext {
    fn drop(&mut self) {
        let mut ptr = self.0.as_ptr();
        // SAFETY: we own the context; with AVFMT_FLAG_CUSTOM_IO set this does not free `pb`.
        unsafe { ff::avformat_close_input(&mut ptr) };
    }
}

/// A decoder context.
pub(super) struct CodecContext(NonNull<ff::AVCodecContext>);

impl CodecContext {
    pub(super) fn alloc(codec: *const ff::AVCodec) -> Result<Self, String> {
        // SAFETY: `codec` is NULL or a codec returned by libavcodec; the result is checked.
        let ptr = unsafe { ff::avcodec_alloc_context3(codec) };
        NonNull::new(ptr)
            .map(CodecContext)
            .ok_or_else(|| "out of memory".to_string())
    }

    pub(super) fn as_ptr(&self) -> *mut ff::AVCodecContext {
        self.0.as_ptr()
    }
}

impl Drop for CodecContext {
    fn drop(&mut self) {
        let mut ptr = self.0.as_ptr();
        // SAFETY: we own the context; this closes the codec and frees it.
        unsafe { ff::avcodec_free_context(&mut ptr) };
    }
}

pub(super) struct Packet(NonNull<ff::AVPacket>);

impl Packet {
    pub(super) fn alloc() -> Result<Self, String> {
        // SAFETY: plain allocation, checked for NULL.
        NonNull::new(unsafe { ff::av_packet_alloc() })
            .map(Packet)
            .ok_or_else(|| "out of memory".to_string())
    }

    pub(super) fn as_ptr(&self) -> *mut ff::AVPacket {
        self.0.as_ptr()
    }

    pub(super) fn stream_index(&self) -> c_int {
        // SAFETY: the packet is alive; reading a plain field.
        unsafe { self.0.as_ref() }.stream_index
    }

    pub(super) fn unref(&mut self) {
        // SAFETY: the packet is alive; unref on a blank packet is a no-op.
        unsafe { ff::av_packet_unref(self.0.as_ptr()) };
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        let mut ptr = self.0.as_ptr();
        // SAFETY: we own the packet; this unrefs and frees it.
        unsafe { ff::av_packet_free(&mut ptr) };
    }
}

pub(super) struct Frame(NonNull<ff::AVFrame>);

impl Frame {
    pub(super) fn alloc() -> Result<Self, String> {
        // SAFETY: plain allocation, checked for NULL.
        NonNull::new(unsafe { ff::av_frame_alloc() })
            .map(Frame)
            .ok_or_else(|| "out of memory".to_string())
    }

    pub(super) fn as_ptr(&self) -> *mut ff::AVFrame {
        self.0.as_ptr()
    }

    pub(super) fn unref(&mut self) {
        // SAFETY: the frame is alive; unref on an empty frame is a no-op.
        unsafe { ff::av_frame_unref(self.0.as_ptr()) };
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut ptr = self.0.as_ptr();
        // SAFETY: we own the frame; this unrefs and frees it.
        unsafe { ff::av_frame_free(&mut ptr) };
    }
}

/// An owned `AVChannelLayout` (FFmpeg ≥ 5.1 API).
pub(super) struct ChannelLayout(ff::AVChannelLayout);

impl ChannelLayout {
    fn zeroed() -> ff::AVChannelLayout {
        // SAFETY: AVChannelLayout is plain data (enum with a 0 variant, ints, a union of an
        // integer and a pointer, a pointer); all-zero is the documented "unset" state.
        unsafe { std::mem::zeroed() }
    }

    /// FFmpeg's default layout for `channels` (mono, stereo, 5.1, ...; unspecified order
    /// for unusual counts).
    pub(super) fn default_for(channels: c_int) -> Self {
        let mut layout = Self::zeroed();
        // SAFETY: `layout` is a valid, zeroed layout to fill in.
        unsafe { ff::av_channel_layout_default(&mut layout, channels) };
        ChannelLayout(layout)
    }

    /// A copy of `src`, or the default layout for its channel count when `src` is invalid or
    /// has no channel order (libswresample needs to know which channel is which to downmix).
    pub(super) fn usable_copy_of(src: &ff::AVChannelLayout) -> Self {
        // SAFETY: `src` is a valid layout borrowed from a live frame/codec context.
        let valid = unsafe { ff::av_channel_layout_check(src) } == 1;
        if valid && src.order != ff::AVChannelOrder::AV_CHANNEL_ORDER_UNSPEC {
            let mut layout = Self::zeroed();
            // SAFETY: copying a valid layout into a zeroed one; custom maps are duplicated
            // (and released by our Drop).
            if unsafe { ff::av_channel_layout_copy(&mut layout, src) } >= 0 {
                return ChannelLayout(layout);
            }
        }
        Self::default_for(src.nb_channels.max(1))
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut ff::AVChannelLayout {
        &mut self.0
    }

    pub(super) fn same_as(&self, other: &ChannelLayout) -> bool {
        // SAFETY: both layouts are valid for reading.
        unsafe { ff::av_channel_layout_compare(&self.0, &other.0) == 0 }
    }
}

impl Drop for ChannelLayout {
    fn drop(&mut self) {
        // SAFETY: releases a custom map if any; fine on any valid layout.
        unsafe { ff::av_channel_layout_uninit(&mut self.0) };
    }
}
