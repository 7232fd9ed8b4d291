//! Query strings and media types of incoming requests: plain text in, plain values out.

/// The first, percent-decoded value of the parameter `name` in a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| percent_decode(key, true) == name)
        .map(|(_, value)| percent_decode(value, true))
}

/// `?limit=` (1 to `max_limit`, default `default_limit`) and `?offset=` (default 0) of a list
/// route, or the reason they are refused.
pub fn page(query: &str, default_limit: u32, max_limit: u32) -> Result<(u32, u32), String> {
    let number = |name: &str, range: std::ops::RangeInclusive<u32>, default: u32| match query_param(query, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| format!("{name} must be a whole number from {} to {}", range.start(), range.end())),
    };
    Ok((number("limit", 1..=max_limit, default_limit)?, number("offset", 0..=u32::MAX, 0)?))
}

/// A percent-decoded path segment (`/users/a%2Bb%40example.com` names `a+b@example.com`: unlike
/// in a query, `+` is itself).
pub fn path_segment(raw: &str) -> String {
    percent_decode(raw, false)
}

/// Decodes `%XX` escapes and, with `plus_is_space`, `+` (form encoding); invalid escapes are
/// kept as they are.
fn percent_decode(raw: &str, plus_is_space: bool) -> String {
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
            (b'+', ..) if plus_is_space => out.push(b' '),
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

#[cfg(test)]
mod tests {

    #[test]
    fn pages() {
        assert_eq!(page("", 50, 200), Ok((50, 0)));
        assert_eq!(page("limit=2&offset=4", 50, 200), Ok((2, 4)));
        assert_eq!(page("limit=200", 50, 200), Ok((200, 0)));
        for bad in ["limit=0", "limit=201", "limit=x", "offset=-1"] {
            assert!(page(bad, 50, 200).is_err(), "{bad}");
        }
        assert_eq!(page("limit=0", 50, 200).unwrap_err(), "limit must be a whole number from 1 to 200");
    }

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
    fn path_segments() {
        assert_eq!(path_segment("a%2Bb%40example.com"), "a+b@example.com");
        assert_eq!(path_segment("a+b@example.com"), "a+b@example.com");
        assert_eq!(path_segment("x%zz"), "x%zz");
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type("Application/JSON; charset=utf-8"), "application/json");
        assert_eq!(media_type("Multipart/Form-Data; boundary=x"), "multipart/form-data");
        assert_eq!(media_type(""), "");
    }
}
