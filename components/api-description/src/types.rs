//! Shapes only the description needs: binary bodies, the multipart upload form, and the
//! conversion options as query parameters (the names `job_model::options` parses; a unit test
//! holds the two lists equal).

use utoipa::{IntoParams, ToSchema};

/// A file's bytes (a video to convert, or the audio made from it).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(#[allow(dead_code)] Vec<u8>);

/// `POST /upload` as a browser form sends it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The video (or audio) file; its part's file name names the job.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// How to convert: what `POST /upload`, `POST /jobs/{id}/retry`, a resumable upload's
/// `Upload-Metadata` and a preset's `params` take, by the same names.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ConversionParams {
    /// Output format (any case), one of `GET /formats` (default mp3).
    #[param(example = "mp3")]
    format: Option<String>,
    /// Constant bitrate in kbps, one the format lists for the output's sample rate
    /// (`GET /formats` `bitrates`, `bitrates_by_rate`).
    #[param(example = 192)]
    bitrate: Option<u32>,
    /// Variable bitrate quality, 0 best to 9 smallest, where the format has one (`vbr`).
    #[param(minimum = 0, maximum = 9)]
    vbr: Option<u8>,
    /// Compression level, one the plugin lists (`GET /formats` `levels`).
    #[param(minimum = 0, maximum = 12)]
    level: Option<u8>,
    /// Trim: start, seconds (`12.5`) or `[hh:]mm:ss[.mmm]`; sample-accurate. A start past the
    /// end fails the job.
    #[param(pattern = r"^([0-9]+:){0,2}[0-9]+(\.[0-9]+)?$", example = "1:30")]
    start: Option<String>,
    /// Trim: end, same forms, after `start`.
    #[param(pattern = r"^([0-9]+:){0,2}[0-9]+(\.[0-9]+)?$")]
    end: Option<String>,
    /// Output sample rate in Hz (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000,
    /// 88200, 96000, 176400 or 192000), one the format's plugin takes (`GET /formats`
    /// `sample_rates`; empty: any).
    #[param(minimum = 8000, maximum = 192000, example = 44100)]
    rate: Option<u32>,
    /// Output channels, 1 or 2, at most the plugin's `max_channels`.
    #[param(minimum = 1, maximum = 2)]
    channels: Option<u8>,
    /// Audio stream to convert, by index among the file's audio streams (the job's
    /// `media.audio_streams`); default the file's default. A track the file lacks fails the job.
    #[param(minimum = 0, maximum = 63)]
    track: Option<u32>,
    /// Loudness target in LUFS from -70 to -5 (`-16`), or `podcast` (-16), `broadcast` (-23),
    /// `streaming` (-14): EBU R128 measuring pass, then one gain under the true-peak ceiling.
    #[param(example = "podcast")]
    normalize: Option<String>,
    /// True-peak ceiling in dBTP for `normalize` (default -1); only with `normalize`.
    #[param(minimum = -9, maximum = 0)]
    true_peak: Option<f64>,
    /// Title tag, overriding the source's.
    #[param(min_length = 1, max_length = 200)]
    title: Option<String>,
    /// Artist tag, overriding the source's.
    #[param(min_length = 1, max_length = 200)]
    artist: Option<String>,
    /// Album tag, overriding the source's.
    #[param(min_length = 1, max_length = 200)]
    album: Option<String>,
    /// `auto` (default): a lit frame of the video as the cover where the format has one;
    /// `none`: no cover.
    #[param(inline)]
    cover: Option<Cover>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Cover {
    Auto,
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters described are the options the parser knows, no more, no fewer.
    #[test]
    fn conversion_params_are_the_parsers_options() {
        let described: Vec<String> =
            ConversionParams::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)).into_iter().map(|p| p.name).collect();
        let parsed: Vec<String> = job_model::options::OPTION_PARAMS.iter().map(|s| s.to_string()).collect();
        let (mut a, mut b) = (described.clone(), parsed.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "described {described:?}, parsed {parsed:?}");
    }
}
