//! Which PCM layout to feed an encoder (the source's own when the codec accepts it, so nothing
//! is resampled needlessly), and the least an output can take, known before it is encoded.

/// Picks the output sample rate and channel count for a source of `rate` Hz and `channels`
/// channels, given a codec's accepted rates (empty: any) and maximum channel count.
pub fn choose_output_format(rate: u32, channels: u8, accepted_rates: &[u32], max_channels: u8) -> (u32, u8) {
    let rate = if accepted_rates.is_empty() || accepted_rates.contains(&rate) {
        rate
    } else {
        // The smallest accepted rate at or above the source's keeps all its bandwidth;
        // failing that, the highest accepted rate.
        accepted_rates
            .iter()
            .copied()
            .filter(|&r| r >= rate)
            .min()
            .or_else(|| accepted_rates.iter().copied().max())
            .unwrap_or(rate)
    };
    (rate, channels.clamp(1, max_channels.max(1)))
}

/// What the output of a conversion is, for [`least_output_bytes`].
#[derive(Debug, Clone, Copy)]
pub struct OutputShape<'a> {
    /// The codec's MIME type: `audio/wav` and `audio/aiff` are uncompressed PCM.
    pub content_type: &'a str,
    pub seconds: f64,
    pub sample_rate: u32,
    pub channels: u8,
    /// Bits per stored sample (16 or 24).
    pub bits: u8,
    /// A constant bitrate asked for (kbps); `None` with a variable bitrate or none.
    pub constant_kbps: Option<u32>,
}

/// The least the output can take, when that is known before encoding: uncompressed PCM is
/// exactly its samples, a constant bitrate is exactly its bits (headers only add to both).
/// `None` where the audio decides (variable bitrate, lossless compression). A job whose least
/// output is already over its limits fails before it writes a byte.
pub fn least_output_bytes(shape: OutputShape) -> Option<u64> {
    if !shape.seconds.is_finite() || shape.seconds <= 0.0 {
        return None;
    }
    let uncompressed = matches!(shape.content_type, "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/aiff" | "audio/x-aiff");
    let bytes_per_second = if uncompressed {
        f64::from(shape.sample_rate) * f64::from(shape.channels) * f64::from(shape.bits.div_ceil(8))
    } else {
        f64::from(shape.constant_kbps?) * 125.0
    };
    // Whole frames only: the encoder may drop a partial one at the end.
    Some((shape.seconds.floor() * bytes_per_second) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

    #[test]
    fn keeps_accepted_layouts_and_adapts_others() {
        assert_eq!(choose_output_format(44100, 2, &MP3_RATES, 2), (44100, 2));
        assert_eq!(choose_output_format(22050, 1, &MP3_RATES, 2), (22050, 1));
        assert_eq!(choose_output_format(48000, 6, &MP3_RATES, 2), (48000, 2));
        assert_eq!(choose_output_format(96000, 2, &MP3_RATES, 2), (48000, 2));
        assert_eq!(choose_output_format(7000, 2, &MP3_RATES, 2), (8000, 2));
        assert_eq!(choose_output_format(96000, 8, &[], 8), (96000, 8));
        assert_eq!(choose_output_format(44100, 0, &[], 2), (44100, 1));
    }

    #[test]
    fn the_least_output_is_known_for_pcm_and_constant_bitrates_only() {
        let pcm = OutputShape { content_type: "audio/wav", seconds: 6.0 * 3600.0, sample_rate: 192_000, channels: 2, bits: 16, constant_kbps: None };
        // Six hours of silence at 192 kHz stereo: 16.6 GB, whatever the source's size.
        assert_eq!(least_output_bytes(pcm), Some(16_588_800_000));
        assert_eq!(least_output_bytes(OutputShape { bits: 24, seconds: 10.5, sample_rate: 48_000, ..pcm }), Some(10 * 48_000 * 2 * 3));
        assert_eq!(least_output_bytes(OutputShape { content_type: "audio/aiff", ..pcm }), least_output_bytes(pcm));
        let mp3 = OutputShape { content_type: "audio/mpeg", seconds: 60.0, sample_rate: 44_100, channels: 2, bits: 16, constant_kbps: Some(192) };
        assert_eq!(least_output_bytes(mp3), Some(60 * 24_000));
        assert_eq!(least_output_bytes(OutputShape { constant_kbps: None, ..mp3 }), None, "VBR");
        assert_eq!(least_output_bytes(OutputShape { content_type: "audio/flac", constant_kbps: None, ..mp3 }), None);
        assert_eq!(least_output_bytes(OutputShape { seconds: f64::NAN, ..pcm }), None);
        assert_eq!(least_output_bytes(OutputShape { seconds: 0.0, ..pcm }), None);
    }
}
