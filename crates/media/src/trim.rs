//! Sample-accurate trims: a late start seeks a little before it and counts samples from the
//! decoded timestamps (going back to the start when a seek overshot), the end finishes the
//! stream, and a segment lane restarts its decoder on another stretch of the same stream.

use std::ffi::c_int;

use ffmpeg_sys_next as ff;

use super::ffi::av_err;
use super::*;

impl Decoder {
    /// Far enough into the stream, seeks to a little before `start` seconds (the first frame
    /// decoded then tells where decoding is); otherwise, or when the file cannot seek, leaves
    /// the demuxer where it is. True when it seeked.
    pub(crate) fn seek_before(&mut self, start: f64) -> bool {
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

    /// Goes back to the start of the stream after a seek that overshot, to decode from there.
    pub(crate) fn rewind(&mut self) -> Result<(), String> {
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
    pub(crate) fn trim_from(&mut self, before: usize) {
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
}

/// Where a trim starts, in seconds (0 without one); refused when the container says the audio
/// ends before it.
pub(crate) fn trim_start(info: &MediaInfo, start_secs: Option<f64>) -> Result<f64, String> {
    let start = start_secs.unwrap_or(0.0).max(0.0);
    match info.duration_secs {
        Some(duration) if start > 0.0 && start >= duration => {
            Err(format!("the trim starts at {start} s, but the audio ends at {duration:.3} s"))
        }
        _ => Ok(start),
    }
}
