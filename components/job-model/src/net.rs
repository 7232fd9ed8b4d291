//! Where the platform may send a webhook: only `http(s)` URLs, and never to loopback,
//! private, link-local or otherwise internal addresses unless an allow-list names the host
//! (server-side request forgery protection). The gateway checks the URL when it is given; the
//! worker checks again after DNS resolution, right before connecting.
//!
//! A URL's host is read here exactly as the worker's HTTP client (reqwest, on the `url` crate)
//! reads it, by the WHATWG URL standard: an internationalized name becomes its ASCII (punycode)
//! form (`bücher.test` is `xn--bcher-kva.test`), an IPv4 address in any of the forms the
//! standard accepts (`0x7f.1`, `2130706433`, `１２７.0.0.1`) becomes the address, and
//! percent-escapes are decoded. The checks, the allow-list, the DNS lookup and the pinned
//! connection all use that one form, so no host can be checked under one name and reached
//! under another.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest accepted callback URL.
pub const MAX_CALLBACK_LEN: usize = 2048;

/// A callback URL split into what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    pub scheme: String,
    /// The host the HTTP client connects to: a lowercase ASCII name (IDNA applied) or an IP
    /// literal (without IPv6 brackets).
    pub host: String,
    pub port: u16,
    /// The host when it is an IP literal: no DNS is involved.
    pub ip: Option<IpAddr>,
    /// The URL as the HTTP client reads it (serialized by the URL standard, host in ASCII):
    /// what the worker sends to.
    pub url: String,
}

/// Parses `http(s)://host[:port]/...` the way the worker's HTTP client does; anything else is
/// refused with a reason.
pub fn parse_callback(url: &str) -> Result<CallbackTarget, String> {
    if url.len() > MAX_CALLBACK_LEN {
        return Err(format!("callback URL longer than {MAX_CALLBACK_LEN} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("callback URL contains whitespace or control characters".into());
    }
    let (scheme, _) = url.split_once("://").ok_or("callback URL must start with http:// or https://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("callback URL must use http or https".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("callback URL is not a valid URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("callback URL must not carry credentials".into());
    }
    let (host, ip) = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => (name.to_ascii_lowercase(), None),
        Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        _ => return Err("callback URL has no host".into()),
    };
    let port = parsed.port_or_known_default().ok_or("callback URL has an invalid port")?;
    Ok(CallbackTarget { scheme: parsed.scheme().to_string(), host, port, ip, url: parsed.into() })
}

/// A host (or `[IPv6]`) of an allow-list entry in the form [`parse_callback`] gives hosts.
fn normalize_host(host: &str) -> Option<String> {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    match url::Host::parse(host).ok()? {
        url::Host::Domain(name) => Some(name.to_ascii_lowercase()),
        url::Host::Ipv4(v4) => Some(v4.to_string()),
        url::Host::Ipv6(v6) => Some(v6.to_string()),
    }
}

/// An allow-list entry (`host`, `host:port`, an IPv6 address, `[IPv6]:port`) as a normalized
/// host and an optional port.
fn allow_list_entry(entry: &str) -> Option<(String, Option<u16>)> {
    if entry.parse::<IpAddr>().is_ok() {
        return Some((normalize_host(entry)?, None));
    }
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match entry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some((normalize_host(host)?, port))
}

/// Whether an address is reachable on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast, unspecified or reserved). An IPv6 address that
/// carries an IPv4 address for a transition mechanism (mapped, compatible, translated, NAT64,
/// 6to4, Teredo, ISATAP) is public only if every IPv4 address it embeds is, since a relay or
/// translator on the way may deliver it to that IPv4 address.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6) && embedded_ipv4(v6).iter().all(|v4| is_public_v4(*v4)),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// The IPv6 ranges that are not public in themselves (whatever they embed).
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed internally)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID 2001:10::/28
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001)) // local-use NAT64 64:ff9b:1::/48
}

