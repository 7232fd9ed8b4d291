//! HTTP `Range` requests (RFC 9110 §14) for downloads: one byte range, or the whole file.

/// An inclusive byte range `start..=end` within a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` header value for this range of a `total`-byte file.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole file with 200. Also used for syntactically unknown
    /// units and for several ranges, which RFC 9110 lets a server ignore.
    Full,
    /// Serve this part with 206.
    Partial(ByteRange),
    /// Answer 416 with `Content-Range: bytes */total`.
    Unsatisfiable,
}

/// Interprets a `Range` header against a file of `total` bytes.
pub fn parse_range(header: Option<&str>, total: u64) -> RangeRequest {
    let Some(header) = header else { return RangeRequest::Full };
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) { None } else { s.parse().ok() }
    };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N : the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if total > 0 => {
                RangeRequest::Partial(ByteRange { start: total.saturating_sub(n), end: total - 1 })
            }
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        // bytes=A- : from A to the end.
        (false, true) => match parse(first) {
            Some(start) if start < total => RangeRequest::Partial(ByteRange { start, end: total - 1 }),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= total {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial(ByteRange { start, end: end.min(total - 1) })
                }
            }
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), part(0, 99));
        assert_eq!(parse_range(Some("bytes=50-1000"), 100), part(50, 99));
        assert_eq!(parse_range(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=9-1"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=x-y"), 100), RangeRequest::Full);
        assert_eq!(part(0, 9), parse_range(Some("bytes=0-9"), 100));
        assert_eq!(ByteRange { start: 0, end: 9 }.content_range(100), "bytes 0-9/100");
    }
}
