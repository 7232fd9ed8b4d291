//! The audio options of an upload (issue 8): trim, rate, channels, track, loudness
//! normalization, tag overrides, cover and compression level. This module owns their parsing
//! from query values into typed values with a precise reason for every refusal, so the gateway
//! answers a 400 before anything is stored; what depends on the chosen plugin is checked by
//! [`crate::FormatInfo::check_options`], and what depends on the file itself (the track exists,
//! the start is inside the audio) by the worker, which fails the job with a readable reason.

use serde::{Deserialize, Serialize};

use crate::ConversionOptions;

/// Longest source this service accepts a time for (100 hours), in seconds.
pub const MAX_TIME_SECS: f64 = 360_000.0;

/// Output sample rates a user may ask for: the usual ones, so a typo like 12345 is refused.
pub const STANDARD_RATES: [u32; 13] =
    [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000];

/// Highest audio track index accepted (a file with more audio streams is not a music file).
pub const MAX_TRACK: u32 = 63;

/// Integrated loudness targets a user may ask for, in LUFS.
pub const LOUDNESS_RANGE: std::ops::RangeInclusive<f64> = -70.0..=-5.0;
/// True-peak ceilings a user may ask for, in dBTP.
pub const TRUE_PEAK_RANGE: std::ops::RangeInclusive<f64> = -9.0..=0.0;
/// The ceiling when none is given: EBU R128's -1 dBTP.
pub const DEFAULT_TRUE_PEAK: f64 = -1.0;

/// Longest `title` / `artist` / `album`, in characters.
pub const MAX_TAG_CHARS: usize = 200;

/// Highest compression level syntax accepts (the plugin's `levels` decide what is valid).
pub const MAX_LEVEL: u8 = 12;

/// Loudness normalization (EBU R128 / ITU-R BS.1770): a measuring pass, then one gain, held
/// under the true-peak ceiling.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Integrated loudness to reach, LUFS (e.g. -16 podcasts, -23 broadcast).
    pub target_lufs: f64,
    /// The output's true peak stays at or under this, dBTP.
    pub true_peak_dbtp: f64,
}

/// Parses a time: seconds (`90`, `12.5`) or `[hh:]mm:ss[.fff]` (`1:30`, `01:02:03.250`).
pub fn parse_time(name: &str, raw: &str) -> Result<f64, String> {
    let bad = || {
        format!("{name} must be seconds (e.g. 12.5) or hh:mm:ss.mmm (e.g. 00:01:02.500), got {raw:?}")
    };
    let raw_trimmed = raw.trim();
    let parts: Vec<&str> = raw_trimmed.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let number = |p: &str, fraction: bool| -> Result<f64, String> {
        let ok = p.bytes().all(|b| b.is_ascii_digit() || (fraction && b == b'.'))
            && p.bytes().filter(|&b| b == b'.').count() <= 1
            && !p.starts_with('.')
            && !p.ends_with('.');
        if !ok {
            return Err(bad());
        }
        p.parse::<f64>().map_err(|_| bad())
    };
    let (whole, last) = parts.split_at(parts.len() - 1);
    let seconds = number(last[0], true)?;
    if !whole.is_empty() && seconds >= 60.0 {
        return Err(format!("{name}: the seconds of {raw:?} must be under 60"));
    }
    let mut total = seconds;
    for (i, p) in whole.iter().rev().enumerate() {
        let value = number(p, false)?;
        if i == 0 && whole.len() == 2 && value >= 60.0 {
            return Err(format!("{name}: the minutes of {raw:?} must be under 60"));
        }
        total += value * 60f64.powi(i as i32 + 1);
    }
    if !total.is_finite() || total > MAX_TIME_SECS {
        return Err(format!("{name} must be at most {MAX_TIME_SECS} seconds, got {raw:?}"));
    }
    Ok(total)
}

/// Checks a trim: `end` after `start`.
pub fn check_trim(start: Option<f64>, end: Option<f64>) -> Result<(), String> {
    match (start, end) {
        (_, Some(end)) if end <= 0.0 => Err(format!("end must be after the beginning of the audio, got {end} s")),
        (Some(start), Some(end)) if end <= start => {
            Err(format!("end ({end} s) must be after start ({start} s)"))
        }
        _ => Ok(()),
    }
}

/// Parses `?rate=`: one of [`STANDARD_RATES`].
pub fn parse_rate(raw: &str) -> Result<u32, String> {
    match raw.trim().parse::<u32>() {
        Ok(rate) if STANDARD_RATES.contains(&rate) => Ok(rate),
        _ => {
            let list: Vec<String> = STANDARD_RATES.iter().map(u32::to_string).collect();
            Err(format!("rate must be one of {} (Hz), got {raw:?}", list.join(", ")))
        }
    }
}

