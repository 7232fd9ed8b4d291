//! What every codec plugin shares, written once. Natively: the plain types a plugin's encoder
//! core speaks ([`EncoderConfig`], [`CodecInfo`], [`Tags`], [`Picture`], [`Finished`],
//! [`HeaderPatch`]) and the [`Codec`] trait it implements, so a core — its description, its
//! configuration and its output — is tested without WIT. On wasm, additionally: the
//! `mp3edge:codec/codec-plugin` bindings and the one adapter that exports any [`Codec`] as the
//! WIT `encoder` interface (`component`). A plugin implements [`Codec`] for its encoder and
//! writes `codec_plugin_kit::export_codec!(MyEncoder);` — nothing else touches WIT.

/// Bytes to write over the output at `offset` once encoding is over (an mp3 info frame, a WAV
/// header with the final sizes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPatch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The end of a session: the remaining output and the optional header patch.
#[derive(Clone, Debug)]
pub struct Finished {
    pub tail: Vec<u8>,
    pub patch: Option<HeaderPatch>,
}

/// The descriptive tags a core is given: the WIT `tags`, without WIT, so every core shares one
/// type and is tested natively (the host's FFmpeg reader uses the same type).
pub use audio_tags::Tags;

/// A cover picture a core is given: the WIT `picture`, without WIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    /// `image/jpeg` or `image/png`.
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// What a session is asked to do: the WIT `encoder-config` without WIT (the input layout
/// flattened into `sample_rate` and `channels`). Each codec reads the fields it has a use for;
/// the others are what the WIT record carries for other codecs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Rate of the PCM `encode` receives.
    pub sample_rate: u32,
    /// Channels of the PCM `encode` receives, interleaved.
    pub channels: u8,
    /// Constant (or average) bitrate in kbps, for codecs that take one.
    pub bitrate_kbps: Option<u32>,
    /// VBR quality, 0 (best) to 9 (smallest), for codecs that take one.
    pub vbr_quality: Option<u8>,
    /// Compression level, for codecs that have levels (FLAC 0 fastest – 8 smallest).
    pub level: Option<u8>,
    /// 16, or 24 when the PCM comes through [`Codec::encode_wide`].
    pub bits_per_sample: u8,
    /// Frames per channel the session will receive, when known ahead.
    pub total_frames: Option<u64>,
    pub tags: Tags,
    pub cover: Option<Picture>,
}

impl Default for EncoderConfig {
    /// No layout yet (rate and channels 0), nothing asked for, 16-bit samples.
    fn default() -> Self {
        EncoderConfig {
            sample_rate: 0,
            channels: 0,
            bitrate_kbps: None,
            vbr_quality: None,
            level: None,
            bits_per_sample: 16,
            total_frames: None,
            tags: Tags::default(),
            cover: None,
        }
    }
}

/// What a plugin offers: the WIT `codec-info` without WIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecInfo {
    /// Short name, e.g. `mp3-lame`.
    pub name: String,
    /// File extension of the output, e.g. `mp3`.
    pub extension: String,
    /// MIME type of the output, e.g. `audio/mpeg`.
    pub content_type: String,
    /// Input sample rates accepted; empty: any.
    pub sample_rates: Vec<u32>,
    pub max_channels: u8,
    /// Bitrates (kbps) accepted as `bitrate_kbps`; empty: none.
    pub bitrates: Vec<u32>,
    /// Whether it takes a `vbr_quality`.
    pub vbr: bool,
    /// Levels accepted as `level`; empty: none.
    pub levels: Vec<u8>,
    /// `[16]`, or `[16, 24]` for a codec that keeps 24-bit sources.
    pub bit_depths: Vec<u8>,
    /// Whether it embeds `cover` pictures.
    pub cover: bool,
}

impl CodecInfo {
    /// A codec `name` writing `extension` files of `content_type`, with the plainest offer: any
    /// sample rate, up to 8 channels, 16-bit samples, and no bitrates, VBR, levels or cover. A
    /// plugin states what it offers beyond that: `CodecInfo { vbr: true, ..CodecInfo::new(…) }`.
    pub fn new(name: &str, extension: &str, content_type: &str) -> Self {
        CodecInfo {
            name: name.into(),
            extension: extension.into(),
            content_type: content_type.into(),
            sample_rates: Vec::new(),
            max_channels: 8,
            bitrates: Vec::new(),
            vbr: false,
            levels: Vec::new(),
            bit_depths: vec![16],
            cover: false,
        }
    }
}

