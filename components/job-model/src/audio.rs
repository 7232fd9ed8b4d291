//! Which PCM layout to feed an encoder: the source's own when the codec accepts it, so nothing
//! is resampled needlessly.

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
}