/// Parses `?channels=`: 1 (mono) or 2 (stereo).
pub fn parse_channels(raw: &str) -> Result<u8, String> {
    match raw.trim() {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(format!("channels must be 1 (mono) or 2 (stereo), got {raw:?}")),
    }
}

/// Parses `?track=`: the index of an audio stream among the file's audio streams, from 0.
pub fn parse_track(raw: &str) -> Result<u32, String> {
    match raw.trim().parse::<u32>() {
        Ok(track) if track <= MAX_TRACK => Ok(track),
        _ => Err(format!(
            "track must be the index of an audio stream of the file, 0 to {MAX_TRACK} (0 is the first; GET /jobs/{{id}} lists them), got {raw:?}"
        )),
    }
}

/// Parses `?normalize=`: a target in LUFS (`-16`), or `podcast` (-16), `broadcast` (-23) or
/// `streaming` (-14).
pub fn parse_loudness_target(raw: &str) -> Result<f64, String> {
    let value = match raw.trim().to_ascii_lowercase().as_str() {
        "podcast" => -16.0,
        "broadcast" => -23.0,
        "streaming" => -14.0,
        other => other.strip_suffix("lufs").unwrap_or(other).trim().parse::<f64>().unwrap_or(f64::NAN),
    };
    if !LOUDNESS_RANGE.contains(&value) {
        return Err(format!(
            "normalize must be a loudness target from {} to {} LUFS (e.g. -16), or podcast, broadcast or streaming, got {raw:?}",
            LOUDNESS_RANGE.start(),
            LOUDNESS_RANGE.end()
        ));
    }
    Ok(value)
}

/// Parses `?true_peak=`: the ceiling in dBTP.
pub fn parse_true_peak(raw: &str) -> Result<f64, String> {
    let value = raw.trim().parse::<f64>().unwrap_or(f64::NAN);
    if !TRUE_PEAK_RANGE.contains(&value) {
        return Err(format!(
            "true_peak must be a ceiling from {} to {} dBTP (e.g. -1), got {raw:?}",
            TRUE_PEAK_RANGE.start(),
            TRUE_PEAK_RANGE.end()
        ));
    }
    Ok(value)
}

/// Parses a `title`, `artist` or `album` override: 1 to [`MAX_TAG_CHARS`] characters, no
/// control characters. "Control" is read widely, since a tag is shown to people by players and
/// file managers: the C0 and C1 controls and DEL (`\u{85}` included, which `trim` would
/// otherwise take for a space and drop silently), the bidirectional formatting characters that
/// can make a name read backwards (`\u{202e}` and the rest of Unicode's bidi controls) and the
/// line and paragraph separators. They are refused wherever they stand, with the character and
/// its position, before the ordinary spaces around the value are trimmed.
pub fn parse_tag(name: &str, raw: &str) -> Result<String, String> {
    if let Some((position, c)) = raw.chars().enumerate().find(|(_, c)| is_refused_in_tags(*c)) {
        return Err(format!(
            "{name} must not contain control or bidirectional formatting characters: {} at character {}",
            describe_char(c),
            position + 1
        ));
    }
    let value = raw.trim();
    if value.is_empty() {
        return Err(format!("{name} must not be empty (leave it out to keep the source's)"));
    }
    let chars = value.chars().count();
    if chars > MAX_TAG_CHARS {
        return Err(format!("{name} must be at most {MAX_TAG_CHARS} characters, got {chars}"));
    }
    Ok(value.to_string())
}

