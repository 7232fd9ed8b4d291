//! Opus codec plugin: interleaved s16 PCM at 48 kHz in, Ogg Opus (RFC 7845) out, encoded by
//! libopus (`opusic-sys`, built from its bundled sources) and paged by `ogg-writer`.
//!
//! The length comes out exact: OpusHead's pre-skip is the encoder's own lookahead, every
//! packet is 20 ms, the input is padded with silence so the encoder's delay is flushed out, and
//! the last page's granule position is the real sample count plus the pre-skip, so decoders
//! drop both the priming and the padding. More than two channels use channel mapping family
//! 1 (Vorbis order, surround streams). [`OpusSession`] is plain Rust, tested natively, and a
//! [`Codec`]; the kit's `export_codec!` makes it the component's `encoder` on wasm.

use codec_plugin_kit::{Codec, CodecInfo, Sample};
use ogg_writer::{OggStream, comment_packet, comments, to_vorbis_order};
use opusic_sys as ffi;
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

pub use codec_plugin_kit::{EncoderConfig, Finished, HeaderPatch};
pub use ogg_writer::{MAX_CHANNELS, Picture, Tags};

codec_plugin_kit::export_codec!(OpusSession);

/// The only input rate: Opus runs at 48 kHz inside, and the converter resamples to it.
pub const SAMPLE_RATE: u32 = 48_000;
/// Sample depths taken: 24-bit sources keep their extra bits (libopus encodes floats).
pub const BIT_DEPTHS: [u8; 2] = [16, 24];
/// Samples per channel in one packet: 20 ms.
pub const FRAME: usize = 960;
/// Bitrates accepted (kbps, the total over all channels), from speech to transparent stereo,
/// within the 8–320 kbps the gateway lets `?bitrate=` ask for.
pub const BITRATES_KBPS: [u32; 13] = [8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320];
/// Largest packet libopus may produce for one frame of one stream (RFC 6716 §3.4), times the
/// streams, is what the output buffer holds.
const MAX_PACKET_PER_STREAM: usize = 1275 * 3 + 7;
/// The Ogg stream's serial number: one stream per file, so any fixed value is unique.
const SERIAL: u32 = 0x4f70_7573;

/// The bitrate used when none is asked for: 64 kbps a channel (128 for stereo), at most 510
/// (libopus's ceiling; surround sources get more than `?bitrate=` can ask for).
pub fn default_bitrate_kbps(channels: u8) -> u32 {
    (64 * u32::from(channels)).min(510)
}

/// libopus's multistream encoder, freed on drop.
struct Encoder(NonNull<ffi::OpusMSEncoder>);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_multistream_surround_encoder_create, freed once.
        unsafe { ffi::opus_multistream_encoder_destroy(self.0.as_ptr()) }
    }
}

/// One Opus encoding run.
pub struct OpusSession {
    encoder: Encoder,
    channels: usize,
    pre_skip: u64,
    /// Input (in Vorbis order, as floats in −1…1) not yet making a whole frame.
    pending: Vec<f32>,
    /// Frames per channel received so far.
    received: u64,
    /// Samples per channel encoded so far, padding and the encoder's delay included: the
    /// granule position of the last packet, except at the end.
    granule: u64,
    ogg: OggStream,
    packet: Vec<u8>,
}

