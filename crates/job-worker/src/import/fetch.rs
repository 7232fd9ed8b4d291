//! Fetching a URL a user gave, safely: the worker is inside the network, the user is not.
//!
//! Every hop is checked before a byte goes out: `http` or `https`, no credentials, a host whose
//! every address is public (not loopback, private, link-local, CGNAT, multicast, unique-local,
//! or an IPv6 form that embeds such an IPv4 address; `job_model::net::is_public_ip`), unless
//! the operator's `url_import_allowed_hosts` (Spin's `allowed_outbound_hosts` syntax) names it.
//! The connection is pinned to the address that was checked (the client resolves nothing
//! itself), redirects are followed by hand, at most [`MAX_REDIRECTS`], each checked again, and
//! nothing of the user's (cookies, credentials) is sent. A connect timeout and an idle timeout
//! bound the network; a transfer that keeps moving is never cut by a clock.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use job_model::net;

use spin_host::outbound::OutboundPolicy;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence of the source before the fetch fails.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a URL was not fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The URL (or one it redirected to) points where the worker may not go: a 400 when the
    /// edge still waits for the answer.
    Refused(String),
    /// The source did not answer as it should (unreachable, too many redirects...).
    Failed(String),
}

/// Fetches URLs under the outbound rules above.
#[derive(Clone, Debug)]
pub struct Fetcher {
    allowed: OutboundPolicy,
}

impl Fetcher {
    /// `allowed_hosts`: comma-separated entries in Spin's `allowed_outbound_hosts` syntax.
    pub fn new(allowed_hosts: &str) -> anyhow::Result<Fetcher> {
        let entries: Vec<String> = allowed_hosts.split(',').map(str::trim).filter(|e| !e.is_empty()).map(String::from).collect();
        Ok(Fetcher { allowed: OutboundPolicy::parse(&entries)? })
    }

    /// The address to connect to for `url`, when every address of its host may be reached.
    async fn address(&self, url: &url::Url) -> Result<SocketAddr, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!("only http and https URLs can be imported, not {}:", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Refused("the URL carries credentials".into()));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| FetchError::Refused("the URL has no host".into()))?;
        let port = url.port_or_known_default().ok_or_else(|| FetchError::Refused("the URL has no port".into()))?;
        let allow_listed = self.allowed.allows_url(url.as_str());
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| FetchError::Refused(format!("the host {host} could not be resolved")))?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(FetchError::Refused(format!("the host {host} has no address")));
        }
        if !allow_listed && let Some(internal) = addresses.iter().find(|a| !net::is_public_ip(a.ip())) {
            let what = if bare.parse::<IpAddr>().is_ok() { format!("{host} is") } else { format!("{host} resolves to {}, which is", internal.ip()) };
            return Err(FetchError::Refused(format!("{what} a loopback, private or otherwise internal address")));
        }
        Ok(addresses[0])
    }

    /// Starts fetching `url`: the response of the last hop (of any status), the redirects
    /// before it followed and checked.
    pub async fn open(&self, url: &url::Url) -> Result<(url::Url, reqwest::Response), FetchError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let address = self.address(&url).await?;
            let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(IDLE_TIMEOUT)
                .user_agent("mp3edge-import/1")
                .resolve(&host, address)
                .build()
                .map_err(|e| FetchError::Failed(format!("HTTP client: {e}")))?;
            let response = client.get(url.clone()).send().await.map_err(|e| FetchError::Failed(describe(&e, &url)))?;
            if !response.status().is_redirection() {
                return Ok((url, response));
            }
            let Some(location) = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok((url, response));
            };
            url = url.join(location).map_err(|_| FetchError::Failed(format!("the link redirected to an invalid address {location:?}")))?;
        }
        Err(FetchError::Failed(format!("the link redirected more than {MAX_REDIRECTS} times")))
    }
}

/// A failed request in words for the user, naming no internal detail.
pub fn describe(e: &reqwest::Error, url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("the server");
    if e.is_timeout() {
        format!("{host} did not answer in time")
    } else if e.is_connect() {
        format!("could not connect to {host}")
    } else {
        format!("the download from {host} failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(fetcher: &Fetcher, raw: &str) -> String {
        let url = url::Url::parse(raw).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        match runtime.block_on(fetcher.address(&url)) {
            Err(FetchError::Refused(reason)) => reason,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn internal_addresses_in_every_form_are_refused_unless_allowed() {
        let fetcher = Fetcher::new("").unwrap();
        for raw in [
            "http://127.0.0.1/a.mp4",
            "http://10.1.2.3/a.mp4",
            "http://192.168.0.1/a.mp4",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/a.mp4",
            "http://224.0.0.1/a.mp4",
            "http://[::1]/a.mp4",
            "http://[fd00::1]/a.mp4",
            "http://[::ffff:127.0.0.1]/a.mp4",
            "http://[64:ff9b::a00:1]/a.mp4",
            "http://0x7f.1/a.mp4",
        ] {
            assert!(refused(&fetcher, raw).ends_with("a loopback, private or otherwise internal address"), "{raw}");
        }
        assert!(refused(&fetcher, "http://localhost:9/a.mp4").starts_with("localhost resolves to "));
        assert_eq!(refused(&fetcher, "ftp://example.com/a"), "only http and https URLs can be imported, not ftp:");
        // The operator's list lets a named host through, and only on its port.
        let allowed = Fetcher::new("http://127.0.0.1:8000").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let addr = runtime.block_on(allowed.address(&url::Url::parse("http://127.0.0.1:8000/a.mp4").unwrap())).unwrap();
        assert_eq!(addr, "127.0.0.1:8000".parse().unwrap());
        assert!(refused(&allowed, "http://127.0.0.1:8001/a.mp4").ends_with("internal address"));
    }
}
