//! Bodies of the jobs API: an accepted upload, a job as the API shows it, signed links.

use job_model::Job;
use serde::{Deserialize, Serialize};

/// Where the API serves a job's record.
pub fn status_url(id: &str) -> String {
    format!("/jobs/{id}")
}

/// Where the API serves a job's audio.
pub fn download_url(id: &str) -> String {
    format!("/jobs/{id}/audio")
}

/// An upload (or import) accepted: the job that converts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"job_id": "3f0c9a4e2b7d4c1f8e6a5b4c3d2e1f00", "status_url": "/jobs/3f0c9a4e2b7d4c1f8e6a5b4c3d2e1f00", "download_url": "/jobs/3f0c9a4e2b7d4c1f8e6a5b4c3d2e1f00/audio"})))]
pub struct Accepted {
    pub job_id: String,
    pub status_url: String,
    pub download_url: String,
}

impl Accepted {
    pub fn new(id: &str) -> Self {
        Accepted { job_id: id.to_string(), status_url: status_url(id), download_url: download_url(id) }
    }
}

/// A job as the API shows it: the stored record with the URLs of its status and audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub status_url: String,
    pub download_url: String,
    /// `POST /jobs/{id}/retry` can go differently: the job failed, its source is still kept,
    /// and the failure was not the source file's own.
    pub retryable: bool,
}

impl JobView {
    pub fn new(job: Job) -> Self {
        JobView { status_url: status_url(&job.id), download_url: download_url(&job.id), retryable: job.retryable(), job }
    }
}

/// A signed download link (`POST /jobs/{id}/link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedLink {
    /// Path and query of the audio, signed: it needs no token until `expires_at`.
    pub url: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `POST /upload` with a JSON body: import the file from a link instead of uploading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"url": "https://example.com/talk.mp4"})))]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// As `?url=`: the `http(s)` link to import.
    #[cfg_attr(feature = "openapi", schema(format = "uri", max_length = 2048))]
    pub url: String,
}
