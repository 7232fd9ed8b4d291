//! A user's "send a test event" to their default webhook: the edge asks for it
//! (`POST /users/me/callback/test`) by pushing a [`CallbackTestRequest`] on [`REQUESTS`], a
//! worker takes it off, delivers a signed `ping` event as it delivers a job's, and writes the
//! outcome to the owner's [`status_key`], which `GET /users/me` shows as `callback_test`. Both
//! live in the job queue's Redis, the one store the edge and the worker share under Spin too.

use serde::{Deserialize, Serialize};

/// Test events waiting for a worker (a list; the edge pushes on the left, a worker pops on the
/// right, each taken by one worker).
pub const REQUESTS: &str = "mp3edge:callback-tests";
/// Most test events waiting at once: the list is trimmed to this many newest.
pub const MAX_WAITING: u64 = 1000;
/// How long an outcome is kept.
pub const STATUS_SECS: u64 = 7 * 24 * 3600;
/// A request no worker has answered within this long may be asked again.
pub const PENDING_SECS: u64 = 30;
/// A request waiting longer than this when a worker takes it is dropped (no one waits for it).
pub const STALE_SECS: u64 = 120;

/// The owner's last test event and its outcome.
pub fn status_key(owner: &str) -> String {
    format!("mp3edge:callback-test:{owner}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTestRequest {
    pub owner: String,
    pub target: String,
    /// Unix seconds.
    pub requested_at: u64,
}

/// What `GET /users/me` shows as `callback_test`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTestStatus {
    pub requested_at: u64,
    pub target: String,
    /// When the worker tried (absent while the request waits for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// HTTP status, `refused`, or why it was not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl CallbackTestStatus {
    pub fn pending(request: &CallbackTestRequest) -> Self {
        CallbackTestStatus { requested_at: request.requested_at, target: request.target.clone(), at: None, ok: None, detail: None }
    }

    /// Whether it still waits for a worker and may not be asked again yet.
    pub fn waiting(&self, now: u64) -> bool {
        self.at.is_none() && self.requested_at + PENDING_SECS > now
    }
}