/// The IPv4 addresses an IPv6 address embeds for a transition mechanism.
fn embedded_ipv4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let mut found = Vec::new();
    if s[0..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) {
        // IPv4-compatible ::a.b.c.d (deprecated) and IPv4-mapped ::ffff:a.b.c.d; :: and ::1 are
        // refused as IPv6 already.
        found.push(v4(s[6], s[7]));
    }
    if s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        // IPv4-translated ::ffff:0:a.b.c.d (SIIT).
        found.push(v4(s[6], s[7]));
    }
    if s[0] == 0x0064 && s[1] == 0xff9b {
        // NAT64 well-known prefix 64:ff9b::/96 (and the local-use 64:ff9b:1::/48, refused above).
        found.push(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 2002:AABB:CCDD::/48.
        found.push(v4(s[1], s[2]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo 2001::/32: the server's address, and the client's (bits inverted).
        found.push(v4(s[2], s[3]));
        found.push(v4(!s[6], !s[7]));
    }
    if (s[4] & 0xfdff) == 0 && s[5] == 0x5efe {
        // ISATAP interface identifier ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d under any prefix.
        found.push(v4(s[6], s[7]));
    }
    found
}

/// Whether the allow-list (comma-separated `host` or `host:port` entries) names the target.
/// Entries are read as URL hosts are (an internationalized name matches its ASCII form).
pub fn is_allow_listed(target: &CallbackTarget, allow_list: &str) -> bool {
    allow_list.split(',').map(str::trim).filter(|e| !e.is_empty()).filter_map(allow_list_entry).any(|(host, port)| {
        host == target.host && port.is_none_or(|port| port == target.port)
    })
}

/// The gateway's check, before any DNS: refuses internal IP literals and local names unless
/// allow-listed.
pub fn check_callback(url: &str, allow_list: &str) -> Result<CallbackTarget, String> {
    let target = parse_callback(url)?;
    if is_allow_listed(&target, allow_list) {
        return Ok(target);
    }
    let name = target.host.strip_suffix('.').unwrap_or(&target.host);
    let local_name = target.ip.is_none()
        && (name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local") || !name.contains('.'));
    let internal_ip = target.ip.is_some_and(|ip| !is_public_ip(ip));
    if local_name || internal_ip {
        return Err(format!("callbacks to {} are not allowed (loopback or private address)", target.host));
    }
    Ok(target)
}

/// Longest URL accepted for an import (`POST /upload?url=`).
pub const MAX_IMPORT_URL_LEN: usize = 2048;

/// Why a URL cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportUrlError {
    /// Not a URL at all.
    Invalid(String),
    /// A URL no worker may fetch (scheme, credentials, no host).
    NotAllowed(String),
}

/// The URL as a worker will fetch it, when it is one it may try: `http` or `https`, a host, no
/// credentials (they would go to whoever the host turns out to be). Where the host points is
/// the worker's to check, after resolving it.
pub fn check_import_url(raw: &str) -> Result<url::Url, ImportUrlError> {
    let raw = raw.trim();
    if raw.len() > MAX_IMPORT_URL_LEN {
        return Err(ImportUrlError::NotAllowed(format!("the URL is longer than {MAX_IMPORT_URL_LEN} characters")));
    }
    let url = url::Url::parse(raw).map_err(|e| ImportUrlError::Invalid(format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ImportUrlError::NotAllowed(format!("only http and https URLs can be imported, not {}:", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ImportUrlError::NotAllowed("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ImportUrlError::NotAllowed(
            "the URL carries credentials; give a link that works without them (a share link, a signed URL)".into(),
        ));
    }
    Ok(url)
}

/// An imported file's name: the URL's last path segment, decoded, or `import`.
pub fn import_source_name(url: &url::Url) -> String {
    let last = url.path_segments().and_then(|mut segments| segments.next_back()).unwrap_or("");
    let bytes = last.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, ..) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded);
    crate::naming::sanitize_source_name(if decoded.trim().is_empty() { "import" } else { &decoded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callbacks() {
        let t = parse_callback("https://Hooks.Example.com/x?y=1").unwrap();
        assert_eq!((t.scheme.as_str(), t.host.as_str(), t.port), ("https", "hooks.example.com", 443));
        assert_eq!(parse_callback("http://[::1]:8080/").unwrap().host, "::1");
        assert_eq!(parse_callback("http://h.example:81").unwrap().port, 81);
        for bad in ["ftp://x.example/", "http://", "x.example/hook", "http://u:p@x.example/", "http://x.example:99999/", "http://a b.example/"] {
            assert!(parse_callback(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_read_as_the_http_client_reads_them() {
        // An internationalized name is its ASCII form, which is what gets resolved and reached.
        let t = parse_callback("http://Bücher.test:8080/hook?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.ip), ("xn--bcher-kva.test", 8080, None));
        assert_eq!(t.url, "http://xn--bcher-kva.test:8080/hook?x=1");
        // The IPv4 forms the URL standard accepts are the address they spell.
        for loopback in ["http://0x7f.1/", "http://2130706433/", "http://127.1/", "http://0177.0.0.1/", "http://１２７.0.0.1/", "http://127.0.0.%31/", "http://127\u{3002}0\u{3002}0\u{3002}1/"] {
            let t = parse_callback(loopback).unwrap();
            assert_eq!(t.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), "{loopback}");
            assert_eq!(t.host, "127.0.0.1", "{loopback}");
            assert!(check_callback(loopback, "").is_err(), "{loopback}");
        }
        // Names that are local in another spelling.
        for local in ["http://ｌｏｃａｌｈｏｓｔ/", "http://LOCALHOST./", "http://printer.local./", "http://intranet./"] {
            assert!(check_callback(local, "").is_err(), "{local}");
        }
        assert!(parse_callback("http://xn--a.test/").is_err(), "invalid punycode is no host");
    }

    #[test]
    fn allow_lists_match_the_ascii_form() {
        let t = parse_callback("http://bücher.test:9000/").unwrap();
        for entry in ["bücher.test", "BÜCHER.test:9000", "xn--bcher-kva.test", " other.example , xn--bcher-kva.test:9000"] {
            assert!(is_allow_listed(&t, entry), "{entry}");
        }
        for entry in ["bucher.test", "bücher.test:9001", "xn--bcher-kva.test:x", ""] {
            assert!(!is_allow_listed(&t, entry), "{entry}");
        }
        let v6 = parse_callback("http://[::1]:9000/").unwrap();
        for entry in ["::1", "[::1]", "[::1]:9000", "[0:0::1]:9000"] {
            assert!(is_allow_listed(&v6, entry), "{entry}");
        }
        assert!(!is_allow_listed(&v6, "[::1]:9001"));
        assert!(is_allow_listed(&parse_callback("http://0x7f.1:9000/").unwrap(), "127.0.0.1:9000"));
    }

    #[test]
    fn classifies_addresses() {
        for private in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "255.255.255.255"] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_internal_ipv4_are_not_public() {
        for internal in [
            "::127.0.0.1",          // IPv4-compatible
            "::10.0.0.1",
            "::ffff:0:7f00:1",      // IPv4-translated 127.0.0.1
            "::ffff:0:a9fe:a9fe",   // IPv4-translated 169.254.169.254
            "::ffff:10.1.2.3",      // IPv4-mapped
            "2002:7f00:1::1",       // 6to4 of 127.0.0.1
            "2002:c0a8:101::",      // 6to4 of 192.168.1.1
            "2002:a9fe:a9fe::1",    // 6to4 of 169.254.169.254
            "64:ff9b::7f00:1",      // NAT64 of 127.0.0.1
            "64:ff9b::a00:1",       // NAT64 of 10.0.0.1
            "64:ff9b:1::808:808",   // local-use NAT64, whatever it embeds
            "2001:0:7f00:1::1",     // Teredo, server 127.0.0.1
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1 (inverted)
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo, client 10.0.0.1 (inverted)
            "2606:4700::5efe:7f00:1", // ISATAP of 127.0.0.1
            "fec0::1",              // site-local
            "100::1",               // discard-only
        ] {
            assert!(!is_public_ip(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "::ffff:8.8.8.8",
            "2002:808:808::1",      // 6to4 of 8.8.8.8
            "64:ff9b::808:808",     // NAT64 of 8.8.8.8
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, server 65.54.227.120, client 8.8.8.8
            "2001:4860:4860::8888",
        ] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
        for url in ["http://[::127.0.0.1]/", "http://[::ffff:0:7f00:1]/", "http://[2002:7f00:1::1]/", "http://[64:ff9b::7f00:1]/", "http://[2001:0:7f00:1::1]/"] {
            assert!(check_callback(url, "").is_err(), "{url}");
        }
    }

    #[test]
    fn refuses_internal_targets_unless_allow_listed() {
        assert!(check_callback("http://127.0.0.1:9000/hook", "").is_err());
        assert!(check_callback("http://localhost/hook", "").is_err());
        assert!(check_callback("http://intranet/hook", "").is_err());
        assert!(check_callback("http://169.254.169.254/latest", "").is_err());
        assert!(check_callback("http://127.0.0.1:9000/hook", "127.0.0.1:9000").is_ok());
        assert!(check_callback("http://127.0.0.1:9001/hook", "127.0.0.1:9000").is_err());
        assert!(check_callback("http://127.0.0.1:9001/hook", "example.org, 127.0.0.1").is_ok());
        assert!(check_callback("https://hooks.example.com/x", "").is_ok());
    }

    #[test]
    fn urls_a_worker_may_try_to_import() {
        assert_eq!(check_import_url(" https://media.example.com/a%20talk.mp4?sig=x ").unwrap().as_str(), "https://media.example.com/a%20talk.mp4?sig=x");
        // IDNA is applied as the worker's client will apply it.
        assert_eq!(check_import_url("http://bücher.example/a").unwrap().host_str(), Some("xn--bcher-kva.example"));
        for raw in ["ftp://example.com/a.mp4", "file:///etc/passwd", "https://user:secret@example.com/a.mp4", "https://user@example.com/"] {
            assert!(matches!(check_import_url(raw), Err(ImportUrlError::NotAllowed(_))), "{raw}");
        }
        assert!(matches!(check_import_url("not a url"), Err(ImportUrlError::Invalid(_))));
        assert!(matches!(check_import_url(&format!("https://example.com/{}", "a".repeat(3000))), Err(ImportUrlError::NotAllowed(_))));
    }

    #[test]
    fn imported_files_are_named_by_their_last_path_segment() {
        let name = |raw: &str| import_source_name(&url::Url::parse(raw).unwrap());
        assert_eq!(name("https://x.example/rec/Meeting%20notes.mp4?x=1"), "Meeting notes.mp4");
        assert_eq!(name("https://x.example/"), "import");
    }
}
