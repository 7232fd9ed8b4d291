//! File names and formats: what a user may ask for and what the download is called.

/// Longest accepted source file name, in bytes.
pub const MAX_SOURCE_NAME: usize = 255;

/// Cleans a client-supplied file name: keeps the last path segment, drops control characters,
/// and falls back to `upload` when nothing usable is left.
pub fn sanitize_source_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let mut out = String::new();
    for c in cleaned.chars() {
        if out.len() + c.len_utf8() > MAX_SOURCE_NAME {
            break;
        }
        out.push(c);
    }
    if out.is_empty() || out == "." || out == ".." { "upload".to_string() } else { out }
}

/// The download's file name: the source name with its extension replaced by the format's.
pub fn output_name(source_name: &str, extension: &str) -> String {
    let stem = match source_name.rfind('.') {
        Some(0) | None => source_name,
        Some(dot) => &source_name[..dot],
    };
    format!("{stem}.{extension}")
}

/// A `Content-Disposition: attachment` value with an ASCII fallback and the exact UTF-8 name
/// (RFC 6266 / RFC 8187).
pub fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A format name is 1–16 characters of `[a-z0-9-]`.
pub fn is_valid_format_name(name: &str) -> bool {
    (1..=16).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// MIME type of a known output format (others are served as octet streams).
pub fn content_type_for_format(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "m4a" | "aac" => "audio/mp4",
        "aiff" => "audio/aiff",
        _ => "application/octet-stream",
    }
}

/// Bitrates an encoder may be asked for, in kbps.
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 8..=320;

/// Parses a `?bitrate=` value in kbps.
pub fn parse_bitrate(raw: &str) -> Result<u32, String> {
    let kbps: u32 = raw
        .parse()
        .map_err(|_| format!("bitrate must be a whole number of kbps, got {raw:?}"))?;
    if !BITRATE_RANGE.contains(&kbps) {
        return Err(format!(
            "bitrate must be between {} and {} kbps, got {kbps}",
            BITRATE_RANGE.start(),
            BITRATE_RANGE.end()
        ));
    }
    Ok(kbps)
}

/// Parses a `?vbr=` quality: 0 (best) to 9 (smallest).
pub fn parse_vbr_quality(raw: &str) -> Result<u8, String> {
    match raw.parse::<u8>() {
        Ok(q) if q <= 9 => Ok(q),
        _ => Err(format!("vbr must be a quality from 0 (best) to 9 (smallest), got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_paths_and_controls() {
        assert_eq!(sanitize_source_name("C:\\videos\\talk.mp4"), "talk.mp4");
        assert_eq!(sanitize_source_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_source_name("a\u{0}b\r\n.mp4"), "ab.mp4");
        assert_eq!(sanitize_source_name(""), "upload");
        assert_eq!(sanitize_source_name(".."), "upload");
        assert!(sanitize_source_name(&"é".repeat(400)).len() <= MAX_SOURCE_NAME);
    }

    #[test]
    fn output_names_replace_the_extension() {
        assert_eq!(output_name("talk.final.mp4", "mp3"), "talk.final.mp3");
        assert_eq!(output_name("noext", "wav"), "noext.wav");
        assert_eq!(output_name(".hidden", "mp3"), ".hidden.mp3");
    }

    #[test]
    fn content_disposition_escapes() {
        assert_eq!(
            content_disposition("a \"b\".mp3"),
            "attachment; filename=\"a _b_.mp3\"; filename*=UTF-8''a%20%22b%22.mp3"
        );
        assert!(content_disposition("été.mp3").contains("filename*=UTF-8''%C3%A9t%C3%A9.mp3"));
    }

    #[test]
    fn formats_and_bitrates() {
        assert!(is_valid_format_name("mp3"));
        assert!(is_valid_format_name("mp3-lame"));
        assert!(!is_valid_format_name("MP3"));
        assert!(!is_valid_format_name("../x"));
        assert!(!is_valid_format_name(""));
        assert_eq!(parse_bitrate("192"), Ok(192));
        assert!(parse_bitrate("0").is_err());
        assert!(parse_bitrate("999").is_err());
        assert!(parse_bitrate("12k").is_err());
        assert_eq!(content_type_for_format("mp3"), "audio/mpeg");
        assert_eq!(parse_vbr_quality("0"), Ok(0));
        assert_eq!(parse_vbr_quality("9"), Ok(9));
        assert!(parse_vbr_quality("10").is_err());
        assert!(parse_vbr_quality("-1").is_err());
    }
}
