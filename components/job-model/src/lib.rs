//! The contract between the edge components and the worker, with no I/O.
//!
//! Everything two processes must agree on lives here, once: the job record stored in the
//! key-value store, the message put on the durable queue, the names of the Redis stream and
//! channels, and the key layout of the chunked source and output files. The edge (wasm) and the
//! host worker (native) both depend on this crate, so a change of layout is a compile-time change
//! for both sides.

pub mod callback_test;
pub mod audio;
pub mod layout;
pub mod lifecycle;
pub mod media;
pub mod naming;
pub mod net;
pub mod options;
pub mod range;

use serde::{Deserialize, Serialize};

/// Lifecycle of a conversion job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// A resumable upload (`/uploads`, tus) still receiving its bytes: `received_bytes` of
    /// `source.size` are stored. It is queued by its last byte.
    Uploading,
    Queued,
    Converting,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Uploading => "uploading",
            JobStatus::Queued => "queued",
            JobStatus::Converting => "converting",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    /// A job in a final state never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// How the uploaded source is stored: `chunks` values of at most `chunk_size` bytes each.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub size: u64,
    pub chunks: u32,
    pub chunk_size: u32,
    pub content_type: String,
}

/// The converted audio, once the worker has stored it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    #[serde(flatten)]
    pub file: StoredFile,
    /// Strong validator for HTTP caching and `Range` requests.
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// File extension of the codec that made it (defaults to the format name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Conversion options chosen at upload time (parsed by [`options`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionOptions {
    /// Output format name, e.g. `mp3` or `wav` (mapped to a codec plugin by the worker).
    pub format: String,
    /// Target bitrate in kbps, when the format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    /// Variable-bitrate quality, 0 (best) to 9 (smallest), instead of a constant bitrate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbr_quality: Option<u8>,
    /// Compression level, when the format has levels (FLAC 0–8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Trim: the output starts this many seconds into the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_secs: Option<f64>,
    /// Trim: the output ends this many seconds into the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_secs: Option<f64>,
    /// Output sample rate (default: the source's, when the plugin takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Output channels, 1 or 2 (default: the source's, up to what the plugin takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// Which audio stream, by position among the file's audio streams (default: the file's
    /// default stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<options::Normalize>,
    /// Tag overrides; the source's tags fill in the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    /// Embed a frame of the video as the cover (`false`: `?cover=none`).
    #[serde(default = "yes")]
    pub cover: bool,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ConversionOptions {
    /// `format` with every other option at its default.
    pub fn new(format: impl Into<String>) -> Self {
        ConversionOptions {
            format: format.into(),
            bitrate_kbps: None,
            vbr_quality: None,
            level: None,
            start_secs: None,
            end_secs: None,
            sample_rate: None,
            channels: None,
            track: None,
            normalize: None,
            title: None,
            artist: None,
            album: None,
            cover: true,
        }
    }
}

/// The storage rules a job was accepted under, recorded on it at upload so that the worker
/// enforces the edge's settings without reading them, and a later change of settings does not
/// rewrite the rules of jobs already stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPolicy {
    /// A finished job is deleted this many seconds after it ended.
    pub retention_secs: u64,
    /// The owner's quota in bytes (0 = none): the output may not take them past it.
    pub quota_bytes: u64,
    /// Largest output in bytes (0 = no limit).
    pub max_output_bytes: u64,
    /// Longest audio converted, in seconds (0 = no limit).
    pub max_duration_secs: u64,
    /// Largest source in bytes (the edge's upload limit; 0 = no limit): what a worker importing
    /// the source by URL holds it to.
    #[serde(default)]
    pub max_source_bytes: u64,
}

impl Default for JobPolicy {
    fn default() -> Self {
        JobPolicy { retention_secs: 86400, quota_bytes: 0, max_output_bytes: 0, max_duration_secs: 0, max_source_bytes: 0 }
    }
}

