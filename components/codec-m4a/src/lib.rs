//! m4a codec plugin: interleaved s16 PCM in, AAC-LC (fdk-aac) in an MP4/M4A file out, streamed,
//! with an edit list that makes the decoded length exactly the source's and iTunes tags.
//!
//! [`M4aSession`] ties the encoder ([`aac`], the only place that calls fdk-aac) to the container
//! ([`mp4`], the plugin's own writer): the `ftyp`/`mdat` head goes out with the first bytes,
//! access units as fdk-aac produces them, and `moov` in the finish tail, with a patch that sizes
//! `mdat`. Both are plain Rust, tested natively; the session is a [`Codec`], which the kit's
//! `export_codec!` makes the component's `encoder` on wasm.
//!
//! Exact length: the edit list skips the encoder's priming and presents exactly the frames the
//! session received. Players that apply the whole edit (Apple's, browsers) trim the padding at
//! the end too. FFmpeg applies an edit's start to the sample but its end only to whole access
//! units, so when the length is known ahead (`total-frames`), the session puts just enough
//! silence before the audio (skipped by the edit too) that the audio ends on an access-unit
//! boundary, and FFmpeg decodes the exact length as well.

pub mod aac;
pub mod mp4;

use aac::{AacEncoder, RateControl};
use codec_plugin_kit::{Codec, CodecInfo};
use mp4::{Mp4Writer, Track};

/// The session's types are the plugin kit's, shared by every codec.
pub use codec_plugin_kit::{EncoderConfig, Finished, HeaderPatch, Picture, Tags};

codec_plugin_kit::export_codec!(M4aSession);
codec_plugin_kit::export_bitrate_rules!(M4aSession);

/// The constant bitrates of [`BITRATES_KBPS`] AAC-LC carries at `sample_rate` with `channels`:
/// at most 6 bits per sample and channel (fdk-aac's 6144-bit frame per channel over 1024
/// samples), e.g. 96 kbps for 8 kHz stereo. Asked for more, fdk-aac would quietly lower it, so
/// a session refuses it instead.
pub fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32> {
    if !SAMPLE_RATES.contains(&sample_rate) || !(1..=MAX_CHANNELS).contains(&channels) {
        return Vec::new();
    }
    let most = 6 * u64::from(sample_rate) * u64::from(channels);
    BITRATES_KBPS.iter().copied().filter(|&kbps| u64::from(kbps) * 1000 <= most).collect()
}

impl codec_plugin_kit::BitrateRules for M4aSession {
    fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32> {
        bitrates_at(sample_rate, channels)
    }
}

/// The sampling rates AAC-LC defines (ISO 14496-3) and fdk-aac encodes.
pub const SAMPLE_RATES: [u32; 12] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000];
/// Constant bitrates offered (kbps, whole stream). fdk-aac keeps a bitrate within what the
/// sample rate and channels allow (e.g. at most 48 kbps per channel at 8 kHz).
pub const BITRATES_KBPS: [u32; 12] = [32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
/// The constant bitrate per channel when neither a bitrate nor VBR is asked for: 96 kbps
/// (192 for stereo), transparent for most music with AAC-LC.
pub const DEFAULT_KBPS_PER_CHANNEL: u32 = 96;
/// Most channels accepted (the converter downmixes more).
pub const MAX_CHANNELS: u8 = 2;

/// One m4a encoding run.
pub struct M4aSession {
    encoder: AacEncoder,
    writer: Mp4Writer,
    /// Output not handed out yet: the file's head (`ftyp`, `free`, `mdat` header) and the
    /// lead-in's access units until the first `encode`.
    pending: Vec<u8>,
    channels: usize,
    sample_rate: u32,
    /// Frames received from the caller.
    frames: u64,
    /// Silent frames put before the audio to align its end (see the module doc).
    lead_in: u64,
    tags: Tags,
    cover: Option<Picture>,
}

impl M4aSession {
    /// Validates `config` and sets fdk-aac up; an invalid configuration is a readable error. Of
    /// the configuration it reads the layout, the VBR quality or else the CBR bitrate (kbps), the
    /// length when known ahead, the tags and the cover.
    pub fn new(config: EncoderConfig) -> Result<Self, String> {
        let EncoderConfig { sample_rate, channels, bitrate_kbps, vbr_quality, total_frames, tags, cover, .. } = config;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(format!("m4a: unsupported sample rate {sample_rate} Hz (supported: {SAMPLE_RATES:?})"));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("m4a: {channels} channels not supported (mono or stereo)"));
        }
        let rate = match (vbr_quality, bitrate_kbps) {
            (Some(q), _) => RateControl::Variable(fdk_vbr_mode(q)?),
            (None, Some(kbps)) if !BITRATES_KBPS.contains(&kbps) => {
                return Err(format!("m4a: unsupported bitrate {kbps} kbps (supported: {BITRATES_KBPS:?})"));
            }
            (None, Some(kbps)) => RateControl::Constant(kbps * 1000),
            (None, None) => {
                let default = DEFAULT_KBPS_PER_CHANNEL * u32::from(channels);
                let carried = bitrates_at(sample_rate, channels).into_iter().filter(|&k| k <= default).max();
                RateControl::Constant(carried.unwrap_or(default) * 1000)
            }
        };
        let encoder = AacEncoder::new(sample_rate, channels, rate)?;
        let (writer, head) = Mp4Writer::new();
        let frame = u64::from(encoder.frame_length());
        let lead_in = match total_frames {
            Some(total) if total > 0 => (frame - (total + u64::from(encoder.delay())) % frame) % frame,
            _ => 0,
        };
        let mut session = Self {
            encoder,
            writer,
            pending: head,
            channels: channels.into(),
            sample_rate,
            frames: 0,
            lead_in,
            tags,
            cover,
        };
        if lead_in > 0 {
            let silence = vec![0i16; lead_in as usize * session.channels];
            session.encode_pcm(&silence)?;
        }
        Ok(session)
    }
}

