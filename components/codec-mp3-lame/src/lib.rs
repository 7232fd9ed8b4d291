//! MP3 codec plugin: interleaved s16 PCM in, MP3 (LAME) out, with an ID3v2 tag at the start
//! and a Xing/LAME info frame that the caller patches in at the end for exact durations.
//!
//! The encoder itself ([`Mp3Session`]) is plain Rust so it is tested natively, and a [`Codec`],
//! which the kit's `export_codec!` makes the component's `encoder` on wasm; `component` adds
//! the `segments` export (wasm only).

#[cfg(target_family = "wasm")]
mod component;
pub mod frames;
pub mod joiner;
pub mod segment;
mod xing;

use codec_plugin_kit::{Codec, CodecInfo};
use mp3lame_encoder::{
    BuildError, Builder, Encoder, FlushGap, InterleavedPcm, MonoPcm, Quality, VbrMode, ffi,
    max_required_buffer_size,
};
use std::ffi::{CStr, c_ushort};
use std::num::NonZeroU32;

/// Sample rates MP3 (MPEG-1, 2 and 2.5 layer III) can carry; the output keeps the input rate.
pub const SAMPLE_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
/// CBR bitrates accepted (kbps): the layer III bitrates of MPEG-1 and MPEG-2 from 32 up.
/// LAME uses the nearest bitrate the sample rate allows: at most 160 kbps at 16–24 kHz
/// (MPEG-2) and 64 kbps at 8–12 kHz (MPEG-2.5); 144 becomes 128 at 32–48 kHz (MPEG-1).
pub const BITRATES_KBPS: [u32; 15] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320,
];
/// CBR bitrate used when the config asks for neither a bitrate nor VBR (or the highest one
/// under it that the sample rate carries).
pub const DEFAULT_BITRATE_KBPS: u32 = 192;

/// The bitrates of [`BITRATES_KBPS`] an MP3 stream carries at `sample_rate` (empty at a rate
/// MP3 lacks): MPEG-1 layer III (32, 44.1, 48 kHz) has no 144 kbps, MPEG-2 (16, 22.05, 24 kHz)
/// stops at 160 and MPEG-2.5 (8, 11.025, 12 kHz) at 64. Asked for another, LAME would quietly
/// use the nearest, so a session refuses it instead.
pub fn bitrates_at(sample_rate: u32) -> Vec<u32> {
    let carried = |kbps: u32| match sample_rate {
        32000 | 44100 | 48000 => kbps != 144,
        16000 | 22050 | 24000 => kbps <= 160,
        8000 | 11025 | 12000 => kbps <= 64,
        _ => false,
    };
    BITRATES_KBPS.iter().copied().filter(|&kbps| carried(kbps)).collect()
}
/// Longest text copied into an ID3 frame, in characters.
const MAX_TAG_CHARS: usize = 250;

/// The session's types are the plugin kit's, shared by every codec. The tags become an ID3v2
/// tag (the genre as TCON, a name or an ID3v1 genre number; the track as TRCK), the cover's
/// bytes (JPEG, PNG or GIF) its APIC front cover.
pub use codec_plugin_kit::{EncoderConfig, Finished, HeaderPatch, Picture, Tags};

codec_plugin_kit::export_codec!(Mp3Session);
codec_plugin_kit::export_bitrate_rules!(Mp3Session);

/// MP3's bitrates depend on the MPEG version the rate selects ([`bitrates_at`]).
impl codec_plugin_kit::BitrateRules for Mp3Session {
    fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32> {
        if (1..=2).contains(&channels) { bitrates_at(sample_rate) } else { Vec::new() }
    }
}

/// One MP3 encoding run.
pub struct Mp3Session {
    encoder: Encoder,
    channels: usize,
    /// Where the first MP3 frame (LAME's placeholder info frame) starts: after the ID3v2 tag.
    first_frame: u64,
}

impl Mp3Session {
    /// Validates `config` and sets LAME up; an invalid configuration is a readable error. Of
    /// the configuration it reads the layout, the VBR quality or else the CBR bitrate, the tags
    /// and the cover.
    pub fn new(config: &EncoderConfig) -> Result<Self, String> {
        Self::open(config, true)
    }