impl OpusSession {
    /// Validates `config`, sets libopus up and writes the two header pages (OpusHead, OpusTags),
    /// which the first `encode` returns. Of the configuration it reads the layout, the total
    /// bitrate in kbps (VBR around it; `None`: [`default_bitrate_kbps`]), the sample depth, the
    /// tags and the cover.
    pub fn new(config: &EncoderConfig) -> Result<Self, String> {
        if config.sample_rate != SAMPLE_RATE {
            return Err(format!("opus: sample rate {} Hz not supported (48000 Hz only)", config.sample_rate));
        }
        let channels = config.channels;
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("opus: {channels} channels not supported (1 to {MAX_CHANNELS})"));
        }
        if let Some(kbps) = config.bitrate_kbps.filter(|kbps| !BITRATES_KBPS.contains(kbps)) {
            return Err(format!("opus: unsupported bitrate {kbps} kbps (supported: {BITRATES_KBPS:?})"));
        }
        if !BIT_DEPTHS.contains(&config.bits_per_sample) {
            return Err(format!("opus: {}-bit samples not supported (16 or 24)", config.bits_per_sample));
        }
        let kbps = config.bitrate_kbps.unwrap_or_else(|| default_bitrate_kbps(channels));
        let family: c_int = if channels <= 2 { 0 } else { 1 };
        let (mut streams, mut coupled, mut mapping, mut error) = (0 as c_int, 0 as c_int, [0u8; 255], 0 as c_int);
        // SAFETY: the out-pointers are valid; `mapping` has room for 255 channels.
        let raw = unsafe {
            ffi::opus_multistream_surround_encoder_create(
                SAMPLE_RATE as i32,
                c_int::from(channels),
                family,
                &mut streams,
                &mut coupled,
                mapping.as_mut_ptr(),
                ffi::OPUS_APPLICATION_AUDIO,
                &mut error,
            )
        };
        let encoder = match NonNull::new(raw) {
            Some(p) if error == ffi::OPUS_OK => Encoder(p),
            _ => return Err(format!("opus: could not create the encoder: {}", strerror(error))),
        };
        let ctl = |request: c_int, value: c_int, what: &str| {
            // SAFETY: a live encoder; these requests take one opus_int32 argument.
            let rc = unsafe { ffi::opus_multistream_encoder_ctl(encoder.0.as_ptr(), request, value) };
            if rc == ffi::OPUS_OK { Ok(()) } else { Err(format!("opus: libopus rejected the {what}: {}", strerror(rc))) }
        };
        ctl(ffi::OPUS_SET_BITRATE_REQUEST, (kbps * 1000) as c_int, "bitrate")?;
        ctl(ffi::OPUS_SET_VBR_REQUEST, 1, "VBR setting")?;
        ctl(ffi::OPUS_SET_COMPLEXITY_REQUEST, 10, "complexity")?;
        let mut lookahead: i32 = 0;
        // SAFETY: a live encoder; the request writes one opus_int32 through the pointer.
        let rc = unsafe { ffi::opus_multistream_encoder_ctl(encoder.0.as_ptr(), ffi::OPUS_GET_LOOKAHEAD_REQUEST, &mut lookahead as *mut i32) };
        if rc != ffi::OPUS_OK || lookahead < 0 {
            return Err(format!("opus: could not read the encoder's lookahead: {}", strerror(rc)));
        }
        let mut ogg = OggStream::new(SERIAL);
        // RFC 7845 §5.1: OpusHead.
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(channels);
        head.extend_from_slice(&(lookahead as u16).to_le_bytes());
        head.extend_from_slice(&config.sample_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(family as u8);
        if family != 0 {
            head.push(streams as u8);
            head.push(coupled as u8);
            head.extend_from_slice(&mapping[..channels as usize]);
        }
        ogg.packet(&head, 0);
        ogg.flush();
        // RFC 7845 §5.2: OpusTags, on pages of its own (a cover may span many).
        let vendor = version();
        ogg.packet(&comment_packet(b"OpusTags", &vendor, &comments(&config.tags, config.cover.as_ref())), 0);
        ogg.flush();
        Ok(Self {
            encoder,
            channels: channels.into(),
            pre_skip: lookahead as u64,
            pending: Vec::new(),
            received: 0,
            granule: 0,
            ogg,
            packet: vec![0; MAX_PACKET_PER_STREAM * streams as usize],
        })
    }

    /// The pre-skip written into OpusHead: the encoder's lookahead in 48 kHz samples.
    pub fn pre_skip(&self) -> u64 {
        self.pre_skip
    }

    /// Encodes interleaved PCM, 16- or 24-bit: libopus takes floats, so a 24-bit source's
    /// extra bits reach the encoder. Returns the Ogg pages finished so far (the headers, first).
    fn encode_samples<S: Sample>(&mut self, pcm: &[S]) -> Result<Vec<u8>, String> {
        self.received += codec_plugin_kit::frames("opus", pcm.len(), self.channels)? as u64;
        self.pending.extend(to_vorbis_order(pcm, self.channels as u8).into_iter().map(S::to_f32));
        let whole = self.pending.len() / (FRAME * self.channels) * FRAME * self.channels;
        let ready: Vec<f32> = self.pending.drain(..whole).collect();
        for frame in ready.chunks_exact(FRAME * self.channels) {
            self.encode_frame(frame, self.granule + FRAME as u64)?;
        }
        Ok(self.ogg.take())
    }

    /// Encodes one 20 ms frame (Vorbis order) into a packet that ends at `granule`; pages end
    /// every second so a seek lands close to its target.
    fn encode_frame(&mut self, frame: &[f32], granule: u64) -> Result<(), String> {
        // SAFETY: a live encoder; `frame` holds FRAME samples per channel; `packet` has the
        // size passed.
        let len = unsafe {
            ffi::opus_multistream_encode_float(
                self.encoder.0.as_ptr(),
                frame.as_ptr(),
                FRAME as c_int,
                self.packet.as_mut_ptr(),
                self.packet.len() as i32,
            )
        };
        if len < 0 {
            return Err(format!("opus: encoding failed: {}", strerror(len)));
        }
        self.granule += FRAME as u64;
        self.ogg.packet(&self.packet[..len as usize], granule);
        // The last page is left to `finish`, which marks it as the end of the stream.
        if self.granule.is_multiple_of(u64::from(SAMPLE_RATE)) && granule < self.received + self.pre_skip {
            self.ogg.flush();
        }
        Ok(())
    }
}

impl Codec for OpusSession {
    fn info() -> CodecInfo {
        CodecInfo {
            sample_rates: vec![SAMPLE_RATE],
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
            ..CodecInfo::new("opus", "opus", "audio/ogg")
        }
    }

    fn start(config: EncoderConfig) -> Result<Self, String> {
        OpusSession::new(&config)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        self.encode_samples(pcm)
    }

    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        self.encode_samples(pcm)
    }

    /// Pads the input with silence until the encoder's delay is out, writes the last packets
    /// and ends the stream with the granule position of the real end: received + pre-skip.
    fn finish(mut self) -> Result<Finished, String> {
        let end = self.received + self.pre_skip;
        while self.granule < end {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(FRAME * self.channels, 0.0);
            // The last packet's granule is the real end, which tells decoders to trim the
            // padding (RFC 7845 §4.4).
            self.encode_frame(&frame, (self.granule + FRAME as u64).min(end))?;
        }
        Ok(self.ogg.end())
    }
}

/// libopus's version string, the vendor of OpusTags.
pub fn version() -> String {
    // SAFETY: libopus returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::opus_get_version_string()) }.to_string_lossy().into_owned()
}

fn strerror(code: c_int) -> String {
    // SAFETY: libopus returns a static NUL-terminated string for any code.
    unsafe { CStr::from_ptr(ffi::opus_strerror(code)) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests;
