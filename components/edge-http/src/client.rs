//! Who the client is, for throttling: the address the runtime saw (`spin-client-addr`), or,
//! when that address is a trusted reverse proxy (the `trusted_proxies` variable), the rightmost
//! address in `x-forwarded-for` that is not itself a trusted proxy. Nothing else a client sends
//! is believed.
//!
//! Under Spin a client may send its own `spin-client-addr`; the runtime appends its value after
//! the client's copies, so only the LAST value is the runtime's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `trusted_proxies` entry: an address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    let host_bits = u32::from(bits - prefix);
    a.checked_shr(host_bits).unwrap_or(0) == b.checked_shr(host_bits).unwrap_or(0)
}

/// The parsed `trusted_proxies` list (comma-separated addresses and CIDR networks; empty: no
/// proxy is trusted and `x-forwarded-for` is ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// Parses the list; an entry that is no address or network is an error naming it (a
    /// mistyped proxy must not silently make every client share the proxy's address).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || format!("trusted_proxies entry {entry:?} is not an IP address or CIDR network");
            let (addr, prefix) = match entry.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
                None => (entry, None),
            };
            let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix.unwrap_or(bits);
            if prefix > bits {
                return Err(bad());
            }
            networks.push(Network { addr, prefix });
        }
        Ok(TrustedProxies { networks })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address in `ip`, `ip:port` or `[ipv6]:port` (as in `spin-client-addr` and
/// `x-forwarded-for`).
pub fn parse_addr(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok()).map(canonical);
    }
    // `a.b.c.d:port` (an IPv6 address without brackets has no port: it parsed above).
    let (ip, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's address: the runtime's `spin-client-addr` (the LAST of `peer_values`, since
/// the runtime appends its value after any the client sent), unless it is a trusted proxy; then
/// the rightmost address of `forwarded_for` (every `x-forwarded-for` value, in order) that is
/// not a trusted proxy. When every forwarded address is trusted, the leftmost one; when the
/// first one not trusted is unreadable, the proxy that reported it. `None` when the runtime
/// gave no readable address.
pub fn client_address(peer_values: &[&str], forwarded_for: &[&str], trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut client = parse_addr(peer_values.last()?)?;
    if !trusted.contains(client) {
        return Some(client);
    }
    let hops = forwarded_for.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|h| !h.is_empty());
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        let Some(ip) = parse_addr(hop) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// The throttling key of a client address: an IPv4 address itself, an IPv6 address by its /64
/// network (one subscriber usually gets a whole /64, so single addresses are free to rotate).
pub fn throttle_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("10.0.0.1:5000"), Some(ip("10.0.0.1")));
        assert_eq!(parse_addr("[::1]:5000"), Some(ip("::1")));
        assert_eq!(parse_addr("::1"), Some(ip("::1")));
        assert_eq!(parse_addr(" 10.0.0.1 "), Some(ip("10.0.0.1")));
        assert_eq!(parse_addr("[::ffff:10.0.0.1]:80"), Some(ip("10.0.0.1")));
        assert_eq!(parse_addr("unknown"), None);
        assert_eq!(parse_addr("host:80"), None);
    }

    #[test]
    fn trusted_lists() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8").unwrap();
        assert!(t.contains(ip("10.255.0.1")));
        assert!(t.contains(ip("::ffff:10.1.1.1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.1/x", "::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_runtime_value_is_the_last() {
        let none = TrustedProxies::default();
        assert_eq!(client_address(&["203.0.113.9:1", "127.0.0.1:4000"], &[], &none), Some(ip("127.0.0.1")));
        assert_eq!(client_address(&["127.0.0.1:4000"], &["198.51.100.1"], &none), Some(ip("127.0.0.1")), "no proxy trusted: x-forwarded-for ignored");
        assert_eq!(client_address(&[], &[], &none), None);
        assert_eq!(client_address(&["garbage"], &[], &none), None);
    }

    #[test]
    fn forwarded_for_behind_trusted_proxies() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The rightmost untrusted hop; what the client wrote on the left is ignored.
        assert_eq!(client_address(&["10.0.0.2:80"], &["1.1.1.1, 198.51.100.7, 10.0.0.3"], &t), Some(ip("198.51.100.7")));
        assert_eq!(client_address(&["10.0.0.2:80"], &["1.1.1.1", "198.51.100.7"], &t), Some(ip("198.51.100.7")), "several headers");
        assert_eq!(client_address(&["10.0.0.2:80"], &["10.0.0.9, 10.0.0.3"], &t), Some(ip("10.0.0.9")), "all trusted: the leftmost");
        assert_eq!(client_address(&["10.0.0.2:80"], &[], &t), Some(ip("10.0.0.2")), "no header: the proxy");
        assert_eq!(client_address(&["10.0.0.2:80"], &["198.51.100.7, bogus, 10.0.0.3"], &t), Some(ip("10.0.0.3")), "unreadable: the proxy that reported it");
        // A client that is not a trusted proxy cannot forward for anyone.
        assert_eq!(client_address(&["203.0.113.5:80"], &["198.51.100.7"], &t), Some(ip("203.0.113.5")));
    }

    #[test]
    fn keys() {
        assert_eq!(throttle_key(ip("10.0.0.1")), "10.0.0.1");
        assert_eq!(throttle_key(ip("::ffff:10.0.0.1")), "10.0.0.1");
        assert_eq!(throttle_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
    }
}