    /// Like [`Mp3Session::new`]; without `header`, the output has neither the ID3v2 tag nor
    /// the info frame (a segment after the first, see [`segment`]).
    pub fn open(config: &EncoderConfig, header: bool) -> Result<Self, String> {
        let EncoderConfig {
            sample_rate,
            channels,
            bitrate_kbps,
            vbr_quality,
            ref tags,
            ref cover,
            ..
        } = *config;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(format!(
                "mp3: unsupported sample rate {sample_rate} Hz (supported: {SAMPLE_RATES:?})"
            ));
        }
        if !(1..=2).contains(&channels) {
            return Err(format!(
                "mp3: {channels} channels not supported (mono or stereo only)"
            ));
        }
        let mut b = Builder::new().ok_or("mp3: LAME could not allocate an encoder")?;
        b.set_sample_rate(sample_rate)
            .map_err(lame("sample rate"))?;
        b.set_output_sample_rate(NonZeroU32::new(sample_rate))
            .map_err(lame("sample rate"))?;
        b.set_num_channels(channels)
            .map_err(lame("channel count"))?;
        b.set_to_write_vbr_tag(header)
            .map_err(lame("info frame setting"))?;
        match (vbr_quality, bitrate_kbps) {
            (Some(q), _) => {
                let q = vbr_quality_of(q)?;
                b.set_vbr_mode(VbrMode::Mtrh).map_err(lame("VBR mode"))?;
                b.set_vbr_quality(q).map_err(lame("VBR quality"))?;
            }
            (None, kbps) => {
                let carried = bitrates_at(sample_rate);
                let kbps = match kbps {
                    Some(kbps) => kbps,
                    None => carried
                        .iter()
                        .copied()
                        .filter(|&k| k <= DEFAULT_BITRATE_KBPS)
                        .max()
                        .unwrap_or(DEFAULT_BITRATE_KBPS),
                };
                if !BITRATES_KBPS.contains(&kbps) {
                    return Err(format!(
                        "mp3: unsupported bitrate {kbps} kbps (supported: {BITRATES_KBPS:?})"
                    ));
                }
                if !carried.contains(&kbps) {
                    return Err(format!(
                        "mp3: {kbps} kbps is not an MP3 bitrate at {sample_rate} Hz (it takes {carried:?} kbps there)"
                    ));
                }
                b.set_vbr_mode(VbrMode::Off).map_err(lame("CBR mode"))?;
                // Set directly: the crate's `Bitrate` enum lacks 56 and 144.
                // SAFETY: `b` owns a live LAME handle; the pointer is not kept.
                check_lame(
                    unsafe { ffi::lame_set_brate(b.as_ptr(), kbps as _) },
                    "bitrate",
                )?;
            }
        }
        if header {
            set_id3v2(&mut b, tags, cover.as_ref())?;
        }
        let encoder = b.build().map_err(lame("configuration"))?;
        let first_frame = encoder.id3v2_tag_size() as u64;
        Ok(Self {
            encoder,
            channels: channels.into(),
            first_frame,
        })
    }
}

impl Codec for Mp3Session {
    fn info() -> CodecInfo {
        CodecInfo {
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: 2,
            bitrates: BITRATES_KBPS.to_vec(),
            vbr: true,
            cover: true,
            ..CodecInfo::new("mp3-lame", "mp3", "audio/mpeg")
        }
    }

    fn start(config: EncoderConfig) -> Result<Self, String> {
        Mp3Session::new(&config)
    }

    /// Encodes interleaved PCM and returns the MP3 bytes produced so far (possibly none).
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        codec_plugin_kit::frames("mp3", pcm.len(), self.channels)?;
        let mut out = Vec::new();
        // LAME takes a C int sample count; feed huge inputs in pieces.
        for chunk in pcm.chunks(self.channels << 20) {
            let frames = chunk.len() / self.channels;
            // The first call also emits the ID3v2 tag, hence the extra room.
            out.reserve(max_required_buffer_size(frames) + self.first_frame as usize);
            let res = match self.channels {
                1 => self.encoder.encode_to_vec(MonoPcm(chunk), &mut out),
                _ => self.encoder.encode_to_vec(InterleavedPcm(chunk), &mut out),
            };
            res.map_err(|e| format!("mp3: encoding failed: {e}"))?;
        }
        Ok(out)
    }

    /// Flushes the encoder; the patch overwrites LAME's placeholder info frame, which now
    /// knows the frame count, byte size and encoder delay/padding. There is no patch when
    /// LAME wrote no info frame (CBR frames too small to hold one, e.g. ≤ 48 kbps at 44.1 kHz).
    fn finish(mut self) -> Result<Finished, String> {
        let mut tail = Vec::with_capacity(max_required_buffer_size(0) + self.first_frame as usize);
        self.encoder
            .flush_to_vec::<FlushGap>(&mut tail)
            .map_err(|e| format!("mp3: flushing failed: {e}"))?;
        let mut frame = Vec::with_capacity(self.encoder.lame_tag_size());
        let patch = self
            .encoder
            .lame_tag_encode_to_vec(&mut frame)
            .map(|_| HeaderPatch {
                offset: self.first_frame,
                bytes: frame,
            });
        Ok(Finished { tail, patch })
    }
}

