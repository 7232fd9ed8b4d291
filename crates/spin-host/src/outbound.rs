//! Outbound network policy: a component may reach only what its manifest's
//! `allowed_outbound_hosts` names (templates already expanded), in Spin's syntax
//! `scheme://host[:port]`:
//! - `scheme` is a name (`redis`, `tcp`, `udp`, ...) or `*`;
//! - `host` is a name, an IP address, `*`, `*.domain` (any subdomain) or an IP range in CIDR
//!   notation (`127.0.0.0/24`, `::1/128`);
//! - `port` is a number, a range `low..high` (high excluded) or `*`; without one, the scheme's
//!   well-known port (an entry for a scheme without one must give a port).
//!
//! An entry that a variable expanded to nothing is skipped, as in Spin (an optional endpoint).
//! It applies to outbound HTTP (`outbound_http`), Redis and WASI sockets (`socket_policy`).

use std::net::IpAddr;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    AnySubdomain(String),
    /// A name or an IP address (as text, lowercased, without brackets).
    Literal(String),
    /// An IP range.
    Network { address: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `low..high`, `high` excluded.
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" | "rediss" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `127.0.0.0/24`, `::1/128`: the network's address and prefix length, if `text` is one.
fn parse_network(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let address: IpAddr = address.trim_matches(['[', ']']).parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((address, prefix))
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
        match prefix {
            0 => 0,
            p => bits >> (width - u32::from(p)),
        }
    }
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            masked(u32::from(ip).into(), 32, prefix) == masked(u32::from(net).into(), 32, prefix)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => masked(u128::from(ip), 128, prefix) == masked(u128::from(net), 128, prefix),
        _ => false,
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<HostPattern> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostPattern::Any);
        }
        if let Some((address, prefix)) = parse_network(host) {
            return Ok(HostPattern::Network { address, prefix });
        }
        let host = host.strip_suffix('/').unwrap_or(host);
        if host.is_empty() || host.contains('/') {
            bail!("must be a host without a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return Ok(HostPattern::AnySubdomain(format!(".{}", domain.to_ascii_lowercase())));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(HostPattern::Literal(host.trim_matches(['[', ']']).to_ascii_lowercase()))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let ip: Option<IpAddr> = host.parse().ok();
        match self {
            HostPattern::Any => true,
            HostPattern::AnySubdomain(suffix) => ip.is_none() && host.ends_with(suffix.as_str()),
            HostPattern::Literal(literal) => match (ip, literal.parse::<IpAddr>()) {
                (Some(ip), Ok(literal)) => ip == literal,
                _ => *literal == host,
            },
            HostPattern::Network { address, prefix } => ip.is_some_and(|ip| in_network(ip, *address, *prefix)),
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<PortPattern> {
        if port.is_empty() {
            return well_known_port(scheme).map(PortPattern::Port).with_context(|| {
                format!("no port was given and the scheme {scheme:?} has no well-known port")
            });
        }
        if port == "*" {
            return Ok(PortPattern::Any);
        }
        if let Some((low, high)) = port.split_once("..") {
            let low = low.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            let high = high.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            return Ok(PortPattern::Range(low, high));
        }
        Ok(PortPattern::Port(port.parse().with_context(|| format!("port {port:?} is not a number"))?))
    }

    fn allows(&self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Port(p) => *p == port,
            PortPattern::Range(low, high) => (*low..*high).contains(&port),
        }
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<AllowedHost> {
        let entry = entry.trim();
        let (scheme, rest) = entry.split_once("://").context("it lacks a scheme (such as `redis://` or `*://`)")?;
        if scheme != "*" && (scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic())) {
            bail!("the scheme must be letters or `*`");
        }
        let scheme = scheme.to_ascii_lowercase();
        // Credentials in the entry (`redis://:password@host:port`) are not part of the host.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((host, "")) => (host, ""),
            // `[::1]` or a bare IPv6 range: the colon belongs to the host.
            Some(_) if rest.ends_with(']') || parse_network(rest).is_some() => (rest, ""),
            Some((host, tail)) => match tail.split_once('/') {
                Some((_, path)) if !path.is_empty() => bail!("it has a path"),
                Some((port, _)) => (host, port),
                None => (host, tail),
            },
        };
        let port = PortPattern::parse(port, &scheme)?;
        let host = HostPattern::parse(host)?;
        Ok(AllowedHost { scheme: (scheme != "*").then_some(scheme), host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let port_ok = match (&self.port, port.or_else(|| well_known_port(scheme))) {
            (PortPattern::Any, _) => true,
            (pattern, Some(port)) => pattern.allows(port),
            (_, None) => false,
        };
        scheme_ok && port_ok && self.host.allows(host)
    }
}

impl OutboundPolicy {
    pub fn parse(entries: &[String]) -> Result<OutboundPolicy> {
        let mut allowed = Vec::new();
        for entry in entries {
            // A variable that expanded to nothing leaves an optional endpoint unset.
            if matches!(entry.trim(), "" | "http://" | "https://") {
                continue;
            }
            allowed.push(AllowedHost::parse(entry).with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))?);
        }
        Ok(OutboundPolicy { allowed })
    }

    /// Whether the component may reach anything at all.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether `scheme://host:port` may be reached (no port: the scheme's well-known one).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        self.allowed.iter().any(|a| a.allows(&scheme, host, port))
    }

    /// Whether the URL may be reached.
    pub fn allows_url(&self, raw: &str) -> bool {
        match url::Url::parse(raw) {
            Ok(u) => u.host_str().is_some_and(|h| self.allows(u.scheme(), h, u.port())),
            Err(_) => false,
        }
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
    fn ip_ranges_port_ranges_and_any_scheme() {
        let p = policy(&["*://127.0.0.0/24:7000", "tcp://10.0.0.1:8000..8010", "udp://[::1]:53", "tcp://fd00::/8:*"]);
        assert!(p.allows("tcp", "127.0.0.1", Some(7000)));
        assert!(p.allows("udp", "127.0.0.255", Some(7000)));
        assert!(!p.allows("tcp", "127.0.1.1", Some(7000)));
        assert!(!p.allows("tcp", "127.0.0.1", Some(7001)));
        assert!(!p.allows("tcp", "localhost", Some(7000)), "a range matches addresses, not names");
        assert!(p.allows("tcp", "10.0.0.1", Some(8009)));
        assert!(!p.allows("tcp", "10.0.0.1", Some(8010)), "the end of a range is excluded");
        assert!(p.allows("udp", "::1", Some(53)));
        assert!(!p.allows("tcp", "::1", Some(53)));
        assert!(p.allows("tcp", "fd12::5", Some(1)));
        assert!(policy(&["*://0.0.0.0/0:*"]).allows("tcp", "192.0.2.1", Some(9)));
    }

    #[test]
    fn rejects_malformed_entries_and_skips_empty_ones() {
        for bad in ["127.0.0.1:6379", "redis://h:notaport", "redis://h:1/path", "tcp://127.0.0.1", "*://h", "redis://a*b"] {
            assert!(OutboundPolicy::parse(&[bad.into()]).is_err(), "{bad} should be refused");
        }
        assert!(policy(&["", "http://"]).is_empty());
    }
}
