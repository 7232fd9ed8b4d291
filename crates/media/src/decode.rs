//! Decoding: packets in, frames out, each frame resampled to the output's float layout with
//! the gain applied, then handed out as s16, 24-bit or float blocks; isolated damaged packets
//! are skipped as the ffmpeg CLI does, and the stream's end drains the decoder.

use std::ffi::c_int;

use ffmpeg_sys_next as ff;

use super::ffi::av_err;
use super::resample::{InputFormat, Resampler};
use super::*;

impl Decoder {
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
    pub(crate) fn step(&mut self) -> Result<(), String> {
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

    pub(crate) fn feed_packet(&mut self) -> Result<(), String> {
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

    pub(crate) fn convert_frame(&mut self) -> Result<(), String> {
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

    pub(crate) fn decode_error(&mut self, code: c_int) -> Result<(), String> {
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

    pub(crate) fn finish(&mut self) -> Result<(), String> {
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
