//! Builds the user-facing [`MediaInfo`] of an opened file: a short container name (FFmpeg's
//! demuxer names cover families like "mov,mp4,m4a,3gp,3g2,mj2", so they are refined from the
//! brand / codecs), the codec name, duration and tags from container then stream metadata.

use std::ffi::CStr;

use ffmpeg_sys_next as ff;

use super::ffi::{FormatContext, cstr, dict_get};
use super::{MediaInfo, StreamInfo, Tags};

/// Longest tag value kept (characters); longer values are cut.
pub(super) const MAX_TAG_CHARS: usize = 1024;

pub(super) fn media_info(
    format: &FormatContext,
    audio: *const ff::AVStream,
    audio_indices: &[std::ffi::c_int],
    track: u32,
    default_track: u32,
) -> MediaInfo {
    // SAFETY: `audio` is one of the live streams of `format`, and its codecpar is set.
    let (stream, par) = unsafe { (&*audio, &*(*audio).codecpar) };
    let streams = audio_indices
        .iter()
        .enumerate()
        .map(|(position, &index)| {
            let st = format.streams()[index as usize];
            // SAFETY: live stream of a live context, with codecpar set.
            let (st_ref, st_par) = unsafe { (&*st, &*(*st).codecpar) };
            StreamInfo {
                codec: codec_name(st),
                sample_rate: st_par.sample_rate.max(0) as u32,
                channels: st_par.ch_layout.nb_channels.clamp(0, 255) as u8,
                language: dict_get(st_ref.metadata, c"language").and_then(clean).filter(|l| l != "und"),
                title: dict_get(st_ref.metadata, c"title").and_then(clean),
                default: position as u32 == default_track,
            }
        })
        .collect();
    let has_video = format.streams().iter().any(|&st| {
        // SAFETY: live stream of a live context, with codecpar set.
        unsafe {
            (*(*st).codecpar).codec_type == ff::AVMediaType::AVMEDIA_TYPE_VIDEO
                && (*st).disposition & ff::AV_DISPOSITION_ATTACHED_PIC as i32 == 0
        }
    });
    MediaInfo {
        container: container_name(format),
        codec: codec_name(audio),
        duration_secs: duration_secs(format, stream),
        sample_rate: par.sample_rate.max(0) as u32,
        channels: par.ch_layout.nb_channels.clamp(0, 255) as u8,
        audio_streams: audio_indices.len() as u32,
        tags: tags(format.get().metadata, stream.metadata),
        streams,
        track,
        bits_per_sample: bits_per_sample(par),
        has_video,
    }
}

/// FFmpeg's short name of a stream's codec, e.g. `aac`.
pub(super) fn codec_name(stream: *const ff::AVStream) -> String {
    // SAFETY: a live stream with codecpar; avcodec_get_name returns a static string for any id.
    cstr(unsafe { ff::avcodec_get_name((*(*stream).codecpar).codec_id) }).unwrap_or_else(|| "unknown".into())
}

/// Significant bits of a stream's samples: what a lossless or PCM stream says it carries;
/// lossy codecs (which have no such depth) count as 16.
fn bits_per_sample(par: &ff::AVCodecParameters) -> u8 {
    use ff::AVCodecID::*;
    let lossless = matches!(par.codec_id, AV_CODEC_ID_FLAC | AV_CODEC_ID_ALAC | AV_CODEC_ID_WAVPACK | AV_CODEC_ID_TTA);
    // PCM codec ids form one range, up to the first ADPCM id.
    let pcm = (AV_CODEC_ID_PCM_S16LE as u32..AV_CODEC_ID_ADPCM_IMA_QT as u32).contains(&(par.codec_id as u32));
    let bits = if par.bits_per_raw_sample > 0 { par.bits_per_raw_sample } else if pcm { par.bits_per_coded_sample } else { 0 };
    if (lossless || pcm) && bits > 16 { bits.min(32) as u8 } else { 16 }
}