/// Maps a VBR quality 0–9 to LAME's.
fn vbr_quality_of(q: u8) -> Result<Quality, String> {
    use Quality as Q;
    const ALL: [Quality; 10] = [
        Q::Best,
        Q::SecondBest,
        Q::NearBest,
        Q::VeryNice,
        Q::Nice,
        Q::Good,
        Q::Decent,
        Q::Ok,
        Q::SecondWorst,
        Q::Worst,
    ];
    ALL.get(usize::from(q))
        .copied()
        .ok_or_else(|| format!("mp3: VBR quality {q} out of range (0 best – 9 smallest)"))
}

/// Maps a builder error to a readable one.
fn lame(what: &'static str) -> impl Fn(BuildError) -> String {
    move |e| format!("mp3: LAME rejected the {what}: {e}")
}

/// Maps a LAME C status code to a readable error.
fn check_lame(code: std::ffi::c_int, what: &str) -> Result<(), String> {
    match code {
        0 => Ok(()),
        _ => Err(format!("mp3: LAME rejected the {what} (error {code})")),
    }
}

/// Adds the tags and the cover as an ID3v2 tag (UTF-16 text frames, so any script survives; no
/// ID3v1).
fn set_id3v2(b: &mut Builder, tags: &Tags, cover: Option<&Picture>) -> Result<(), String> {
    let frames = [
        (c"TIT2", &tags.title),
        (c"TPE1", &tags.artist),
        (c"TALB", &tags.album),
        (c"TYER", &tags.year),
        (c"TCON", &tags.genre),
        (c"TRCK", &tags.track),
    ];
    let text = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(ucs2)
    };
    let picture = cover.map(|p| p.data.as_slice()).filter(|p| !p.is_empty());
    if frames.iter().all(|(_, v)| text(v).is_none())
        && text(&tags.comment).is_none()
        && picture.is_none()
    {
        return Ok(());
    }
    // SAFETY: `b` owns a live LAME handle until `build`; the text buffers are NUL-terminated
    // UTF-16 with a BOM, as the `*_utf16` functions require, and LAME copies them.
    let gfp = unsafe { b.as_ptr() };
    unsafe {
        ffi::id3tag_init(gfp);
        ffi::id3tag_v2_only(gfp);
    }
    for (id, value) in frames {
        if let Some(t) = text(value) {
            let rc = unsafe { ffi::id3tag_set_textinfo_utf16(gfp, id.as_ptr(), t.as_ptr()) };
            check_lame(rc, &format!("{} tag", id.to_str().unwrap_or("ID3")))?;
        }
    }
    if let Some(t) = text(&tags.comment) {
        let (lang, desc): (&CStr, [c_ushort; 2]) = (c"eng", [0xFEFF, 0]);
        let rc =
            unsafe { ffi::id3tag_set_comment_utf16(gfp, lang.as_ptr(), desc.as_ptr(), t.as_ptr()) };
        check_lame(rc, "comment tag")?;
    }
    if let Some(picture) = picture {
        // SAFETY: live handle; LAME copies the bytes and recognises JPEG, PNG and GIF by
        // their signature (anything else is refused with -1).
        let rc = unsafe { ffi::id3tag_set_albumart(gfp, picture.as_ptr().cast(), picture.len()) };
        check_lame(rc, "cover picture (APIC; JPEG, PNG or GIF)")?;
    }
    Ok(())
}

/// UTF-16 with a byte-order mark and a terminating NUL, as LAME's `*_utf16` functions want;
/// truncated to [`MAX_TAG_CHARS`] and cut at any embedded NUL.
fn ucs2(s: &str) -> Vec<c_ushort> {
    let s: String = s
        .chars()
        .take_while(|&c| c != '\0')
        .take(MAX_TAG_CHARS)
        .collect();
    std::iter::once(0xFEFF)
        .chain(s.encode_utf16())
        .chain([0])
        .collect()
}

#[cfg(test)]
mod segment_tests;
#[cfg(test)]
mod tests;