/// Whether a tag may not hold `c`: a control (C0, DEL, C1), a bidirectional formatting
/// character (the Arabic letter mark, the left-to-right and right-to-left marks, embeddings,
/// overrides and isolates) or a line or paragraph separator. Other format characters stay:
/// the zero-width joiner holds emoji sequences together.
pub fn is_refused_in_tags(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `U+202E (right-to-left override)`, for a refusal's detail.
fn describe_char(c: char) -> String {
    let name = match c {
        '\u{85}' => " (next line)",
        '\u{202e}' => " (right-to-left override)",
        '\u{202d}' => " (left-to-right override)",
        '\u{202a}'..='\u{202c}' => " (bidirectional embedding)",
        '\u{2066}'..='\u{2069}' => " (bidirectional isolate)",
        '\u{061c}' | '\u{200e}' | '\u{200f}' => " (bidirectional mark)",
        '\u{2028}' => " (line separator)",
        '\u{2029}' => " (paragraph separator)",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
}

/// Parses `?cover=`: `none` leaves the cover out; `auto` (the default) takes a frame of the
/// video when there is one.
pub fn parse_cover(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(false),
        "auto" => Ok(true),
        _ => Err(format!("cover must be none or auto, got {raw:?}")),
    }
}

/// Parses `?level=`: a compression level (which ones exist depends on the format).
pub fn parse_level(raw: &str) -> Result<u8, String> {
    match raw.trim().parse::<u8>() {
        Ok(level) if level <= MAX_LEVEL => Ok(level),
        _ => Err(format!("level must be a whole number from 0 to {MAX_LEVEL}, got {raw:?}")),
    }
}

/// Why an upload's options were refused: the API error's title (`invalid rate`, `conflicting
/// options`, …) and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

/// The title of a refused value of option `name`.
fn invalid(name: &str) -> &'static str {
    match name {
        "bitrate" => "invalid bitrate",
        "vbr" => "invalid vbr",
        "level" => "invalid level",
        "start" => "invalid start",
        "end" => "invalid end",
        "rate" => "invalid rate",
        "channels" => "invalid channels",
        "track" => "invalid track",
        "normalize" => "invalid normalize",
        "true_peak" => "invalid true_peak",
        "title" => "invalid title",
        "artist" => "invalid artist",
        "album" => "invalid album",
        "cover" => "invalid cover",
        _ => "invalid option",
    }
}

