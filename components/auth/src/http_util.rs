//! HTTP plumbing shared by the routes: header access, bounded body reads, JSON error bodies and
//! sending a reply through the WASI response outparam.

use futures::{Stream, StreamExt, future};
use serde::Serialize;
use spin_executor::{CancelOnDropToken, push_waker_and_get_token};
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

/// The request body, taken from the request up front so that what a route leaves unread can be
/// drained after the answer (see [`drain`]).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, wasi::io::error::Error>> + Send>>;

/// Most request-body bytes read and discarded after an early answer, and for how long.
const DRAIN_LIMIT: u64 = 1 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards what is left of the request body (bounded by [`DRAIN_LIMIT`] and
/// [`DRAIN_TIME`]) once the answer is sent: a connection closed with unread data is reset, which
/// can destroy an early answer (413, 401...) before the client has read it.
pub async fn drain(body: &mut BodyStream) {
    let read = async {
        let mut left = DRAIN_LIMIT;
        while let Some(Ok(read)) = body.next().await {
            left = left.saturating_sub(read.len() as u64);
            if left == 0 {
                break;
            }
        }
    };
    future::select(pin!(read), pin!(sleep(DRAIN_TIME))).await;
}

/// Resolves after `duration` on the WASI monotonic clock, woken by the Spin executor.
fn sleep(duration: Duration) -> impl Future<Output = ()> {
    let deadline = monotonic_clock::now().saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut registration: Option<CancelOnDropToken> = None;
    future::poll_fn(move |cx| {
        if monotonic_clock::now() >= deadline {
            return Poll::Ready(());
        }
        // Replacing the registration drops, and so cancels, the previous one.
        let pollable = monotonic_clock::subscribe_instant(deadline);
        registration.replace(push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    })
}

/// The request line and headers, copied out of the request. (A header `Fields` handle is a child
/// of the request and must not outlive it, which `into_body_stream` consumes.)
pub struct Head {
    pub method: Method,
    pub path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    pub fn of(req: &IncomingRequest) -> Head {
        let path_and_query = req.path_with_query().unwrap_or_default();
        let path = path_and_query.split('?').next().unwrap_or("").to_string();
        let headers = req
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
            .collect();
        Head { method: req.method(), path, headers }
    }

    /// The first value of a header (if it is valid UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A complete, buffered response.
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        Reply { status, headers: Vec::new(), body }.header("content-type", "application/json")
    }

    /// A reply without a body (`204`, for instance).
    pub fn empty(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn text(status: u16, body: String) -> Reply {
        Reply { status, headers: Vec::new(), body: body.into_bytes() }
            .header("content-type", "text/plain; charset=utf-8")
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub async fn send(self, out: ResponseOutparam) {
        let fields: Vec<(String, Vec<u8>)> =
            self.headers.into_iter().map(|(name, value)| (name, value.into_bytes())).collect();
        let fields = Fields::from_list(&fields).unwrap_or_else(|e| {
            eprintln!("dropping invalid response headers: {e:?}");
            Fields::new()
        });
        let response = OutgoingResponse::new(fields);
        if response.set_status_code(self.status).is_err() {
            eprintln!("invalid status code {}", self.status);
            let _ = response.set_status_code(500);
        }
        if self.body.is_empty() {
            out.set(response);
        } else if let Err(e) = out.set_with_body(response, self.body).await {
            eprintln!("could not send the response body: {e:?}");
        }
    }
}

/// An error answer: `{"error": ..., "detail": ...}` with a status and optional extra headers.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    error: &'static str,
    detail: String,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, error, detail: detail.into(), headers: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(400, error, detail)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(404, "not found", "no such resource")
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        ApiError::new(405, "method not allowed", format!("this resource supports {allow}")).header("allow", allow)
    }

    /// A 500 whose cause is logged but not shown to the client.
    pub fn internal(what: &str, cause: impl std::fmt::Debug) -> ApiError {
        eprintln!("{what}: {cause:?}");
        ApiError::new(500, "internal error", format!("{what}; see the server log"))
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let body = serde_json::json!({ "error": e.error, "detail": e.detail });
        e.headers.into_iter().fold(Reply::json(e.status, &body), |reply, (name, value)| reply.header(name, value))
    }
}

pub type ApiResult = Result<Reply, ApiError>;

/// The media type of a `Content-Type` value, lowercased and without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Reads the whole body, refusing (413) anything over `limit` bytes without buffering it.
pub async fn read_body(head: &Head, body: &mut BodyStream, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, "too large", format!("the request body exceeds {limit} bytes"));
    let declared = head.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("bad body", format!("could not read the request body: {}", e.to_debug_string()))
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(media_type("Application/JSON; charset=utf-8"), "application/json");
        assert_eq!(media_type(""), "");
    }
}
