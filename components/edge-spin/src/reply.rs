//! Answers: a status, headers and a body (buffered, or streamed after the head), sent through
//! the WASI response outparam; and the JSON error answer every route shares.

use serde::Serialize;
use spin_sdk::http::{Fields, OutgoingResponse, ResponseOutparam};
use std::pin::Pin;
use wasi::io::streams::StreamError;

/// Where a streamed body is written.
pub type BodySink = Pin<Box<dyn futures::Sink<Vec<u8>, Error = StreamError>>>;

type StreamBody = Box<dyn FnOnce(BodySink) -> Pin<Box<dyn Future<Output = ()>>>>;

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Written to the body's sink once the status and headers are sent.
    Stream(StreamBody),
}

impl Body {
    /// A body written by `write` once the status and headers are sent (so it can only log its
    /// problems).
    pub fn stream<W, F>(write: W) -> Body
    where
        W: FnOnce(BodySink) -> F + 'static,
        F: Future<Output = ()> + 'static,
    {
        Body::Stream(Box::new(move |sink| Box::pin(write(sink))))
    }
}

/// Response headers that name the request's user and job in the host's request log.
pub const LOG_USER_HEADER: &str = "mp3edge-log-user";
pub const LOG_JOB_HEADER: &str = "mp3edge-log-job";

pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    pub fn new(status: u16, body: Body) -> Reply {
        Reply { status, headers: Vec::new(), body }
    }

    /// A reply without a body (`204`, for instance).
    pub fn empty(status: u16) -> Reply {
        Reply::new(status, Body::Empty)
    }

    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        Reply::new(status, Body::Bytes(body)).header("content-type", "application/json")
    }

    pub fn text(status: u16, body: String) -> Reply {
        Reply::new(status, Body::Bytes(body.into_bytes())).header("content-type", "text/plain; charset=utf-8")
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Names the user and the job this request concerned for the host's request log
    /// (`mp3edge up` logs and removes these headers; under Spin the client, who is that user,
    /// sees them).
    pub fn for_log(self, user: Option<&str>, job: Option<&str>) -> Reply {
        let reply = match user {
            Some(user) => self.header(LOG_USER_HEADER, user),
            None => self,
        };
        match job {
            Some(job) => reply.header(LOG_JOB_HEADER, job),
            None => reply,
        }
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
            Body::Stream(write) => {
                let sink: BodySink = Box::pin(response.take_body());
                out.set(response);
                write(sink).await;
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
