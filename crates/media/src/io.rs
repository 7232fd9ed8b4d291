//! Custom FFmpeg I/O over the stored upload.
//!
//! Owns the `AVIOContext` (and its FFmpeg-allocated buffer) plus the [`ChunkReader`] that its
//! read/seek callbacks use, so FFmpeg can demux any container — including MP4s whose `moov`
//! index sits at the end of the file — by random access to the stored chunks, without the
//! upload ever being copied whole into memory. The reader reads a chunk a window of
//! [`WINDOW_BYTES`] at a time and keeps at most [`CACHE_WINDOWS`] windows, so memory stays
//! small and bounded whatever the file length.

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ffmpeg_sys_next as ff;

use super::{ChunkSource, SourceLayout};

/// How many windows the reader keeps in memory (the current one plus one more, which covers
/// the usual "header at one end, data at the other" and window-boundary access patterns).
pub(super) const CACHE_WINDOWS: usize = 2;

/// How much of a chunk one read from the store brings in (less where the chunk ends). A
/// decoder reading forward holds one window, not a whole 1 MiB chunk; an hour's MP4 index
/// (a few MiB at the file's end) takes a few dozen reads.
const WINDOW_BYTES: u64 = 128 * 1024;

/// Size of the `AVIOContext` buffer FFmpeg reads through.
const AVIO_BUFFER_SIZE: usize = 64 * 1024;

/// Plain-Rust random-access reader over a [`ChunkSource`]: a byte position, a tiny LRU cache
/// of windows, and what went wrong (kept here because FFmpeg only sees an error code).
pub(super) struct ChunkReader {
    source: Arc<dyn ChunkSource>,
    size: u64,
    chunk_size: u64,
    chunks: u32,
    /// [`WINDOW_BYTES`], or the chunk size where chunks are smaller.
    window_size: u64,
    pos: u64,
    /// Windows by their first byte's position in the file; most recently used at the back.
    cache: VecDeque<(u64, Vec<u8>)>,
    /// The first storage error since the last `take_error`, as readable text.
    error: Option<String>,
    /// Set when something seeked past the end of the file (a sign of truncation when it happens
    /// while packets are read: an index points at data that is not there).
    seeked_past_end: bool,
    /// Set when a demuxer tried to open another file/URL (playlists, references); denied.
    nested_open_denied: bool,
    /// Offsets of box type fields read as `free` ([`ChunkReader::hide_video_tracks`]).
    hidden: Vec<u64>,
    /// Windows kept in memory: [`CACHE_WINDOWS`], or one for a reader that reads forward.
    cache_limit: usize,
}

impl ChunkReader {
    pub(super) fn new(source: Arc<dyn ChunkSource>, layout: &SourceLayout) -> Result<Self, String> {
        let chunk_size = u64::from(layout.chunk_size);
        let expected_chunks = if layout.size == 0 {
            0
        } else if chunk_size == 0 {
            return Err("invalid source layout: chunk size is 0".into());
        } else {
            layout.size.div_ceil(chunk_size)
        };
        if u64::from(layout.chunks) != expected_chunks {
            return Err(format!(
                "invalid source layout: {} bytes in chunks of {} need {} chunks, not {}",
                layout.size, layout.chunk_size, expected_chunks, layout.chunks
            ));
        }
        Ok(ChunkReader {
            source,
            size: layout.size,
            chunk_size,
            chunks: layout.chunks,
            window_size: WINDOW_BYTES.min(chunk_size.max(1)),
            pos: 0,
            cache: VecDeque::with_capacity(CACHE_WINDOWS),
            error: None,
            seeked_past_end: false,
            nested_open_denied: false,
            hidden: Vec::new(),
            cache_limit: CACHE_WINDOWS,
        })
    }

    /// Keeps one window in memory, for a reader whose header has been read and that reads
    /// forward from now on (a decoder of one stretch after another); a step back costs one
    /// window read again.
    pub(super) fn keep_one_window(&mut self) {
        self.cache_limit = 1;
        while self.cache.len() > 1 {
            self.cache.pop_front();
        }
    }

