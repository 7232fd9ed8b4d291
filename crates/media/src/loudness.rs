//! Loudness normalization's measuring pass and gain rule (EBU R128 / ITU-R BS.1770).
//!
//! The measuring pass decodes the audio exactly as it will be encoded (same track, trim, rate
//! and channels) and meters it with the `ebur128` crate: integrated loudness (gated, K-weighted)
//! and true peak (4× oversampled). It is done natively here rather than with FFmpeg's `ebur128`
//! filter so the host needs no libavfilter graph, and so the tests' meter (FFmpeg's filter)
//! stays independent of the one that chose the gain. The gain pass is then a second decode
//! with one linear gain, held down so the true peak stays under the ceiling: no limiter colours
//! the sound, at the price of landing under the target for very peaky audio (the report says so).

use std::sync::Arc;

use ebur128::{EbuR128, Mode};

use super::{ChunkSource, Decoder, OutputRequest, SourceLayout};

/// Frames decoded per round of the measuring pass.
const BLOCK_FRAMES: usize = 16384;

/// What the measuring pass found and the gain chosen.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    /// Integrated loudness, LUFS (`-inf` for silence).
    pub integrated_lufs: f64,
    /// Highest true peak over all channels, dBTP.
    pub true_peak_dbtp: f64,
    /// The gain to apply, dB.
    pub gain_db: f64,
}

/// The gain that brings `integrated` to `target` without the true peak passing `ceiling`
/// (silence gets none).
pub fn gain_for(integrated: f64, true_peak: f64, target: f64, ceiling: f64) -> f64 {
    if !integrated.is_finite() {
        return 0.0;
    }
    let gain = target - integrated;
    if true_peak.is_finite() && true_peak + gain > ceiling { ceiling - true_peak } else { gain }
}

/// Decodes the requested audio once and measures it; the gain aims at `target` LUFS under a
/// `ceiling` dBTP true peak.
pub fn measure(
    source: Arc<dyn ChunkSource>,
    layout: SourceLayout,
    request: OutputRequest,
    target: f64,
    ceiling: f64,
) -> Result<Measured, String> {
    let mut decoder = Decoder::open(source, layout, OutputRequest { gain_db: None, ..request })?;
    let (rate, channels) = decoder.output_format();
    let mut meter = EbuR128::new(u32::from(channels), rate, Mode::I | Mode::TRUE_PEAK)
        .map_err(|e| format!("could not measure loudness: {e}"))?;
    loop {
        let block = decoder.read_f32(BLOCK_FRAMES)?;
        if block.is_empty() {
            break;
        }
        meter.add_frames_f32(&block).map_err(|e| format!("could not measure loudness: {e}"))?;
    }
    let integrated = meter.loudness_global().map_err(|e| format!("could not measure loudness: {e}"))?;
    let mut peak = 0.0f64;
    for channel in 0..u32::from(channels) {
        peak = peak.max(meter.true_peak(channel).map_err(|e| format!("could not measure loudness: {e}"))?);
    }
    let true_peak = 20.0 * peak.log10();
    Ok(Measured { integrated_lufs: integrated, true_peak_dbtp: true_peak, gain_db: gain_for(integrated, true_peak, target, ceiling) })
}

#[cfg(test)]
mod tests {
    use super::gain_for;

    #[test]
    fn gain_reaches_the_target_under_the_ceiling() {
        assert_eq!(gain_for(-30.0, -20.0, -16.0, -1.0), 14.0);
        assert_eq!(gain_for(-30.0, -12.0, -16.0, -1.0), 11.0);
        assert_eq!(gain_for(-20.0, -3.0, -16.0, -1.0), 2.0);
        assert_eq!(gain_for(-10.0, 0.5, -23.0, -1.0), -13.0);
        assert_eq!(gain_for(f64::NEG_INFINITY, f64::NEG_INFINITY, -16.0, -1.0), 0.0);
    }
}