/// The options of a conversion to `format` from raw values by option name, as `POST /upload`'s
/// query, a resumable upload's metadata and `mp3edge convert`'s flags give them: each value
/// through its parser, and how they combine checked (a bitrate or a VBR quality, `true_peak`
/// only with `normalize`, the end after the start). Whether the format's plugin takes them is
/// the caller's to check (`FormatInfo::check_options`), as is the format's name.
pub fn from_params(format: String, param: &dyn Fn(&str) -> Option<String>) -> Result<ConversionOptions, Refusal> {
    fn one<T>(param: &dyn Fn(&str) -> Option<String>, name: &'static str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>, Refusal> {
        param(name).map(|raw| parse(&raw)).transpose().map_err(|detail| Refusal { error: invalid(name), detail })
    }
    let conflict = |detail: &str| Refusal { error: "conflicting options", detail: detail.into() };
    let bitrate_kbps = one(param, "bitrate", crate::naming::parse_bitrate)?;
    let vbr_quality = one(param, "vbr", crate::naming::parse_vbr_quality)?;
    if bitrate_kbps.is_some() && vbr_quality.is_some() {
        return Err(conflict("ask for either ?bitrate= (constant) or ?vbr= (variable), not both"));
    }
    let start_secs = one(param, "start", |raw| parse_time("start", raw))?;
    let end_secs = one(param, "end", |raw| parse_time("end", raw))?;
    check_trim(start_secs, end_secs).map_err(|detail| Refusal { error: "invalid trim", detail })?;
    let target = one(param, "normalize", parse_loudness_target)?;
    let true_peak = one(param, "true_peak", parse_true_peak)?;
    if true_peak.is_some() && target.is_none() {
        return Err(conflict("true_peak is the ceiling of ?normalize=; give both"));
    }
    let normalize = target.map(|target_lufs| Normalize { target_lufs, true_peak_dbtp: true_peak.unwrap_or(DEFAULT_TRUE_PEAK) });
    Ok(ConversionOptions {
        bitrate_kbps,
        vbr_quality,
        level: one(param, "level", parse_level)?,
        start_secs,
        end_secs,
        sample_rate: one(param, "rate", parse_rate)?,
        channels: one(param, "channels", parse_channels)?,
        track: one(param, "track", parse_track)?,
        normalize,
        title: one(param, "title", |raw| parse_tag("title", raw))?,
        artist: one(param, "artist", |raw| parse_tag("artist", raw))?,
        album: one(param, "album", |raw| parse_tag("album", raw))?,
        cover: one(param, "cover", parse_cover)?.unwrap_or(true),
        ..ConversionOptions::new(format)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("start", "12.5"), Ok(12.5));
        assert_eq!(parse_time("start", "0"), Ok(0.0));
        assert_eq!(parse_time("start", "1:30"), Ok(90.0));
        assert_eq!(parse_time("start", "01:02:03.250"), Ok(3723.25));
        for bad in ["", "abc", "-1", "1:", ":5", "1:2:3:4", "1:61", "1:60:00", "1.5:00", "1e3", ".5", "5.", "inf", "NaN"] {
            assert!(parse_time("start", bad).is_err(), "{bad:?}");
        }
        assert!(parse_time("end", "999999").unwrap_err().contains("at most"));
        assert!(check_trim(Some(2.0), Some(1.0)).unwrap_err().contains("after start"));
        assert!(check_trim(Some(2.0), Some(2.0)).is_err());
        assert!(check_trim(None, Some(0.0)).is_err());
        assert!(check_trim(Some(0.5), Some(1.25)).is_ok());
        assert!(check_trim(Some(3.0), None).is_ok());
    }

    #[test]
    fn layouts_tracks_and_levels() {
        assert_eq!(parse_rate("44100"), Ok(44100));
        assert!(parse_rate("12345").unwrap_err().contains("22050"));
        assert_eq!(parse_channels("1"), Ok(1));
        assert!(parse_channels("3").unwrap_err().contains("1 (mono) or 2"));
        assert_eq!(parse_track("1"), Ok(1));
        assert!(parse_track("-1").is_err());
        assert!(parse_track("64").is_err());
        assert_eq!(parse_level("8"), Ok(8));
        assert!(parse_level("13").is_err());
    }

    #[test]
    fn loudness() {
        assert_eq!(parse_loudness_target("-16"), Ok(-16.0));
        assert_eq!(parse_loudness_target("-23 LUFS"), Ok(-23.0));
        assert_eq!(parse_loudness_target("podcast"), Ok(-16.0));
        assert_eq!(parse_loudness_target("Broadcast"), Ok(-23.0));
        for bad in ["abc", "0", "-80", "16", "nan", ""] {
            assert!(parse_loudness_target(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_true_peak("-1.5"), Ok(-1.5));
        assert!(parse_true_peak("1").is_err());
    }

    #[test]
    fn tags_and_cover() {
        assert_eq!(parse_tag("title", "  Talk  "), Ok("Talk".into()));
        assert!(parse_tag("title", &"x".repeat(201)).unwrap_err().contains("at most 200"));
        assert!(parse_tag("artist", " ").is_err());
        assert!(parse_tag("album", "a\u{7}b").is_err());
        // C1 controls (NEL is also Unicode white space: it must not be trimmed away) and bidi
        // formatting characters, with the character and where it stands.
        assert_eq!(
            parse_tag("title", "\u{85}Talk").unwrap_err(),
            "title must not contain control or bidirectional formatting characters: U+0085 (next line) at character 1"
        );
        assert_eq!(
            parse_tag("artist", "abc\u{202e}fdp.exe").unwrap_err(),
            "artist must not contain control or bidirectional formatting characters: U+202E (right-to-left override) at character 4"
        );
        for refused in ['\u{0}', '\t', '\n', '\u{7f}', '\u{80}', '\u{9f}', '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}'] {
            assert!(parse_tag("album", &format!("a{refused}b")).is_err(), "U+{:04X}", u32::from(refused));
        }
        // What people write is kept: accents, scripts, emoji joined by a zero-width joiner.
        for kept in ["Café Müller", "Ελληνικά", "عربي", "👩\u{200d}💻 Talk"] {
            assert_eq!(parse_tag("title", kept).as_deref(), Ok(kept));
        }
        assert_eq!(parse_cover("none"), Ok(false));
        assert_eq!(parse_cover("auto"), Ok(true));
        assert!(parse_cover("yes").is_err());
    }
}

/// The conversion options an upload (`POST /upload`'s query, `POST /uploads`' metadata), a
/// retry and a saved preset take, by name.
pub const OPTION_PARAMS: [&str; 15] = [
    "format", "bitrate", "vbr", "level", "start", "end", "rate", "channels", "track", "normalize", "true_peak",
    "title", "artist", "album", "cover",
];

/// Checks one option's value on its own, as an upload parses it (whether the chosen format's
/// plugin takes it, and how options combine, is checked when it is used).
pub fn check_param(name: &str, raw: &str) -> Result<(), String> {
    use crate::naming::{is_valid_format_name, parse_bitrate, parse_vbr_quality};
    match name {
        "format" if is_valid_format_name(&raw.to_ascii_lowercase()) => Ok(()),
        "format" => Err(format!("format must be a format's name, got {raw:?}")),
        "bitrate" => parse_bitrate(raw).map(drop),
        "vbr" => parse_vbr_quality(raw).map(drop),
        "level" => parse_level(raw).map(drop),
        "start" | "end" => parse_time(name, raw).map(drop),
        "rate" => parse_rate(raw).map(drop),
        "channels" => parse_channels(raw).map(drop),
        "track" => parse_track(raw).map(drop),
        "normalize" => parse_loudness_target(raw).map(drop),
        "true_peak" => parse_true_peak(raw).map(drop),
        "title" | "artist" | "album" => parse_tag(name, raw).map(drop),
        "cover" => parse_cover(raw).map(drop),
        other => Err(format!("unknown option {other:?}; the options are {}", OPTION_PARAMS.join(", "))),
    }
}
