//! Content negotiation for downloads: which `Content-Type` a file is served as.
//!
//! The audio is served as its format's type (`audio/mpeg`, …). A client that accepts only
//! `application/octet-stream` (as generated API clients and some download tools ask) gets the
//! same bytes labelled so; anything else, or no `Accept`, gets the format's type. A download is
//! never refused for its `Accept` (no 406): the bytes are what they are.

/// The type to label a file of `stored` type with, for a request's `Accept` header.
pub fn served_type<'a>(accept: Option<&str>, stored: &'a str) -> &'a str {
    let Some(accept) = accept else { return stored };
    let (stored_main, _) = stored.split_once('/').unwrap_or((stored, ""));
    let ranges = accept.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let range = parts.next()?.trim().to_ascii_lowercase();
        let refused = parts.any(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0));
        (!range.is_empty() && !refused).then_some(range)
    });
    let mut octet_stream = false;
    for range in ranges {
        if range == "*/*" || range.eq_ignore_ascii_case(stored) || range == format!("{}/*", stored_main.to_ascii_lowercase()) {
            return stored;
        }
        octet_stream |= range == "application/octet-stream";
    }
    if octet_stream { "application/octet-stream" } else { stored }
}

#[cfg(test)]
mod tests {
    use super::served_type;

    #[test]
    fn octet_stream_only_when_asked_for_alone() {
        let mp3 = "audio/mpeg";
        for (accept, want) in [
            (None, mp3),
            (Some("application/octet-stream"), "application/octet-stream"),
            (Some("Application/Octet-Stream; q=0.9"), "application/octet-stream"),
            (Some("application/octet-stream, audio/*"), mp3),
            (Some("application/octet-stream, */*;q=0.1"), mp3),
            (Some("audio/mpeg, application/octet-stream"), mp3),
            (Some("application/json"), mp3),
            (Some("application/octet-stream;q=0"), mp3),
            (Some(""), mp3),
        ] {
            assert_eq!(served_type(accept, mp3), want, "Accept: {accept:?}");
        }
    }
}
