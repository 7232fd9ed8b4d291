//! What the worker learned about a job's source and did to its audio, recorded on the job so
//! that `GET /jobs/{id}` shows it: the file's audio streams (to choose `?track=` on a retry)
//! and, with `?normalize=`, the measured loudness and the gain applied.

use serde::{Deserialize, Serialize};

/// One audio stream of the source.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    /// Position among the file's audio streams, from 0: what `?track=` takes.
    pub index: u32,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The stream converted when no `?track=` is given.
    pub default: bool,
}

/// The source as the worker found it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMedia {
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    pub audio_streams: Vec<AudioStream>,
    /// Whether the file has a video stream (a cover frame can come from it).
    #[serde(default)]
    pub video: bool,
}

/// The outcome of loudness normalization (EBU R128 / ITU-R BS.1770). Loudness and peaks are
/// absent for silence (below the meter's absolute gate; no gain is applied then).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessReport {
    pub target_lufs: f64,
    pub true_peak_ceiling_dbtp: f64,
    /// Integrated loudness of the audio before the gain (after trim, rate and channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_lufs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_true_peak_dbtp: Option<f64>,
    /// The gain applied, dB (less than `target - measured` when the ceiling held it back).
    pub gain_db: f64,
    /// Integrated loudness of the output (`measured + gain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_lufs: Option<f64>,
    /// True peak of the output (`measured true peak + gain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_true_peak_dbtp: Option<f64>,
}

impl LoudnessReport {
    /// The report for a measurement (`-inf` for silence) and the gain applied.
    pub fn new(target_lufs: f64, true_peak_ceiling_dbtp: f64, measured_lufs: f64, measured_true_peak_dbtp: f64, gain_db: f64) -> Self {
        let finite = |v: f64| v.is_finite().then_some(v);
        LoudnessReport {
            target_lufs,
            true_peak_ceiling_dbtp,
            measured_lufs: finite(measured_lufs),
            measured_true_peak_dbtp: finite(measured_true_peak_dbtp),
            gain_db: finite(gain_db).unwrap_or(0.0),
            output_lufs: finite(measured_lufs + gain_db),
            output_true_peak_dbtp: finite(measured_true_peak_dbtp + gain_db),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_recorded_without_infinities() {
        let report = LoudnessReport::new(-16.0, -1.0, f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0);
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert_eq!(serde_json::from_str::<LoudnessReport>(&json).unwrap(), report);
        let loud = LoudnessReport::new(-16.0, -1.0, -20.0, -6.0, 4.0);
        assert_eq!((loud.output_lufs, loud.output_true_peak_dbtp), (Some(-16.0), Some(-2.0)));
    }
}