    /// From now on, an MP4/QuickTime file's video tracks read as free space
    /// ([`super::mp4_tracks`]); other files are unchanged. Leaves the position at the start.
    pub(super) fn hide_video_tracks(&mut self) {
        let size = self.size;
        let mut read_at = |at: u64, buf: &mut [u8]| -> Result<(), String> {
            self.pos = at;
            let mut filled = 0;
            while filled < buf.len() {
                match self.read(&mut buf[filled..])? {
                    0 => return Err("past the end".into()),
                    n => filled += n,
                }
            }
            Ok(())
        };
        let hidden = super::mp4_tracks::video_track_kinds(&mut read_at, size);
        self.hidden = hidden;
        self.error = None;
        self.pos = 0;
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Copies bytes at the current position into `buf` (at most up to the end of the current
    /// window; short reads are fine for FFmpeg). `Ok(0)` means end of file.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        // Windows start at multiples of the window size from their chunk's start.
        let window_start = self.pos - self.pos % self.chunk_size % self.window_size;
        let offset = (self.pos - window_start) as usize;
        let window = self.window(window_start)?;
        let n = buf.len().min(window.len() - offset);
        buf[..n].copy_from_slice(&window[offset..offset + n]);
        let (start, end) = (self.pos, self.pos + n as u64);
        for &kind_at in self.hidden.iter().filter(|&&at| at < end && at + 4 > start) {
            for (i, byte) in super::mp4_tracks::HIDDEN.iter().enumerate() {
                let at = kind_at + i as u64;
                if (start..end).contains(&at) {
                    buf[(at - start) as usize] = *byte;
                }
            }
        }
        self.pos = end;
        Ok(n)
    }

    /// `whence` is `libc::SEEK_SET`/`SEEK_CUR`/`SEEK_END`. Seeking past the end is allowed (as
    /// for a file; reads there hit EOF) but remembered.
    pub(super) fn seek(&mut self, offset: i64, whence: c_int) -> Result<u64, String> {
        let base: i128 = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => i128::from(self.pos),
            libc::SEEK_END => i128::from(self.size),
            other => return Err(format!("unsupported seek mode {other}")),
        };
        let target = base + i128::from(offset);
        if target < 0 || target > i128::from(i64::MAX) {
            return Err(format!("seek to invalid offset {target}"));
        }
        let target = target as u64;
        if target > self.size {
            self.seeked_past_end = true;
        }
        self.pos = target;
        Ok(target)
    }

    /// The window starting at file position `start` (a multiple of the window size within its
    /// chunk), from the cache or the store, checked against the layout.
    fn window(&mut self, start: u64) -> Result<&[u8], String> {
        if let Some(at) = self.cache.iter().position(|(s, _)| *s == start) {
            let entry = self.cache.remove(at).expect("position is in range");
            self.cache.push_back(entry);
        } else {
            let index = (start / self.chunk_size) as u32;
            let offset = start % self.chunk_size;
            let chunk_len = if index + 1 == self.chunks {
                self.size - u64::from(index) * self.chunk_size
            } else {
                self.chunk_size
            };
            // Room is made first: at most `cache_limit` windows are held, the new one included.
            while self.cache.len() >= self.cache_limit {
                self.cache.pop_front();
            }
            let range = self
                .source
                .read_range(index, offset, self.window_size as usize)
                .map_err(|e| format!("reading chunk {index} failed: {e:#}"))?;
            if range.value_len != chunk_len {
                return Err(format!("chunk {index} has {} bytes, expected {chunk_len}", range.value_len));
            }
            let expected = self.window_size.min(chunk_len - offset);
            if range.bytes.len() as u64 != expected {
                return Err(format!(
                    "chunk {index} gave {} bytes at {offset}, expected {expected}",
                    range.bytes.len()
                ));
            }
            self.cache.push_back((start, range.bytes));
        }
        Ok(&self.cache.back().expect("just pushed").1)
    }

    fn record_error(&mut self, error: String) {
        self.error.get_or_insert(error);
    }

    pub(super) fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    pub(super) fn take_seeked_past_end(&mut self) -> bool {
        std::mem::take(&mut self.seeked_past_end)
    }

    pub(super) fn nested_open_denied(&self) -> bool {
        self.nested_open_denied
    }

    #[cfg(test)]
    pub(super) fn cached_bytes(&self) -> usize {
        self.cache.iter().map(|(_, c)| c.len()).sum()
    }
}

/// An `AVIOContext` whose callbacks read from a boxed `Mutex<ChunkReader>`.
///
/// Must outlive every `AVFormatContext` using it (the owner drops the format context first).
pub(super) struct AvIo {
    ctx: NonNull<ff::AVIOContext>,
    reader: NonNull<Mutex<ChunkReader>>,
}