fn container_name(format: &FormatContext) -> String {
    let ctx = format.get();
    // SAFETY: an opened context always has its input format set; `name` is a static string.
    let names = if ctx.iformat.is_null() {
        None
    } else {
        cstr(unsafe { (*ctx.iformat).name })
    };
    let names = names.unwrap_or_else(|| "unknown".into());
    let first = names.split(',').next().unwrap_or_default().to_string();
    match first.as_str() {
        "mov" => {
            let brand = dict_get(ctx.metadata, c"major_brand").unwrap_or_default();
            let brand = brand.trim();
            if brand.is_empty() || brand == "qt" {
                "mov".into()
            } else if brand.starts_with("M4A")
                || brand.starts_with("M4B")
                || brand.starts_with("M4P")
            {
                "m4a".into()
            } else if brand.starts_with("3g") {
                "3gp".into()
            } else {
                "mp4".into()
            }
        }
        "matroska" => {
            let webm_codecs = format.streams().iter().all(|&st| {
                // SAFETY: live stream of a live context, with codecpar set.
                let id = unsafe { (*(*st).codecpar).codec_id };
                use ff::AVCodecID::*;
                matches!(
                    id,
                    AV_CODEC_ID_VP8
                        | AV_CODEC_ID_VP9
                        | AV_CODEC_ID_AV1
                        | AV_CODEC_ID_OPUS
                        | AV_CODEC_ID_VORBIS
                        | AV_CODEC_ID_WEBVTT
                )
            });
            if webm_codecs {
                "webm".into()
            } else {
                "matroska".into()
            }
        }
        _ => first,
    }
}

fn duration_secs(format: &FormatContext, stream: &ff::AVStream) -> Option<f64> {
    let ctx = format.get();
    if ctx.duration != ff::AV_NOPTS_VALUE && ctx.duration > 0 {
        return Some(ctx.duration as f64 / f64::from(ff::AV_TIME_BASE));
    }
    let tb = stream.time_base;
    if stream.duration != ff::AV_NOPTS_VALUE && stream.duration > 0 && tb.den > 0 && tb.num > 0 {
        return Some(stream.duration as f64 * f64::from(tb.num) / f64::from(tb.den));
    }
    None
}

fn tags(container: *const ff::AVDictionary, stream: *const ff::AVDictionary) -> Tags {
    let find = |keys: &[&CStr]| {
        [container, stream].into_iter().find_map(|dict| {
            keys.iter()
                .find_map(|key| dict_get(dict, key).and_then(clean))
        })
    };
    Tags {
        title: find(&[c"title"]),
        artist: find(&[c"artist", c"album_artist", c"author", c"performer"]),
        album: find(&[c"album"]),
        year: find(&[c"date", c"year", c"date_released"]).map(year),
        comment: find(&[c"comment", c"description"]),
        genre: find(&[c"genre"]),
        track: find(&[c"track"]),
    }
}

/// Trims, drops control characters and empty values, caps the length.
fn clean(value: String) -> Option<String> {
    let value: String = value
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(MAX_TAG_CHARS)
        .collect();
    (!value.is_empty()).then_some(value)
}

/// "2024-05-01" (or "2024") → "2024"; anything else is kept as written.
fn year(date: String) -> String {
    let digits = date.chars().take_while(char::is_ascii_digit).count();
    if digits == 4 {
        date[..4].to_string()
    } else {
        date
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_tag_cleanup() {
        assert_eq!(year("2024-05-01T00:00:00Z".into()), "2024");
        assert_eq!(year("2024".into()), "2024");
        assert_eq!(year("May 2024".into()), "May 2024");
        assert_eq!(clean("  hi\u{0}\n ".into()).as_deref(), Some("hi"));
        assert_eq!(clean(" \t ".into()), None);
        assert_eq!(clean("x".repeat(5000)).unwrap().len(), MAX_TAG_CHARS);
    }
}
