//! Cross-origin resource sharing. The allow-list is a comma-separated list of exact origins
//! (`https://app.example.com`); an empty list allows no cross-origin access. There is no `*`:
//! the API is read with bearer tokens, and only named front ends should get to do that.

/// Response headers a browser script may read besides the CORS-safelisted ones.
/// The tus headers are among them, so that tus clients on another origin work.
pub const EXPOSE_HEADERS: &str = "Content-Disposition, Content-Length, Content-Range, ETag, Location, Retry-After, Mp3edge-Device, \
     Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Upload-Offset, Upload-Length, Upload-Expires";
/// Request headers a preflight allows.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Range, If-None-Match, If-Range, Mp3edge-Device, \
     Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Defer-Length";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: u32 = 600;

/// The parsed `cors_allowed_origins` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    origins: Vec<String>,
}

impl Policy {
    /// Parses the comma-separated list. Entries are trimmed, a trailing `/` is ignored, and
    /// `null` and `*` are never accepted as entries.
    pub fn parse(list: &str) -> Policy {
        let origins = list
            .split(',')
            .map(|entry| entry.trim().trim_end_matches('/'))
            .filter(|entry| !entry.is_empty() && *entry != "*" && !entry.eq_ignore_ascii_case("null"))
            .map(str::to_ascii_lowercase)
            .collect();
        Policy { origins }
    }

    /// Whether any origin is allowed; responses then vary by `Origin`.
    pub fn is_active(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The request's `Origin` header value when it is on the list (echoed back as sent).
    pub fn allowed_origin<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        let origin = origin?.trim();
        let well_formed = !origin.is_empty()
            && !origin.eq_ignore_ascii_case("null")
            && origin.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        (well_formed && self.origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))).then_some(origin)
    }

    /// The CORS headers of an ordinary (non-preflight) response to a request from `origin`.
    /// `Vary: Origin` is sent whenever the policy is active, so that a cache never hands a
    /// response made for one origin to another.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(origin) = self.allowed_origin(origin) {
            headers.push(("access-control-allow-origin", origin.to_string()));
            headers.push(("access-control-expose-headers", EXPOSE_HEADERS.to_string()));
        }
        if self.is_active() {
            headers.push(("vary", "Origin".to_string()));
        }
        headers
    }

    /// The headers of an `OPTIONS` answer for a resource supporting `methods` (such as
    /// `"GET, HEAD"`): always `Allow`, and the preflight grant when the origin is allowed.
    pub fn preflight_headers(&self, origin: Option<&str>, methods: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![("allow", format!("{methods}, OPTIONS"))];
        if let Some(origin) = self.allowed_origin(origin) {
            headers.push(("access-control-allow-origin", origin.to_string()));
            headers.push(("access-control-allow-methods", methods.to_string()));
            headers.push(("access-control-allow-headers", ALLOW_HEADERS.to_string()));
            headers.push(("access-control-max-age", MAX_AGE_SECS.to_string()));
        }
        if self.is_active() {
            headers.push(("vary", "Origin".to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(headers: &[(&'static str, String)]) -> Vec<&'static str> {
        headers.iter().map(|(name, _)| *name).collect()
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let policy = Policy::parse(" https://app.example.com/ , http://localhost:5173,,*,null");
        assert!(policy.is_active());
        assert_eq!(policy.allowed_origin(Some("https://app.example.com")), Some("https://app.example.com"));
        assert_eq!(policy.allowed_origin(Some("HTTPS://App.Example.com")), Some("HTTPS://App.Example.com"));
        assert_eq!(policy.allowed_origin(Some("http://localhost:5173")), Some("http://localhost:5173"));
        for foreign in ["https://evil.example.com", "https://app.example.com.evil.net", "http://app.example.com", "null", "*", ""] {
            assert_eq!(policy.allowed_origin(Some(foreign)), None, "{foreign}");
        }
        assert_eq!(policy.allowed_origin(None), None);
        assert_eq!(policy.allowed_origin(Some("https://app.example.com, http://localhost:5173")), None);
    }

    #[test]
    fn an_empty_list_allows_nothing_and_adds_nothing() {
        let policy = Policy::parse("");
        assert!(!policy.is_active());
        assert_eq!(Policy::parse(" , *, null"), policy);
        assert!(policy.response_headers(Some("https://app.example.com")).is_empty());
        assert_eq!(names(&policy.preflight_headers(Some("https://app.example.com"), "GET")), ["allow"]);
    }

    #[test]
    fn response_headers() {
        let policy = Policy::parse("https://app.example.com");
        let headers = policy.response_headers(Some("https://app.example.com"));
        assert_eq!(names(&headers), ["access-control-allow-origin", "access-control-expose-headers", "vary"]);
        assert_eq!(headers[0].1, "https://app.example.com");
        assert!(headers[1].1.contains("Content-Disposition") && headers[1].1.contains("Retry-After"));
        // A foreign origin only learns that the answer varies by origin.
        assert_eq!(policy.response_headers(Some("https://evil.example.com")), [("vary", "Origin".to_string())]);
        assert_eq!(policy.response_headers(None), [("vary", "Origin".to_string())]);
    }

    #[test]
    fn preflight_headers() {
        let policy = Policy::parse("https://app.example.com");
        let headers = policy.preflight_headers(Some("https://app.example.com"), "GET, HEAD");
        let get = |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(get("access-control-allow-origin"), Some("https://app.example.com"));
        assert_eq!(get("access-control-allow-methods"), Some("GET, HEAD"));
        assert_eq!(get("access-control-allow-headers"), Some(ALLOW_HEADERS));
        assert_eq!(get("access-control-max-age"), Some("600"));
        assert_eq!(get("vary"), Some("Origin"));
        let foreign = policy.preflight_headers(Some("https://evil.example.com"), "POST");
        assert_eq!(names(&foreign), ["allow", "vary"]);
    }
}
