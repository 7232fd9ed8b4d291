//! Outbound network policy: a component may reach only the hosts its manifest's
//! `allowed_outbound_hosts` names (templates already expanded), with Spin's pattern syntax
//! `scheme://host[:port]` where `host` may be `*` or `*.domain` and `port` may be `*`.
//! Applies to outbound Redis and outbound HTTP; everything else is denied.

use anyhow::{Context, Result, bail};
use wasmtime_wasi_http::WasiHttpHooks;

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    scheme: String,
    host: String,
    port: Option<String>,
}

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    patterns: Vec<HostPattern>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" | "rediss" => Some(6379),
        _ => None,
    }
}

impl OutboundPolicy {
    pub fn parse(entries: &[String]) -> Result<OutboundPolicy> {
        let mut patterns = Vec::new();
        for entry in entries {
            let (scheme, rest) =
                entry.split_once("://").with_context(|| format!("allowed_outbound_hosts entry {entry:?} lacks a scheme"))?;
            let rest = rest.trim_end_matches('/');
            // Credentials in the entry (`redis://:password@host:port`) are not part of the host.
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            if rest.is_empty() || rest.contains('/') {
                bail!("allowed_outbound_hosts entry {entry:?} must be scheme://host[:port]");
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h.to_string(), Some(p.to_string())),
                _ => (rest.to_string(), None),
            };
            if let Some(p) = &port
                && p != "*"
                && p.parse::<u16>().is_err()
            {
                bail!("allowed_outbound_hosts entry {entry:?} has an invalid port");
            }
            patterns.push(HostPattern { scheme: scheme.to_ascii_lowercase(), host: host.to_ascii_lowercase(), port });
        }
        Ok(OutboundPolicy { patterns })
    }

    /// Whether `scheme://host:port` may be reached.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else { return false };
        self.patterns.iter().any(|p| {
            let scheme_ok = p.scheme == "*" || p.scheme == scheme;
            let host_ok = p.host == "*"
                || p.host == host
                || p.host.strip_prefix("*.").is_some_and(|suffix| host.ends_with(&format!(".{suffix}")));
            let port_ok = match &p.port {
                Some(any) if any == "*" => true,
                Some(n) => n.parse::<u16>().ok() == Some(port),
                None => default_port(&p.scheme) == Some(port),
            };
            scheme_ok && host_ok && port_ok
        })
    }

    /// Whether the URL may be reached.
    pub fn allows_url(&self, raw: &str) -> bool {
        match url::Url::parse(raw) {
            Ok(u) => u.host_str().is_some_and(|h| self.allows(u.scheme(), h.trim_matches(['[', ']']), u.port())),
            Err(_) => false,
        }
    }
}

/// Outbound HTTP for components: only to allowed hosts.
#[derive(Default)]
pub struct OutboundHttpHooks {
    pub policy: OutboundPolicy,
}

impl WasiHttpHooks for OutboundHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let uri = request.uri();
        let allowed = uri.host().is_some_and(|h| {
            self.policy.allows(uri.scheme_str().unwrap_or("https"), h.trim_matches(['[', ']']), uri.port_u16())
        });
        if !allowed {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_like_spin() {
        let p = policy(&["redis://127.0.0.1:7000", "https://*.example.com", "http://localhost:*"]);
        assert!(p.allows_url("redis://127.0.0.1:7000"));
        assert!(p.allows_url("redis://127.0.0.1:7000/0"));
        assert!(!p.allows_url("redis://127.0.0.1:6379"));
        assert!(!p.allows_url("redis://10.0.0.1:7000"));
        assert!(p.allows_url("https://api.example.com/x"));
        assert!(!p.allows_url("https://example.com.evil.org/"));
        assert!(!p.allows_url("http://api.example.com/"));
        assert!(p.allows_url("http://localhost:1234/"));
        assert!(!p.allows_url("not a url"));
        assert!(!policy(&[]).allows_url("redis://127.0.0.1:6379"));
    }

    #[test]
    fn rejects_malformed_entries() {
        assert!(OutboundPolicy::parse(&["127.0.0.1:6379".into()]).is_err());
        assert!(OutboundPolicy::parse(&["redis://h:notaport".into()]).is_err());
        assert!(OutboundPolicy::parse(&["redis://h/path".into()]).is_err());
    }
}