/// An encoder, as a plugin provides it: natively for its tests, and as the WIT `encoder`
/// export through [`export_codec!`].
pub trait Codec: Sized + 'static {
    /// What the plugin is and what PCM it accepts.
    fn info() -> CodecInfo;
    /// A new session; an unusable configuration is an error with a readable reason.
    fn start(config: EncoderConfig) -> Result<Self, String>;
    /// Encodes interleaved s16 PCM; returns the output produced so far.
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String>;
    /// Encodes interleaved 24-bit PCM (a session started with `bits_per_sample` 24). Only a
    /// codec that lists 24 in its `bit_depths` is sent any; the others keep this refusal.
    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        let _ = pcm;
        Err(format!("{} encodes 16-bit samples only", Self::info().name))
    }
    /// Flushes; the tail and an optional header patch.
    fn finish(self) -> Result<Finished, String>;
}

/// A codec whose constant bitrates depend on the output's sample rate (and channels): exported
/// as the optional `bitrate-rules` interface by [`export_bitrate_rules!`], so the host publishes
/// them per rate and a request the codec cannot honour is refused before it is a job.
pub trait BitrateRules {
    /// The bitrates of `CodecInfo::bitrates` that `start` accepts at `sample_rate` with
    /// `channels`, ascending (empty at a rate the codec does not take).
    fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32>;
}

/// Exports `$codec`'s [`BitrateRules`] as the component's `bitrate-rules` interface (wasm only).
#[macro_export]
macro_rules! export_bitrate_rules {
    ($codec:ty) => {
        #[cfg(target_family = "wasm")]
        type ExportedBitrateRules = $crate::component::rules::Rules<$codec>;
        #[cfg(target_family = "wasm")]
        $crate::component::rules::export_rules!(ExportedBitrateRules with_types_in $crate::component::rules);
    };
}

/// The frames in `samples` interleaved samples of `channels` channels, or the error every
/// codec gives (prefixed with `codec`) when they do not divide.
pub fn frames(codec: &str, samples: usize, channels: usize) -> Result<usize, String> {
    if samples.is_multiple_of(channels) {
        Ok(samples / channels)
    } else {
        Err(format!("{codec}: {samples} samples do not divide into {channels} channels"))
    }
}

/// A PCM sample as the float encoders (libopus, libvorbis) take it, in −1 ≤ x < 1: `i16` from
/// [`Codec::encode`], `i32` in the 24-bit range from [`Codec::encode_wide`].
pub trait Sample: Copy {
    fn to_f32(self) -> f32;
}

impl Sample for i16 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 32_768.0
    }
}

impl Sample for i32 {
    fn to_f32(self) -> f32 {
        self as f32 / 8_388_608.0
    }
}

/// Exports `$codec` (a type implementing [`Codec`]) as this component's `encoder` (on wasm;
/// natively it expands to nothing, so a plugin invokes it unconditionally).
#[macro_export]
macro_rules! export_codec {
    ($codec:ty) => {
        #[cfg(target_family = "wasm")]
        type ExportedCodecPlugin = $crate::component::Plugin<$codec>;
        #[cfg(target_family = "wasm")]
        $crate::component::export!(ExportedCodecPlugin with_types_in $crate::component);
    };
}

#[cfg(target_family = "wasm")]
pub mod component;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_count_whole_frames_and_name_the_codec_otherwise() {
        assert_eq!(frames("x", 12, 6), Ok(2));
        assert_eq!(frames("x", 0, 2), Ok(0));
        assert_eq!(frames("opus", 7, 2), Err("opus: 7 samples do not divide into 2 channels".to_string()));
    }

    #[test]
    fn samples_scale_to_the_unit_range() {
        assert_eq!((i16::MIN.to_f32(), 0i16.to_f32(), 16_384i16.to_f32()), (-1.0, 0.0, 0.5));
        assert_eq!(i16::MAX.to_f32(), 32_767.0 / 32_768.0);
        assert_eq!(((-8_388_608i32).to_f32(), 4_194_304i32.to_f32()), (-1.0, 0.5));
        assert_eq!(8_388_607i32.to_f32(), 8_388_607.0 / 8_388_608.0);
    }
}
