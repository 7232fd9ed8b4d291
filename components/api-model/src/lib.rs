//! The bodies of the HTTP API, as types.
//!
//! The components serialize these (rather than ad-hoc JSON) and the API description
//! (`api-description`, served as `/openapi.json`) derives its schemas from the same types with
//! the `openapi` feature, so a field added to an answer is a field added to its description. The
//! job record itself, and the types it is made of, come from `job_model`.

pub mod auth;
pub mod jobs;

use serde::{Deserialize, Serialize};

/// Every error answer: a short machine-readable `error` and a sentence for people. Some errors
/// add fields (`status` for a job that is not ready).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"error": "unauthorized", "detail": "missing bearer token"})))]
pub struct ErrorBody {
    /// What went wrong, in a few words (stable; for programs).
    pub error: String,
    /// Why, for a person to read.
    pub detail: String,
    /// The job's status, when an operation needs another one (409 `not ready`, `cannot retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<job_model::JobStatus>,
}
