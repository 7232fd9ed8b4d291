//! The audio flags of `mp3edge convert` and the output's format. The flags carry the HTTP API's
//! option names and take its values: each goes through the same `job_model::options` parser as
//! `POST /upload`'s query, and a refusal reads as the API's 400 (`invalid rate: rate must be one
//! of …`): parsing and combining are `job_model::options::from_params`, the gateway's own. The
//! format comes from OUT's extension as the loaded plugins declare their extensions.

use std::path::Path;

use anyhow::{Result, bail};
use job_model::{ConversionOptions, FormatInfo, options};

/// Extensions that are another spelling of a plugin's: the three-letter `.aif` of `.aiff`.
const EXTENSION_SPELLINGS: [(&str, &str); 1] = [("aif", "aiff")];

/// The format when nothing names one, as an upload without `?format=`.
const DEFAULT_FORMAT: &str = "mp3";

/// The audio options, as `POST /upload` takes them (docs/api.md, "Audio options").
#[derive(clap::Args, Debug, Default)]
pub struct AudioFlags {
    /// Output format, as `GET /formats` lists them (mp3, flac, opus, …). Default: OUT's
    /// extension, else mp3; needed for OUT `-`.
    #[arg(long, help_heading = "Audio")]
    pub format: Option<String>,
    /// Constant bitrate in kbps (formats that have one).
    #[arg(long, help_heading = "Audio")]
    pub bitrate: Option<String>,
    /// Variable-bitrate quality, 0 (best) to 9 (smallest), instead of a bitrate.
    #[arg(long, help_heading = "Audio")]
    pub vbr: Option<String>,
    /// Compression level (formats that have levels, e.g. flac 0 to 8).
    #[arg(long, help_heading = "Audio")]
    pub level: Option<String>,
    /// Trim: start this far into the source, in seconds (12.5) or [hh:]mm:ss[.fff].
    #[arg(long, help_heading = "Audio")]
    pub start: Option<String>,
    /// Trim: end this far into the source, in seconds or [hh:]mm:ss[.fff].
    #[arg(long, help_heading = "Audio")]
    pub end: Option<String>,
    /// Output sample rate in Hz (8000 to 192000; default: the source's).
    #[arg(long, help_heading = "Audio")]
    pub rate: Option<String>,
    /// Output channels: 1 (mono) or 2 (stereo).
    #[arg(long, help_heading = "Audio")]
    pub channels: Option<String>,
    /// Which audio stream of the source, from 0 (default: the file's default stream).
    #[arg(long, help_heading = "Audio")]
    pub track: Option<String>,
    /// Loudness normalization: a target in LUFS (-16), or podcast, broadcast or streaming.
    #[arg(long, allow_hyphen_values = true, help_heading = "Audio")]
    pub normalize: Option<String>,
    /// The true-peak ceiling of --normalize, in dBTP (-9 to 0; default -1).
    #[arg(long = "true-peak", visible_alias = "true_peak", allow_hyphen_values = true, help_heading = "Audio")]
    pub true_peak: Option<String>,
    /// Title tag (default: the source's).
    #[arg(long, allow_hyphen_values = true, help_heading = "Audio")]
    pub title: Option<String>,
    /// Artist tag (default: the source's).
    #[arg(long, allow_hyphen_values = true, help_heading = "Audio")]
    pub artist: Option<String>,
    /// Album tag (default: the source's).
    #[arg(long, allow_hyphen_values = true, help_heading = "Audio")]
    pub album: Option<String>,
    /// Cover picture: auto (a frame of the video, the default) or none.
    #[arg(long, help_heading = "Audio")]
    pub cover: Option<String>,
}

impl AudioFlags {
    /// The flag of option `name` of the API, as given.
    fn value(&self, name: &str) -> Option<String> {
        match name {
            "bitrate" => self.bitrate.clone(),
            "vbr" => self.vbr.clone(),
            "level" => self.level.clone(),
            "start" => self.start.clone(),
            "end" => self.end.clone(),
            "rate" => self.rate.clone(),
            "channels" => self.channels.clone(),
            "track" => self.track.clone(),
            "normalize" => self.normalize.clone(),
            "true_peak" => self.true_peak.clone(),
            "title" => self.title.clone(),
            "artist" => self.artist.clone(),
            "album" => self.album.clone(),
            "cover" => self.cover.clone(),
            _ => None,
        }
    }

    /// The options of a conversion to `format` (already chosen), parsed and combined by the
    /// same code as an upload's query, so a refusal reads as the API's 400.
    pub fn options(&self, format: &str) -> Result<ConversionOptions> {
        options::from_params(format.to_string(), &|name| self.value(name)).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }
}

/// The format whose plugin writes files named `.extension` (or whose name it is).
pub fn format_of_extension(extension: &str, formats: &[FormatInfo]) -> Option<String> {
    let extension = extension.to_ascii_lowercase();
    let extension = EXTENSION_SPELLINGS.iter().find(|(other, _)| *other == extension).map_or(extension.as_str(), |(_, ext)| ext);
    formats
        .iter()
        .find(|info| info.format == extension)
        .or_else(|| formats.iter().find(|info| info.extension.eq_ignore_ascii_case(extension)))
        .map(|info| info.format.clone())
}

/// The extensions OUT may have, for a refusal: `.mp3 (mp3), .aiff/.aif (aiff), …`.
fn known_extensions(formats: &[FormatInfo]) -> String {
    let mut listed: Vec<String> = formats
        .iter()
        .map(|info| {
            let mut spellings = vec![format!(".{}", info.extension)];
            spellings.extend(EXTENSION_SPELLINGS.iter().filter(|(_, ext)| *ext == info.extension).map(|(other, _)| format!(".{other}")));
            format!("{} ({})", spellings.join("/"), info.format)
        })
        .collect();
    listed.sort();
    listed.join(", ")
}

/// The format of a conversion to `output` (a named file; `None`: standard output or a name
/// of our choosing): `--format` when given, else the file's extension. A `--format` that
/// contradicts the extension is refused; so is a file whose extension names no format and
/// standard output, when `--format` is not given.
pub fn choose_format(flag: Option<&str>, output: Option<&Path>, to_stdout: bool, formats: &[FormatInfo]) -> Result<String> {
    let flag = flag.map(str::to_ascii_lowercase);
    let extension = output.and_then(|path| path.extension()).map(|ext| ext.to_string_lossy().into_owned());
    let implied = extension.as_deref().and_then(|ext| format_of_extension(ext, formats));
    match (flag, implied, output) {
        (Some(flag), Some(implied), Some(path)) if flag != implied => bail!(
            "--format {flag} does not match {}: .{} is the extension of {implied}\nhint: leave --format out, or name the output with the extension of {flag}",
            path.display(),
            extension.unwrap_or_default()
        ),
        (Some(flag), _, _) => Ok(flag),
        (None, Some(implied), _) => Ok(implied),
        (None, None, Some(path)) => match extension {
            Some(ext) => bail!(
                "cannot tell the format of {}: .{ext} is no format's extension; they are {}\nhint: pass --format NAME",
                path.display(),
                known_extensions(formats)
            ),
            None => bail!("cannot tell the format of {}: it has no extension\nhint: pass --format NAME", path.display()),
        },
        (None, None, None) if to_stdout => bail!("standard output has no extension to tell the format by\nhint: pass --format NAME"),
        (None, None, None) => Ok(DEFAULT_FORMAT.to_string()),
    }
}
