//! What the worker learned about a job's source and did to its audio, recorded on the job so
//! that `GET /jobs/{id}` shows it: the file's audio streams (to choose `?track=` on a retry)
//! and, with `?normalize=`, the measured loudness and the gain applied.

use serde::{Deserialize, Serialize};

/// One audio stream of the source.
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

/// The outcome of loudness normalization (EBU R128 / ITU-R BS.1770).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessReport {
    pub target_lufs: f64,
    pub true_peak_ceiling_dbtp: f64,
    /// Integrated loudness of the audio before the gain (after trim, rate and channels).
    pub measured_lufs: f64,
    pub measured_true_peak_dbtp: f64,
    /// The gain applied, dB (less than `target - measured` when the ceiling held it back).
    pub gain_db: f64,
    /// Integrated loudness of the output (`measured + gain`).
    pub output_lufs: f64,
    /// True peak of the output (`measured true peak + gain`).
    pub output_true_peak_dbtp: f64,
}
