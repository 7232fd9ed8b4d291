//! Webhooks: a JSON event POSTed to the job's callback URL, signed with HMAC-SHA256.
//!
//! Headers: `Mp3edge-Event` (`job.done` / `job.failed`), `Mp3edge-Timestamp` (Unix seconds) and
//! `Mp3edge-Signature: v1=<hex>` where the hex is HMAC-SHA256(secret, "<timestamp>.<body>").
//! A receiver recomputes it over the raw body and rejects old timestamps to stop replays.
//!
//! The target is checked again after DNS resolution and the connection is pinned to the
//! checked address, so a name that resolves to an internal address is refused (SSRF). The name
//! checked, resolved and pinned is the one the HTTP client connects to: the URL's host as the URL
//! standard reads it (`job_model::net`: an internationalized name in its ASCII form), and the
//! client's resolver answers that one name with the checked address and refuses every other,
//! so no second lookup can take the request elsewhere.
//!
//! What a delivery records says what the receiver answered or that it was refused, never why in
//! a way that maps the inside of the network: a refused target reads `refused` (whatever the
//! reason: a private address, an unresolvable name, a host not allowed), and a failed
//! connection does not name ports or system errors.

use std::net::SocketAddr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use job_model::net;
use sha2::Sha256;

use super::{Outcome, event_type};

pub struct WebhookSender {
    pub secret: String,
    pub allow_list: String,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON event for a finished job.
pub fn event_body(outcome: &Outcome<'_>) -> Vec<u8> {
    let job = outcome.job;
    let output = job.output.as_ref();
    serde_json::to_vec(&serde_json::json!({
        "type": event_type(job),
        "job_id": job.id,
        "status": job.status,
        "source_name": job.source_name,
        "format": job.options.format,
        "download_url": output.map(|_| outcome.download_url.clone()),
        "file_name": output.map(|_| outcome.output_name.clone()),
        "size": output.map(|o| o.file.size),
        "duration_secs": output.and_then(|o| o.duration_secs),
        "error": job.error,
        "finished_at": job.updated_at,
    }))
    .expect("event serializes")
}

impl WebhookSender {
    /// Wait before attempt `attempt` (2, 3, …): the backoff doubled each time, at most 5 minutes.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(2).min(16);
        (self.backoff * factor).min(Duration::from_secs(300))
    }

    /// One delivery attempt. `Ok` carries the receiver's HTTP status; an `Err` of [`REFUSED`]
    /// is permanent (not retried).
    pub async fn deliver(&self, url: &str, event: &str, body: &[u8]) -> Result<String, String> {
        let refused = |why: &str| {
            tracing::info!(%url, reason = why, "webhook target refused");
            REFUSED.to_string()
        };
        let target = net::check_callback(url, &self.allow_list).map_err(|e| refused(&e))?;
        let allow_listed = net::is_allow_listed(&target, &self.allow_list);
        let addrs: Vec<SocketAddr> = match target.ip {
            Some(ip) => vec![SocketAddr::new(ip, target.port)],
            None => match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => return Err(refused(&format!("{} does not resolve: {e}", target.host))),
            },
        };
        let addr = match addrs.iter().find(|a| allow_listed || net::is_public_ip(a.ip())) {
            Some(addr) if allow_listed || addrs.iter().all(|a| net::is_public_ip(a.ip())) => *addr,
            _ => return Err(refused(&format!("{} resolves to a loopback or private address", target.host))),
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .dns_resolver(PinnedResolver { host: target.host.clone(), addr })
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let response = client
            .post(&target.url)
            .header("content-type", "application/json")
            .header("user-agent", "mp3edge-webhooks/1")
            .header("mp3edge-event", event)
            .header("mp3edge-timestamp", timestamp.to_string())
            .header("mp3edge-signature", sign(&self.secret, timestamp, body))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                tracing::info!(%url, error = %format!("{e:#}"), "webhook not delivered");
                not_delivered(&e).to_string()
            })?;
        // Only a checked address (public, or allow-listed by the operator) is ever reached, so
        // the status is the receiver's own answer.
        let status = response.status();
        if status.is_success() { Ok(format!("HTTP {}", status.as_u16())) } else { Err(format!("HTTP {}", status.as_u16())) }
    }
}

/// What a refused delivery records: nothing of why (a private address, a name that does not
/// resolve), which would tell an uploader what the inside of the network looks like.
pub const REFUSED: &str = "refused";

/// What a delivery that reached no answer records: no address, port or system error.
fn not_delivered(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "not delivered: the receiver did not answer in time"
    } else if e.is_connect() {
        "not delivered: could not connect to the receiver"
    } else {
        "not delivered: the request failed"
    }
}

/// The HTTP client's resolver for one delivery: the checked host is the checked address, and
/// any other name (which the client has no reason to ask for) is refused, so the connection can
/// only ever go where the checks allowed.
struct PinnedResolver {
    host: String,
    addr: SocketAddr,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if name.as_str().eq_ignore_ascii_case(&self.host) {
                Ok(Box::new(std::iter::once(self.addr)))
            } else {
                Err(format!("{} is not the checked host {}", name.as_str(), self.host).into())
            };
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = sign("secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, sign("secret", 1_700_000_001, b"{}"));
        assert_ne!(a, sign("secret", 1_700_000_000, b"{ }"));
        assert_ne!(a, sign("other", 1_700_000_000, b"{}"));
    }

    #[tokio::test]
    async fn the_pinned_resolver_answers_only_the_checked_host() {
        use reqwest::dns::Resolve;
        let addr: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let pinned = PinnedResolver { host: "xn--bcher-kva.test".into(), addr };
        let got: Vec<SocketAddr> = pinned.resolve("XN--BCHER-KVA.test".parse().unwrap()).await.unwrap().collect();
        assert_eq!(got, [addr]);
        assert!(pinned.resolve("other.test".parse().unwrap()).await.is_err());
    }

    #[tokio::test]
    async fn refusals_say_only_that() {
        let s = WebhookSender { secret: "s".into(), allow_list: String::new(), max_attempts: 1, backoff: Duration::ZERO, timeout: Duration::from_secs(1) };
        for url in ["http://127.0.0.1:9/x", "http://0x7f.1:9/x", "http://localhost:9/x", "http://[::ffff:10.0.0.1]/", "ftp://example.com/", "http://[::1]/"] {
            assert_eq!(s.deliver(url, "job.done", b"{}").await, Err(REFUSED.to_string()), "{url}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = WebhookSender { secret: String::new(), allow_list: String::new(), max_attempts: 5, backoff: Duration::from_secs(1), timeout: Duration::from_secs(1) };
        assert_eq!(s.backoff_before(2), Duration::from_secs(1));
        assert_eq!(s.backoff_before(3), Duration::from_secs(2));
        assert_eq!(s.backoff_before(4), Duration::from_secs(4));
        assert_eq!(s.backoff_before(30), Duration::from_secs(300));
    }
}