/// The job record, stored as JSON under [`layout::job_key`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub owner: String,
    pub source_name: String,
    pub source: StoredFile,
    pub options: ConversionOptions,
    pub status: JobStatus,
    /// Conversion progress in percent (0–100).
    #[serde(default)]
    pub progress: u8,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputFile>,
    /// Bytes of the source stored so far, while the job is `uploading`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_bytes: Option<u64>,
    /// Where the source is imported from (`POST /upload?url=`): a worker fetches it while the
    /// job is `uploading`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// How many times a worker has started this run of the job.
    #[serde(default)]
    pub attempts: u32,
    /// How many of those attempts ended without an outcome because their worker stopped (a
    /// restart, a deployment, a crash): they do not count against `max_attempts`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interrupted: u32,
    /// Which run of the job this is: 0 for the upload's, one more with every accepted retry
    /// (`POST /jobs/{id}/retry`, claimed in Redis by [`lifecycle::CLAIM_RETRY_SCRIPT`]). An
    /// attempt acts on the job (stores, frees, records, notifies) only while the record is
    /// still of its run and attempt, so a stale one can never undo a newer one's work.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub run: u32,
    /// Webhook to call when the job ends (`?callback=` at upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Every notification attempt made for this job, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationAttempt>,
    #[serde(default)]
    pub policy: JobPolicy,
    /// Unix seconds at which the job reached `done` or `failed` for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Unix seconds at which the finished job and everything it stored are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The source chunks were deleted (once the output was stored): the job cannot be retried.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_freed: bool,
    /// The job failed because of the source file itself (not a media file, no audio stream):
    /// no retry, with any options, can go differently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_unusable: bool,
    /// The source's audio streams, as the worker found them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<media::SourceMedia>,
    /// Measured loudness and gain, for a job with `normalize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<media::LoudnessReport>,
}

/// One try at telling the owner that a job ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationAttempt {
    /// `email` or `webhook`.
    pub channel: String,
    /// The address or URL.
    pub target: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// Unix seconds.
    pub at: u64,
    pub ok: bool,
    /// HTTP status, SMTP reply or error.
    pub detail: String,
}

/// The message the gateway puts on the durable queue and publishes on the job channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: String,
}

/// What the worker hands the converter for one attempt at a job (the Redis-trigger payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub job_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// After this attempt fails, the job is failed for good.
    pub max_attempts: u32,
}

/// Attempts of one run that may end because their worker stopped before the job is given up:
/// a job that takes its worker down every time (none should, with FFmpeg confined and the
/// plugins sandboxed) must not loop for ever.
pub const MAX_INTERRUPTIONS: u32 = 20;

impl Job {
    /// A new job as an upload records it at `now`: queued, under the default policy, nothing
    /// attempted, stored or notified yet. Uploads set what differs with struct update syntax
    /// (an upload still arriving is `Uploading` with `received_bytes`).
    pub fn new(id: String, owner: String, source_name: String, source: StoredFile, options: ConversionOptions, now: u64) -> Job {
        Job {
            id,
            owner,
            source_name,
            source,
            options,
            status: JobStatus::Queued,
            progress: 0,
            created_at: now,
            updated_at: now,
            error: None,
            output: None,
            received_bytes: None,
            source_url: None,
            attempts: 0,
            interrupted: 0,
            run: 0,
            callback_url: None,
            notifications: Vec::new(),
            policy: JobPolicy::default(),
            finished_at: None,
            expires_at: None,
            source_freed: false,
            source_unusable: false,
            media: None,
            loudness: None,
        }
    }

    /// Whether `POST /jobs/{id}/retry` can go differently: the job failed, its source is still
    /// kept, and the failure was not the source file's own.
    pub fn retryable(&self) -> bool {
        self.status == JobStatus::Failed && !self.source_freed && !self.source_unusable
    }

    /// Attempts that ended with an outcome (done, or failed): the ones `max_attempts` counts.
    pub fn counted_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.interrupted)
    }
}

impl Delivery {
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// How a retryable failure of this attempt reads on the job record. On the last attempt it
    /// is the job's final reason, written once by whoever fails the job.
    pub fn failure_reason(&self, reason: &str) -> String {
        match self.max_attempts {
            0 | 1 => reason.to_string(),
            n if self.is_last_attempt() => format!("gave up after {n} attempts: {reason}"),
            n => format!("attempt {} of {n}: {reason}", self.attempt),
        }
    }
}

/// Published on [`layout::DONE_CHANNEL`] when a job reaches a final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub job_id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An output format as the worker's plugins provide it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatInfo {
    /// What users ask for (`?format=`).
    pub format: String,
    /// The plugin's own name.
    pub codec: String,
    pub extension: String,
    pub content_type: String,
    /// Constant bitrates (kbps) `?bitrate=` may ask for (`None`: not known, e.g. before a worker
    /// has published its plugins; empty: the format takes no bitrate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrates: Option<Vec<u32>>,
    /// For a format whose bitrates depend on the output's sample rate (MP3), the ones it takes
    /// at each rate, by rate in Hz; absent: every one of `bitrates` at every rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::BTreeMap<String, Vec<u32>>>, example = json!({"22050": [32, 64, 128, 144, 160], "44100": [32, 64, 128, 160, 192, 320]})))]
    pub bitrates_by_rate: Option<std::collections::BTreeMap<u32, Vec<u32>>>,
    /// Whether `?vbr=` applies (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbr: Option<bool>,
    /// Sample rates the plugin takes (empty: any; `None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rates: Option<Vec<u32>>,
    /// Most channels the plugin takes (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<u8>,
    /// Compression levels `?level=` may ask for (empty: none; `None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<u8>>,
    /// Whether the format embeds a cover picture (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<bool>,
}

