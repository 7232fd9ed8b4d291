//! libswresample wrapper: owns one `SwrContext` converting decoded frames of one input format
//! (sample format, rate, channel layout) to interleaved 32-bit float at the output rate and
//! channel count (float keeps 24-bit sources whole and lets the decoder apply a gain before
//! the one rounding to the codec's depth). The decoder builds a new one when the input format changes mid-stream, flushing the
//! old one first so its buffered tail is not lost.

use std::ffi::c_int;
use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ff;

use super::ffi::{ChannelLayout, av_err};

pub(super) struct Resampler {
    swr: NonNull<ff::SwrContext>,
    in_format: c_int,
    in_rate: c_int,
    in_layout: ChannelLayout,
    out_channels: usize,
}

/// The input format of a decoded frame, as libswresample needs it.
pub(super) struct InputFormat {
    pub format: c_int,
    pub rate: c_int,
    pub layout: ChannelLayout,
}

impl InputFormat {
    pub(super) fn of(frame: &ff::AVFrame) -> Self {
        InputFormat {
            format: frame.format,
            rate: frame.sample_rate,
            layout: ChannelLayout::usable_copy_of(&frame.ch_layout),
        }
    }
}

/// Maps a raw `AVFrame.format` to the enum without transmuting unknown values.
fn sample_format(raw: c_int) -> Option<ff::AVSampleFormat> {
    use ff::AVSampleFormat::*;
    [
        AV_SAMPLE_FMT_U8,
        AV_SAMPLE_FMT_S16,
        AV_SAMPLE_FMT_S32,
        AV_SAMPLE_FMT_FLT,
        AV_SAMPLE_FMT_DBL,
        AV_SAMPLE_FMT_U8P,
        AV_SAMPLE_FMT_S16P,
        AV_SAMPLE_FMT_S32P,
        AV_SAMPLE_FMT_FLTP,
        AV_SAMPLE_FMT_DBLP,
        AV_SAMPLE_FMT_S64,
        AV_SAMPLE_FMT_S64P,
    ]
    .into_iter()
    .find(|f| *f as c_int == raw)
}

impl Resampler {
    pub(super) fn new(input: InputFormat, out_rate: u32, out_channels: u8) -> Result<Self, String> {
        let in_fmt = sample_format(input.format).ok_or_else(|| {
            format!(
                "the decoder produced an unknown sample format ({})",
                input.format
            )
        })?;
        if input.rate <= 0 {
            return Err("the decoder produced audio without a sample rate".into());
        }
        let mut in_layout = input.layout;
        let mut out_layout = ChannelLayout::default_for(c_int::from(out_channels));
        let mut swr: *mut ff::SwrContext = ptr::null_mut();
        // SAFETY: both layouts are valid and outlive the call (swr copies them); `swr` is a
        // NULL out-pointer that receives a newly allocated context on success.
        let ret = unsafe {
            ff::swr_alloc_set_opts2(
                &mut swr,
                out_layout.as_mut_ptr(),
                ff::AVSampleFormat::AV_SAMPLE_FMT_FLT,
                out_rate as c_int,
                in_layout.as_mut_ptr(),
                in_fmt,
                input.rate,
                0,
                ptr::null_mut(),
            )
        };
        let swr = match NonNull::new(swr) {
            Some(swr) if ret >= 0 => swr,
            other => {
                if let Some(swr) = other {
                    let mut p = swr.as_ptr();
                    // SAFETY: allocated above and not shared.
                    unsafe { ff::swr_free(&mut p) };
                }
                return Err(format!("could not set up the resampler: {}", av_err(ret)));
            }
        };
        let resampler = Resampler {
            swr,
            in_format: input.format,
            in_rate: input.rate,
            in_layout,
            out_channels: usize::from(out_channels),
        };
        // SAFETY: `swr` was configured above; init validates the parameters.
        let ret = unsafe { ff::swr_init(resampler.swr.as_ptr()) };
        if ret < 0 {
            return Err(format!("could not set up the resampler: {}", av_err(ret)));
        }
        Ok(resampler)
    }

    pub(super) fn accepts(&self, input: &InputFormat) -> bool {
        self.in_format == input.format
            && self.in_rate == input.rate
            && self.in_layout.same_as(&input.layout)
    }

    /// Converts `frame` (or flushes the buffered tail when `None`), appending interleaved float
    /// samples to `out`. Returns the number of frames appended.
    pub(super) fn convert(
        &mut self,
        frame: Option<&ff::AVFrame>,
        out: &mut Vec<f32>,
    ) -> Result<usize, String> {
        let in_samples = frame.map_or(0, |f| f.nb_samples.max(0));
        let mut total = 0;
        loop {
            // SAFETY: the context is initialized; this only computes an upper bound.
            let capacity = unsafe { ff::swr_get_out_samples(self.swr.as_ptr(), in_samples) };
            if capacity < 0 {
                return Err(format!("resampling failed: {}", av_err(capacity)));
            }
            // Leave room even when the bound is 0 so a flush can report what it still holds.
            let capacity = capacity.max(256) as usize;
            out.reserve(capacity * self.out_channels);
            let mut out_ptr = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
            let (in_ptr, count) = match frame {
                Some(f) => (f.extended_data as *mut *const u8, in_samples),
                None => (ptr::null_mut(), 0),
            };
            // SAFETY: `out_ptr` points at spare capacity for `capacity` interleaved f32 frames
            // (reserved above); for packed output only the first plane pointer is used. The
            // input planes belong to a live decoded frame with `count` samples in the format
            // this context was built for (checked by `accepts` before calling).
            let n = unsafe {
                ff::swr_convert(
                    self.swr.as_ptr(),
                    &mut out_ptr,
                    capacity as c_int,
                    in_ptr,
                    count,
                )
            };
            if n < 0 {
                return Err(format!("resampling failed: {}", av_err(n)));
            }
            let n = n as usize;
            // SAFETY: swr_convert initialized `n * channels` samples of the spare capacity.
            unsafe { out.set_len(out.len() + n * self.out_channels) };
            total += n;
            // Feeding a frame is one call (swr buffers what does not fit); a flush is repeated
            // until the resampler is empty.
            if frame.is_some() || n == 0 {
                return Ok(total);
            }
        }
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        let mut p = self.swr.as_ptr();
        // SAFETY: we own the context.
        unsafe { ff::swr_free(&mut p) };
    }
}
