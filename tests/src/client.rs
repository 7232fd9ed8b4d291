//! [`Client`]: an HTTP client for one test with the platform's conversations in it (log in, make
//! a user, upload, follow a job to its end, download), and [`error_body`] for the project's
//! `{error, detail}` answers, so each test states only what it checks.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, Platform};

/// Whether a job record is final: `done` or `failed`.
fn is_final(job: &serde_json::Value) -> bool {
    job["status"] == "done" || job["status"] == "failed"
}

/// An HTTP client for one test, with helpers for the platform's auth.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(platform: &Platform) -> Client {
        Client { http: reqwest::Client::new(), base: platform.base_url.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in and returns the token (panics on failure).
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self.http.post(self.url("/login")).basic_auth(email, Some(password)).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "login of {email} failed: {body}");
        body
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user through the admin API and returns their token.
    pub async fn new_user(&self, email: &str) -> String {
        let admin = self.admin_token().await;
        let res = self
            .http
            .post(self.url("/users"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "email": email, "password": "user-password-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating {email}: {}", res.text().await.unwrap());
        self.login(email, "user-password-1").await
    }
}

impl Client {
    /// Uploads a file as a raw body; returns the job id.
    pub async fn upload_file(&self, token: &str, path: &Path, content_type: &str, query: &str) -> String {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = tokio::fs::read(path).await.unwrap();
        let sep = if query.is_empty() { "" } else { "&" };
        let url = self.url(&format!("/upload?filename={name}{sep}{query}"));
        let res = self.http.post(url).bearer_auth(token).header("content-type", content_type).body(body).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 202, "upload of {name} refused: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["job_id"].as_str().unwrap().to_string()
    }

    pub async fn job(&self, token: &str, id: &str) -> serde_json::Value {
        let res = self.http.get(self.url(&format!("/jobs/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls the job until it is `done` or `failed`.
    pub async fn wait_for_job(&self, token: &str, id: &str, timeout: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let job = self.job(token, id).await;
            if is_final(&job) {
                return job;
            }
            assert!(started.elapsed() < timeout, "job {id} still {} after {timeout:?}: {job}", job["status"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows the job the way the status page does, on its event stream (`GET
    /// /jobs/{id}/events`: the edge reads the record four times a second in one instance),
    /// until it is `done` or `failed`; then returns the record. Ten polls a second through
    /// [`Client::wait_for_job`] cost the edge 0.35–0.40 CPU-seconds over an hour's conversion,
    /// time the benchmark would otherwise take from the worker it measures.
    pub async fn follow_job(&self, token: &str, id: &str, timeout: Duration) -> serde_json::Value {
        use futures::StreamExt;
        let started = Instant::now();
        loop {
            let res = self.http.get(self.url(&format!("/jobs/{id}/events"))).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200, "the job's event stream");
            let mut body = res.bytes_stream();
            let mut seen = String::new();
            while let Ok(Some(chunk)) = tokio::time::timeout(timeout.saturating_sub(started.elapsed()), body.next()).await {
                seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if seen.contains("event: done") || seen.contains("event: failed") {
                    return self.job(token, id).await;
                }
                // Only the unfinished line is kept.
                if let Some((_, rest)) = seen.rsplit_once('\n') {
                    seen = rest.to_string();
                }
            }
            // The stream ended (its own time limit) or went quiet: follow it again.
            let job = self.job(token, id).await;
            if is_final(&job) {
                return job;
            }
            assert!(started.elapsed() < timeout, "job {id} still {} after {timeout:?}: {job}", job["status"]);
        }
    }

    /// The first entry of `GET /formats` that `pick` accepts, waiting (up to 20 s) for the worker
    /// to publish what its plugins take; panics with the last list otherwise.
    pub async fn published_format(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let formats: serde_json::Value = self.http.get(self.url("/formats")).send().await.unwrap().json().await.unwrap();
            if let Some(found) = formats.as_array().and_then(|list| list.iter().find(|f| pick(f))) {
                return found.clone();
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{what} never published: {formats}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn download(&self, token: &str, id: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
        let res = self.http.get(self.url(&format!("/jobs/{id}/audio"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let headers = res.headers().clone();
        (headers, res.bytes().await.unwrap().to_vec())
    }
}

/// Reads a JSON error body and checks its shape.
pub async fn error_body(res: reqwest::Response, status: u16) -> serde_json::Value {
    let got = res.status().as_u16();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "unexpected status, body: {text}");
    assert!(content_type.starts_with("application/json"), "error is not JSON ({content_type}): {text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert!(json["error"].is_string() && json["detail"].is_string(), "error body lacks error/detail: {text}");
    json
}

/// Reads an event stream until `needle` has arrived (`Some(text so far)`) or `timeout` passes
/// (`None`, with whether the stream had ended by then), then until the stream ends, for at most
/// another two seconds: `true` when it ended. The tests of streams that a revoked token or a
/// changed account must close share it.
pub async fn events_until(res: reqwest::Response, needle: &str, timeout: Duration) -> (Option<String>, bool) {
    use futures::StreamExt;
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => return (None, true),
            Err(_) => return (None, false),
        }
    }
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(2), body.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => break true,
            Err(_) => break false,
        }
    };
    (Some(seen), ended)
}
