//! The tus 1.0.0 protocol's pure parts, for the gateway's resumable uploads (`/uploads`): the
//! version and extensions it speaks, the `Upload-Metadata` header, and the `Upload-Expires`
//! date. See <https://tus.io/protocols/resumable-upload>.

use std::collections::BTreeMap;

use base64::Engine;

/// The protocol version spoken (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// The extensions supported (`Tus-Extension`).
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
/// The content type of a `PATCH` body (and of a creation request that carries data).
pub const OFFSET_CONTENT_TYPE: &str = "application/offset+octet-stream";
/// Most metadata pairs accepted, and longest header.
const MAX_PAIRS: usize = 32;
const MAX_HEADER_BYTES: usize = 8192;

/// Parses `Upload-Metadata`: comma-separated pairs of a key and a Base64 value (the value may
/// be absent: an empty string). Keys are ASCII without spaces or commas and unique; values must
/// decode to UTF-8 text. An error says what is wrong, for a 400.
pub fn parse_metadata(header: &str) -> Result<BTreeMap<String, String>, String> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(format!("Upload-Metadata is longer than {MAX_HEADER_BYTES} bytes"));
    }
    let mut pairs = BTreeMap::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ').filter(|p| !p.is_empty());
        let key = parts.next().unwrap_or_default();
        let value = parts.next();
        if parts.next().is_some() {
            return Err(format!("Upload-Metadata pair {pair:?} has more than a key and a value"));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(format!("Upload-Metadata key {key:?} is not printable ASCII"));
        }
        let value = match value {
            None => String::new(),
            Some(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| format!("Upload-Metadata value of {key:?} is not Base64"))?;
                String::from_utf8(bytes).map_err(|_| format!("Upload-Metadata value of {key:?} is not UTF-8 text"))?
            }
        };
        if pairs.insert(key.to_string(), value).is_some() {
            return Err(format!("Upload-Metadata names {key:?} twice"));
        }
        if pairs.len() > MAX_PAIRS {
            return Err(format!("Upload-Metadata has more than {MAX_PAIRS} pairs"));
        }
    }
    Ok(pairs)
}

/// `Upload-Metadata` for `pairs` (what a client sends; the tests use it).
pub fn format_metadata<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(key, value)| format!("{key} {}", base64::engine::general_purpose::STANDARD.encode(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// An HTTP date (`Upload-Expires`) for Unix seconds.
pub fn http_date(unix_secs: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs))
}

/// A byte count header (`Upload-Length`, `Upload-Offset`): digits only.
pub fn parse_length(value: &str) -> Option<u64> {
    let value = value.trim();
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_as_tus_clients_send_it() {
        // tus-js-client: `filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential`.
        let parsed = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").unwrap();
        assert_eq!(parsed["filename"], "world_domination_plan.pdf");
        assert_eq!(parsed["is_confidential"], "");
        let round = parse_metadata(&format_metadata([("filename", "vidéo 1.mp4"), ("format", "flac")])).unwrap();
        assert_eq!(round["filename"], "vidéo 1.mp4");
        assert_eq!(round["format"], "flac");
        assert!(parse_metadata("").unwrap().is_empty());
    }

    #[test]
    fn malformed_metadata_is_refused_with_a_reason() {
        assert_eq!(parse_metadata("a Zg==,a Zg==").unwrap_err(), "Upload-Metadata names \"a\" twice");
        assert_eq!(parse_metadata("a !!!").unwrap_err(), "Upload-Metadata value of \"a\" is not Base64");
        assert_eq!(parse_metadata("a /w==").unwrap_err(), "Upload-Metadata value of \"a\" is not UTF-8 text");
        assert_eq!(parse_metadata("a Zg== Zg==").unwrap_err(), "Upload-Metadata pair \"a Zg== Zg==\" has more than a key and a value");
        assert!(parse_metadata(&"k Zg==,".repeat(10_000)).is_err());
        let many: Vec<String> = (0..40).map(|i| format!("k{i} Zg==")).collect();
        assert_eq!(parse_metadata(&many.join(",")).unwrap_err(), "Upload-Metadata has more than 32 pairs");
    }

    #[test]
    fn dates_and_lengths() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_600_000), "Sun, 06 Dec 2026 23:33:20 GMT");
        assert_eq!(parse_length("1024"), Some(1024));
        assert_eq!(parse_length(" 7 "), Some(7));
        for bad in ["", "-1", "1e3", "0x10", "99999999999999999999999"] {
            assert_eq!(parse_length(bad), None, "{bad}");
        }
    }
}
