//! The host's own answers, where no component answers: 404 for a path no route matches, 500 for
//! a component that failed, 503 when a component is at capacity or a request ran past its
//! deadline. The mp3edge application's clients get them as JSON (`{"error", "detail"}`), like
//! its components' own errors; any other application gets Spin's: the status with an empty body.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// How the host's own answers look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostErrorStyle {
    /// `{"error": ..., "detail": ...}` with `content-type: application/json` (the mp3edge app).
    Json,
    /// The status alone, as `spin up` answers.
    Spin,
}

impl HostErrorStyle {
    /// The host's answer with `status`; `error` and `detail` say why, in the JSON style.
    pub fn answer(self, status: u16, error: &str, detail: &str) -> hyper::Response<HyperOutgoingBody> {
        let builder = hyper::Response::builder().status(status);
        let (builder, body) = match self {
            HostErrorStyle::Json => (
                builder.header(http::header::CONTENT_TYPE, "application/json"),
                serde_json::json!({ "error": error, "detail": detail }).to_string(),
            ),
            HostErrorStyle::Spin => (builder, String::new()),
        };
        builder
            .body(Full::new(Bytes::from(body)).map_err(|never: Infallible| -> wasmtime_wasi_http::Error { match never {} }).boxed_unsync())
            .expect("a static response is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: hyper::Response<HyperOutgoingBody>) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn json_for_mp3edge_and_an_empty_body_like_spin_otherwise() {
        let (status, content_type, body) = body_of(HostErrorStyle::Json.answer(404, "not found", "no route for /x")).await;
        assert_eq!((status, content_type.as_deref()), (404, Some("application/json")));
        assert_eq!(body, r#"{"detail":"no route for /x","error":"not found"}"#);
        let (status, content_type, body) = body_of(HostErrorStyle::Spin.answer(500, "internal error", "x")).await;
        assert_eq!((status, content_type, body.as_str()), (500, None, ""));
    }
}