impl AvIo {
    pub(super) fn new(reader: ChunkReader) -> Result<AvIo, String> {
        let reader = NonNull::from(Box::leak(Box::new(Mutex::new(reader))));
        // SAFETY: plain allocation; the result is checked for NULL below.
        let buffer = unsafe { ff::av_malloc(AVIO_BUFFER_SIZE) }.cast::<u8>();
        if buffer.is_null() {
            // SAFETY: `reader` came from Box::leak above and was never shared.
            drop(unsafe { Box::from_raw(reader.as_ptr()) });
            return Err("out of memory".into());
        }
        // SAFETY: `buffer` is an av_malloc'ed block of AVIO_BUFFER_SIZE bytes whose ownership
        // passes to the context; `opaque` points at the reader, which stays alive until
        // `Drop` frees the context first; the callbacks match the expected signatures.
        let ctx = unsafe {
            ff::avio_alloc_context(
                buffer,
                AVIO_BUFFER_SIZE as c_int,
                0,
                reader.as_ptr().cast::<c_void>(),
                Some(read_packet),
                None,
                Some(seek),
            )
        };
        let Some(ctx) = NonNull::new(ctx) else {
            // SAFETY: allocation failed, so we still own both the buffer and the reader.
            unsafe {
                ff::av_free(buffer.cast());
                drop(Box::from_raw(reader.as_ptr()));
            }
            return Err("out of memory".into());
        };
        Ok(AvIo { ctx, reader })
    }

    pub(super) fn as_ptr(&self) -> *mut ff::AVIOContext {
        self.ctx.as_ptr()
    }

    /// The pointer given to FFmpeg as callback `opaque` (also used as `AVFormatContext.opaque`).
    pub(super) fn opaque(&self) -> *mut c_void {
        self.reader.as_ptr().cast()
    }