impl FormatInfo {
    /// The bitrates the format takes at `rate`, when they depend on it.
    pub fn bitrates_at(&self, rate: u32) -> Option<&[u32]> {
        self.bitrates_by_rate.as_ref()?.get(&rate).map(Vec::as_slice)
    }

    /// Checks a conversion's options against what the format's plugin declares. A bitrate the
    /// output's rate cannot carry is refused when the rate is asked for; without `rate`, the
    /// source's rate decides, and the worker fails a job whose source rate cannot carry it.
    pub fn check_options(&self, options: &ConversionOptions) -> Result<(), String> {
        if let (Some(kbps), Some(bitrates)) = (options.bitrate_kbps, &self.bitrates) {
            if bitrates.is_empty() {
                return Err(format!("{} takes no bitrate", self.format));
            }
            if !bitrates.contains(&kbps) {
                let list: Vec<String> = bitrates.iter().map(u32::to_string).collect();
                return Err(format!("{} takes a bitrate of {} kbps, not {kbps}", self.format, list.join(", ")));
            }
        }
        if let (Some(kbps), Some(rate)) = (options.bitrate_kbps, options.sample_rate)
            && let Some(carried) = self.bitrates_at(rate)
            && !carried.contains(&kbps)
        {
            let list: Vec<String> = carried.iter().map(u32::to_string).collect();
            return Err(format!("{} at {rate} Hz takes a bitrate of {} kbps, not {kbps}", self.format, list.join(", ")));
        }
        if options.vbr_quality.is_some() && self.vbr == Some(false) {
            return Err(format!("{} has no variable bitrate (vbr)", self.format));
        }
        if let (Some(level), Some(levels)) = (options.level, &self.levels) {
            if levels.is_empty() {
                return Err(format!("{} has no compression levels", self.format));
            }
            if !levels.contains(&level) {
                let list: Vec<String> = levels.iter().map(u8::to_string).collect();
                return Err(format!("{} takes a level of {}, not {level}", self.format, list.join(", ")));
            }
        }
        if let (Some(rate), Some(rates)) = (options.sample_rate, &self.sample_rates)
            && !rates.is_empty()
            && !rates.contains(&rate)
        {
            let list: Vec<String> = rates.iter().map(u32::to_string).collect();
            return Err(format!("{} takes a rate of {} Hz, not {rate}", self.format, list.join(", ")));
        }
        if let (Some(channels), Some(max)) = (options.channels, self.max_channels)
            && channels > max
        {
            return Err(format!("{} takes at most {max} channels, not {channels}", self.format));
        }
        Ok(())
    }
}

