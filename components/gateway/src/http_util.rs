//! HTTP plumbing shared by the routes: the copied request head, query parameters, JSON error
//! bodies, and sending a reply (buffered or streamed from stored chunks).

use crate::chunks::OutputRange;
use crate::events::JobEvents;
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
const DRAIN_LIMIT: u64 = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards what is left of the request body (bounded by [`DRAIN_LIMIT`] and
/// [`DRAIN_TIME`]) once the answer is sent: a connection closed with unread data is reset, which
/// can destroy an early answer (413, 415, 401...) before the client has read it.
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

/// Resolves after `duration` on the WASI monotonic clock: the task registers a
/// `subscribe-duration` pollable with the Spin executor, which blocks in `wasi:io/poll` until it
/// is ready (no busy-waiting). Dropping the future cancels the registration.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> {
    let deadline = monotonic_clock::now().saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut registration: Option<CancelOnDropToken> = None;
    future::poll_fn(move |cx| {
        let now = monotonic_clock::now();
        if now >= deadline {
            return Poll::Ready(());
        }
        // Replacing the registration drops, and so cancels, the previous one.
        let pollable = monotonic_clock::subscribe_duration(deadline - now);
        registration.replace(push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    })
}

/// The request line and headers, copied out of the request. (A header `Fields` handle is a child
/// of the request and must not outlive it, which `into_body_stream` consumes.)
pub struct Head {
    pub method: Method,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
}

impl Head {
    pub fn of(req: &IncomingRequest) -> Head {
        let path_and_query = req.path_with_query().unwrap_or_default();
        let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
        let headers = req
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
            .collect();
        Head { method: req.method(), path: path.to_string(), query: query.to_string(), headers }
    }

    /// The first value of a header (if it is valid UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first, percent-decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes are kept as they are.
fn percent_decode(raw: &str) -> String {
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16)).map(|d| d as u8);
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            (b'+', ..) => out.push(b' '),
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The media type of a `Content-Type` value, lowercased and without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Streamed from the key-value store, one chunk in memory at a time.
    Output(OutputRange),
    /// A live `text/event-stream` following a job.
    Events(JobEvents),
}

pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    pub fn new(status: u16, body: Body) -> Reply {
        Reply { status, headers: Vec::new(), body }
    }

    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        Reply::new(status, Body::Bytes(body)).header("content-type", "application/json")
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
        match self.body {
            Body::Empty => out.set(response),
            Body::Bytes(bytes) => {
                if let Err(e) = out.set_with_body(response, bytes).await {
                    eprintln!("could not send the response body: {e:?}");
                }
            }
            Body::Output(range) => {
                let sink = response.take_body();
                out.set(response);
                range.stream(sink).await;
            }
            Body::Events(events) => {
                let sink = response.take_body();
                out.set(response);
                events.stream(sink).await;
            }
        }
    }
}

/// An error answer: `{"error": ..., "detail": ...}` (plus optional fields) with a status and
/// optional extra headers.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    error: &'static str,
    detail: String,
    fields: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, error, detail: detail.into(), fields: Vec::new(), headers: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    /// An extra field of the JSON body.
    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.fields.push((name, value.into()));
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
        let mut body = serde_json::Map::new();
        body.insert("error".into(), e.error.into());
        body.insert("detail".into(), e.detail.into());
        for (name, value) in e.fields {
            body.insert(name.into(), value.into());
        }
        e.headers.into_iter().fold(Reply::json(e.status, &body), |reply, (name, value)| reply.header(name, value))
    }
}

pub type ApiResult = Result<Reply, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = "format=wav&filename=my%20clip+1.mp4&x&bitrate=%zz";
        assert_eq!(query_param(q, "format").as_deref(), Some("wav"));
        assert_eq!(query_param(q, "filename").as_deref(), Some("my clip 1.mp4"));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "bitrate").as_deref(), Some("%zz"));
        assert_eq!(query_param(q, "limit"), None);
        assert_eq!(query_param("", "limit"), None);
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type("Multipart/Form-Data; boundary=x"), "multipart/form-data");
    }
}