impl Codec for M4aSession {
    fn info() -> CodecInfo {
        CodecInfo {
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            vbr: true,
            cover: true,
            ..CodecInfo::new("aac-fdk", "m4a", "audio/mp4")
        }
    }

    fn start(config: EncoderConfig) -> Result<Self, String> {
        M4aSession::new(config)
    }

    /// Encodes interleaved PCM; returns the bytes produced so far (the file's head first).
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        self.frames += codec_plugin_kit::frames("m4a", pcm.len(), self.channels)? as u64;
        self.encode_pcm(pcm)?;
        Ok(std::mem::take(&mut self.pending))
    }

    /// Flushes fdk-aac; the tail is the last access units and `moov`, the patch sizes `mdat`.
    fn finish(mut self) -> Result<Finished, String> {
        let mut tail = std::mem::take(&mut self.pending);
        let mut failed = None;
        let writer = &mut self.writer;
        self.encoder.flush(|unit| {
            if let Err(e) = writer.add_sample(unit.len()) {
                failed.get_or_insert(e);
            }
            tail.extend_from_slice(unit);
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let track = Track {
            sample_rate: self.sample_rate,
            channels: self.channels as u8,
            audio_specific_config: self.encoder.audio_specific_config(),
            frame_length: self.encoder.frame_length(),
            skip_frames: u64::from(self.encoder.delay()) + self.lead_in,
            play_frames: self.frames,
        };
        let (patch, moov) = self.writer.finish(&track, &self.tags, self.cover.as_ref());
        tail.extend(moov);
        Ok(Finished { tail, patch: Some(HeaderPatch { offset: patch.offset, bytes: patch.bytes }) })
    }
}

impl M4aSession {
    /// Encodes into `pending`, recording each access unit in the sample table.
    fn encode_pcm(&mut self, pcm: &[i16]) -> Result<(), String> {
        let mut failed = None;
        let (writer, out) = (&mut self.writer, &mut self.pending);
        self.encoder.encode(pcm, |unit| {
            if let Err(e) = writer.add_sample(unit.len()) {
                failed.get_or_insert(e);
            }
            out.extend_from_slice(unit);
        })?;
        failed.map_or(Ok(()), Err)
    }
}

/// Maps the platform's VBR quality (0 best – 9 smallest) onto fdk-aac's VBR modes (5 best –
/// 1 smallest), two steps per mode.
fn fdk_vbr_mode(quality: u8) -> Result<u8, String> {
    match quality {
        0..=9 => Ok(5 - quality / 2),
        _ => Err(format!("m4a: VBR quality {quality} out of range (0 best – 9 smallest)")),
    }
}

#[cfg(test)]
mod tests;