    /// Locks the reader. Only call between FFmpeg calls (never from inside a callback).
    pub(super) fn reader(&self) -> MutexGuard<'_, ChunkReader> {
        // SAFETY: the reader box lives until `Drop`, and we only hand out shared references
        // (mutation goes through the mutex).
        let reader = unsafe { self.reader.as_ref() };
        reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for AvIo {
    fn drop(&mut self) {
        let mut ctx = self.ctx.as_ptr();
        // SAFETY: we own the context; FFmpeg may have replaced its buffer, so free the current
        // one (`av_freep` nulls it), then the context itself; nothing uses it after this.
        // The reader box is freed last, when no callback can run any more.
        unsafe {
            ff::av_freep((&raw mut (*ctx).buffer).cast());
            ff::avio_context_free(&mut ctx);
            drop(Box::from_raw(self.reader.as_ptr()));
        }
    }
}

/// Runs `f` on the reader behind a callback's `opaque`, turning a panic into `AVERROR(EIO)`.
fn with_reader(opaque: *mut c_void, f: impl FnOnce(&mut ChunkReader) -> i64) -> i64 {
    if opaque.is_null() {
        return i64::from(ff::AVERROR(libc::EINVAL));
    }
    // SAFETY: `opaque` is the `Mutex<ChunkReader>` leaked in `AvIo::new`; it outlives the
    // AVIOContext (and every format context using it) — see `AvIo::drop`.
    let reader = unsafe { &*opaque.cast::<Mutex<ChunkReader>>() };
    let result = catch_unwind(AssertUnwindSafe(|| {
        f(&mut reader.lock().unwrap_or_else(PoisonError::into_inner))
    }));
    result.unwrap_or_else(|_| {
        reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_error("internal error (panic) while reading the upload".into());
        i64::from(ff::AVERROR(libc::EIO))
    })
}

unsafe extern "C" fn read_packet(opaque: *mut c_void, buf: *mut u8, buf_size: c_int) -> c_int {
    if buf.is_null() || buf_size <= 0 {
        return ff::AVERROR(libc::EINVAL);
    }
    // SAFETY: FFmpeg passes a buffer of `buf_size` writable bytes, exclusively ours for this call.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, buf_size as usize) };
    with_reader(opaque, |reader| match reader.read(out) {
        Ok(0) => i64::from(ff::AVERROR_EOF),
        Ok(n) => n as i64,
        Err(e) => {
            reader.record_error(e);
            i64::from(ff::AVERROR(libc::EIO))
        }
    }) as c_int
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    with_reader(opaque, |reader| {
        if whence & ff::AVSEEK_SIZE != 0 {
            return reader.size() as i64;
        }
        match reader.seek(offset, whence & !ff::AVSEEK_FORCE) {
            Ok(pos) => pos as i64,
            Err(_) => i64::from(ff::AVERROR(libc::EINVAL)),
        }
    })
}

/// `AVFormatContext.io_open` replacement: demuxers that want to open other files or URLs
/// (HLS/concat playlists, QuickTime references, ...) are refused — an upload must be
/// self-contained, and must not make us read local files or the network.
pub(super) unsafe extern "C" fn deny_io_open(
    s: *mut ff::AVFormatContext,
    _pb: *mut *mut ff::AVIOContext,
    _url: *const std::ffi::c_char,
    _flags: c_int,
    _options: *mut *mut ff::AVDictionary,
) -> c_int {
    if !s.is_null() {
        // SAFETY: FFmpeg passes a valid format context; nested contexts share `opaque`, which
        // we set to our reader pointer (or it is NULL).
        let opaque = unsafe { (*s).opaque };
        with_reader(opaque, |reader| {
            reader.nested_open_denied = true;
            0
        });
    }
    ff::AVERROR(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueRange;

    struct Mem(Vec<u8>, usize);
    impl ChunkSource for Mem {
        fn read_range(&self, index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange> {
            let start = index as usize * self.1;
            anyhow::ensure!(start < self.0.len(), "no chunk {index}");
            Ok(ValueRange::of(&self.0[start..(start + self.1).min(self.0.len())], offset, len))
        }
    }

    fn reader(len: usize, chunk: usize) -> ChunkReader {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let layout = SourceLayout {
            size: len as u64,
            chunks: len.div_ceil(chunk) as u32,
            chunk_size: chunk as u32,
        };
        ChunkReader::new(Arc::new(Mem(data, chunk)), &layout).unwrap()
    }

    #[test]
    fn demux_reader_reads_across_chunks_and_seeks() {
        let mut r = reader(10_000, 4096);
        let mut all = Vec::new();
        let mut buf = [0u8; 3000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(r.cached_bytes() <= CACHE_WINDOWS * 4096);
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all.len(), 10_000);
        assert!(all.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

        assert_eq!(r.seek(-10, libc::SEEK_END).unwrap(), 9_990);
        assert_eq!(r.read(&mut buf).unwrap(), 10);
        assert_eq!(buf[0], (9_990 % 251) as u8);
        assert_eq!(r.seek(4095, libc::SEEK_SET).unwrap(), 4095);
        assert_eq!(
            r.read(&mut buf).unwrap(),
            1,
            "short read up to the chunk boundary"
        );
        assert_eq!(r.seek(5, libc::SEEK_CUR).unwrap(), 4101);
        assert!(r.seek(-5000, libc::SEEK_CUR).is_err());
        assert!(!r.take_seeked_past_end());
        assert_eq!(r.seek(20_000, libc::SEEK_SET).unwrap(), 20_000);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert!(r.take_seeked_past_end());
    }

    #[test]
    fn a_forward_reader_holds_one_window_of_a_large_chunk() {
        let chunk = 1 << 20;
        let mut r = reader(3 * chunk + 1000, chunk);
        r.keep_one_window();
        let (mut all, mut buf) = (Vec::new(), vec![0u8; 50_000]);
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(r.cached_bytes() <= WINDOW_BYTES as usize, "{} bytes cached", r.cached_bytes());
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all.len(), 3 * chunk + 1000);
        assert!(all.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        // Back into the first chunk's second window, and across the last chunk's end.
        r.seek(WINDOW_BYTES as i64 + 3, libc::SEEK_SET).unwrap();
        assert_eq!(r.read(&mut buf[..4]).unwrap(), 4);
        assert_eq!(&buf[..4], &[(WINDOW_BYTES as usize + 3) % 251, (WINDOW_BYTES as usize + 4) % 251, (WINDOW_BYTES as usize + 5) % 251, (WINDOW_BYTES as usize + 6) % 251].map(|b| b as u8));
        r.seek(-10, libc::SEEK_END).unwrap();
        assert_eq!(r.read(&mut buf).unwrap(), 10);
    }

    #[test]
    fn demux_reader_rejects_bad_layouts_and_short_chunks() {
        let layout = SourceLayout {
            size: 10,
            chunks: 2,
            chunk_size: 4,
        };
        assert!(ChunkReader::new(Arc::new(Mem(vec![0; 10], 4)), &layout).is_err());
        // The source serves 3-byte chunks while the layout promises 4.
        let layout = SourceLayout {
            size: 10,
            chunks: 3,
            chunk_size: 4,
        };
        let mut r = ChunkReader::new(Arc::new(Mem(vec![0; 10], 3)), &layout).unwrap();
        let err = r.read(&mut [0u8; 8]).unwrap_err();
        assert!(err.contains("expected 4"), "{err}");
    }
}