/// `to_json` / `from_json` for the records and messages that cross process boundaries.
macro_rules! json_codec {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn to_json(&self) -> Vec<u8> {
                serde_json::to_vec(self).expect("always serializes")
            }

            pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
                serde_json::from_slice(bytes)
            }
        }
    )*};
}
json_codec!(Job, JobMessage, Delivery, Completion);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Job {
        Job::new(
            "0123456789abcdef0123456789abcdef".into(),
            "a@example.com".into(),
            "clip.mp4".into(),
            StoredFile { size: 10, chunks: 1, chunk_size: 1 << 20, content_type: "video/mp4".into() },
            ConversionOptions { bitrate_kbps: Some(192), ..ConversionOptions::new("mp3") },
            1,
        )
    }

    #[test]
    fn job_round_trips_through_json_with_lowercase_status() {
        let job = sample();
        let json = job.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"status\":\"queued\""));
        assert_eq!(Job::from_json(&json).unwrap(), job);
    }

    #[test]
    fn records_from_before_the_audio_options_still_read() {
        let json = br#"{"format":"mp3","bitrate_kbps":128}"#;
        let options: ConversionOptions = serde_json::from_slice(json).unwrap();
        assert_eq!(options, ConversionOptions { bitrate_kbps: Some(128), ..ConversionOptions::new("mp3") });
        assert!(options.cover, "a cover is embedded unless asked otherwise");
    }

    #[test]
    fn records_without_the_lifecycle_fields_still_read() {
        let mut value: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        for field in ["policy", "finished_at", "expires_at", "source_freed", "run"] {
            value.as_object_mut().unwrap().remove(field);
        }
        let job = Job::from_json(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(job.policy, JobPolicy::default());
        assert!(!job.source_freed && job.expires_at.is_none());
        assert_eq!(job.run, 0, "a record from before retries were counted is the upload's run");
    }

    #[test]
    fn options_are_checked_against_the_plugin() {
        let mp3 = FormatInfo {
            format: "mp3".into(),
            codec: "mp3-lame".into(),
            extension: "mp3".into(),
            content_type: "audio/mpeg".into(),
            bitrates: Some(vec![32, 128, 144, 320]),
            bitrates_by_rate: Some([(22050, vec![32, 128, 144]), (44100, vec![32, 128, 320])].into_iter().collect()),
            vbr: Some(true),
            sample_rates: Some(vec![22050, 44100, 48000]),
            max_channels: Some(2),
            levels: Some(vec![]),
            cover: Some(true),
        };
        let options = |bitrate_kbps, vbr_quality| ConversionOptions { bitrate_kbps, vbr_quality, ..ConversionOptions::new("mp3") };
        assert!(mp3.check_options(&ConversionOptions { sample_rate: Some(44100), channels: Some(2), ..options(None, None) }).is_ok());
        assert!(mp3.check_options(&ConversionOptions { sample_rate: Some(96000), ..options(None, None) }).unwrap_err().contains("22050, 44100, 48000"));
        assert!(mp3.check_options(&ConversionOptions { channels: Some(3), ..options(None, None) }).unwrap_err().contains("at most 2"));
        assert!(mp3.check_options(&ConversionOptions { level: Some(5), ..options(None, None) }).unwrap_err().contains("no compression levels"));
        let flac = FormatInfo { levels: Some(vec![0, 5, 8]), ..mp3.clone() };
        assert!(flac.check_options(&ConversionOptions { level: Some(8), ..options(None, None) }).is_ok());
        assert!(flac.check_options(&ConversionOptions { level: Some(9), ..options(None, None) }).unwrap_err().contains("0, 5, 8"));
        assert!(mp3.check_options(&options(Some(128), None)).is_ok());
        assert!(mp3.check_options(&options(None, Some(2))).is_ok());
        assert!(mp3.check_options(&options(Some(8), None)).unwrap_err().contains("32, 128, 144, 320"));
        // A bitrate the asked-for rate cannot carry; without a rate the source's decides.
        let at = |kbps, rate| ConversionOptions { sample_rate: Some(rate), ..options(Some(kbps), None) };
        assert_eq!(mp3.check_options(&at(144, 44100)).unwrap_err(), "mp3 at 44100 Hz takes a bitrate of 32, 128, 320 kbps, not 144");
        assert!(mp3.check_options(&at(144, 22050)).is_ok());
        assert!(mp3.check_options(&at(320, 22050)).unwrap_err().contains("at 22050 Hz"));
        assert!(mp3.check_options(&options(Some(144), None)).is_ok());
        assert!(mp3.check_options(&at(320, 48000)).is_ok(), "a rate without rules takes every bitrate");
        let wav = FormatInfo { format: "wav".into(), bitrates: Some(vec![]), vbr: Some(false), ..mp3.clone() };
        assert!(wav.check_options(&options(Some(128), None)).unwrap_err().contains("no bitrate"));
        assert!(wav.check_options(&options(None, Some(2))).is_err());
        let unknown = FormatInfo { bitrates: None, vbr: None, sample_rates: None, max_channels: None, levels: None, ..wav };
        assert!(unknown.check_options(&options(Some(8), Some(1))).is_ok());
    }

    #[test]
    fn final_states() {
        assert!(JobStatus::Done.is_final());
        assert!(JobStatus::Failed.is_final());
        assert!(!JobStatus::Queued.is_final());
        assert!(!JobStatus::Converting.is_final());
    }

    #[test]
    fn deliveries_know_their_last_attempt() {
        let d = Delivery { job_id: "x".into(), attempt: 3, max_attempts: 3 };
        assert!(d.is_last_attempt());
        assert_eq!(Delivery::from_json(&d.to_json()).unwrap(), d);
        assert!(!Delivery { attempt: 1, ..d.clone() }.is_last_attempt());
    }

    #[test]
    fn a_failure_reads_as_a_retry_until_the_last_attempt() {
        let d = Delivery { job_id: "x".into(), attempt: 2, max_attempts: 3 };
        assert_eq!(d.failure_reason("gone"), "attempt 2 of 3: gone");
        assert_eq!(Delivery { attempt: 3, ..d.clone() }.failure_reason("gone"), "gave up after 3 attempts: gone");
        assert_eq!(Delivery { attempt: 1, max_attempts: 1, ..d }.failure_reason("gone"), "gone");
    }

    #[test]
    fn message_rejects_garbage() {
        assert!(JobMessage::from_json(b"not json").is_err());
        assert_eq!(JobMessage::from_json(br#"{"job_id":"x"}"#).unwrap().job_id, "x");
    }
}
