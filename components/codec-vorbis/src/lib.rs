//! Vorbis codec plugin: interleaved s16 PCM in, Ogg Vorbis out, encoded by libvorbis with the
//! aoTuV and Lancer patches (`aotuv_lancer_vorbis_sys`, built with `cc`) and paged by
//! `ogg-writer`. The pages are ours because FFmpeg misplaces the start of a stream whose first
//! audio page is also its last, which libogg's own paging produces for clips under a page:
//! here the first audio packet always gets a page of its own, then a page ends every second.
//!
//! Any rate libvorbis has a setup for, up to 8 channels (reordered to Vorbis order), quality VBR
//! (the platform's `vbr` 0 best … 9 smallest is Vorbis quality 1.0 … 0.1, i.e. `oggenc -q10` …
//! `-q1`) or an average bitrate; Vorbis comments with `METADATA_BLOCK_PICTURE`. libvorbis's last
//! granule position is the exact sample count, so decoders drop the last block's padding.
//! [`VorbisSession`] is plain Rust, tested natively, and a [`Codec`]; the kit's `export_codec!`
//! makes it the component's `encoder` on wasm.

use aotuv_lancer_vorbis_sys as vorbis;
use codec_plugin_kit::{Codec, CodecInfo, Sample};
use ogg_next_sys::ogg_packet;
use ogg_writer::{OggStream, comments, vorbis_order};
use std::ffi::{CStr, CString, c_int, c_long};
use std::mem::MaybeUninit;

pub use codec_plugin_kit::{EncoderConfig, Finished, HeaderPatch};
pub use ogg_writer::{MAX_CHANNELS, Picture, Tags};

codec_plugin_kit::export_codec!(VorbisSession);
codec_plugin_kit::export_bitrate_rules!(VorbisSession);

/// The average bitrates of [`BITRATES_KBPS`] libvorbis has a setup for at `rate` with
/// `channels` (its managed-bitrate tables cover a band per rate, e.g. none over 192 kbps at
/// 22.05 kHz stereo), asked of libvorbis itself: a setup is only computed, nothing encoded.
pub fn bitrates_at(rate: u32, channels: u8) -> Vec<u32> {
    if !SAMPLE_RATES.contains(&rate) || !(1..=MAX_CHANNELS).contains(&channels) {
        return Vec::new();
    }
    BITRATES_KBPS
        .iter()
        .copied()
        .filter(|&kbps| {
            // SAFETY: a zeroed `vorbis_info` is what `vorbis_info_init` expects to fill; it is
            // cleared before it goes out of scope; the other arguments are plain numbers.
            unsafe {
                let mut info: vorbis::vorbis_info = MaybeUninit::zeroed().assume_init();
                vorbis::vorbis_info_init(&mut info);
                let rc = vorbis::vorbis_encode_setup_managed(&mut info, c_long::from(channels), c_long::from(rate as i32), -1, c_long::from(kbps as i32) * 1000, -1);
                vorbis::vorbis_info_clear(&mut info);
                rc == 0
            }
        })
        .collect()
}

impl codec_plugin_kit::BitrateRules for VorbisSession {
    fn bitrates_at(sample_rate: u32, channels: u8) -> Vec<u32> {
        bitrates_at(sample_rate, channels)
    }
}

/// Sample rates accepted: libvorbis's quality setups cover 8 kHz to 192 kHz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8000..=192_000;
/// Average bitrates offered (kbps, all channels together), managed by libvorbis.
pub const BITRATES_KBPS: [u32; 11] = [48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
/// Sample depths taken: 24-bit sources keep their extra bits (libvorbis encodes floats).
pub const BIT_DEPTHS: [u8; 2] = [16, 24];
/// The `vbr` quality used when neither a bitrate nor a quality is asked for (Vorbis 0.5, `-q5`).
pub const DEFAULT_VBR_QUALITY: u8 = 5;
/// The Ogg stream's serial number: one stream per file, so any fixed value is unique.
const SERIAL: u32 = 0x566f_7262;
/// PCM handed to libvorbis at once, in frames (its buffers grow with the block given).
const BLOCK: usize = 4096;

/// The Vorbis quality (−0.1 … 1.0 scale) for the platform's `vbr` 0 … 9: 1.0 … 0.1.
pub fn vorbis_quality(vbr: u8) -> Result<f32, String> {
    if vbr > 9 {
        return Err(format!("vorbis: VBR quality {vbr} out of range (0 best – 9 smallest)"));
    }
    Ok(f32::from(10 - vbr) / 10.0)
}

/// libvorbis's encoder state. Boxed: the DSP state points at the info, the block at the DSP
/// state, so none may move; `Drop` clears what was initialised, in reverse.
struct Libvorbis {
    info: vorbis::vorbis_info,
    comment: vorbis::vorbis_comment,
    dsp: vorbis::vorbis_dsp_state,
    block: vorbis::vorbis_block,
    dsp_ready: bool,
}

impl Drop for Libvorbis {
    fn drop(&mut self) {
        // SAFETY: each was initialised by its *_init (info and comment at creation, dsp and
        // block once `dsp_ready`), and is cleared once.
        unsafe {
            if self.dsp_ready {
                vorbis::vorbis_block_clear(&mut self.block);
                vorbis::vorbis_dsp_clear(&mut self.dsp);
            }
            vorbis::vorbis_comment_clear(&mut self.comment);
            vorbis::vorbis_info_clear(&mut self.info);
        }
    }
}

/// One Vorbis encoding run.
pub struct VorbisSession {
    lib: Box<Libvorbis>,
    ogg: OggStream,
    channels: usize,
    rate: u64,
    /// Audio packets written so far.
    packets: u64,
    /// Granule position at which the current page started.
    page_start: u64,
}

impl VorbisSession {
    /// Validates `config`, sets libvorbis up and writes the three header packets (on pages of
    /// their own, as the Ogg Vorbis mapping requires), which the first `encode` returns. Of the
    /// configuration it reads the layout, the VBR quality or else the average bitrate, the
    /// sample depth, the tags and the cover.
    pub fn new(config: &EncoderConfig) -> Result<Self, String> {
        let (rate, channels) = (config.sample_rate, config.channels);
        if !SAMPLE_RATES.contains(&rate) {
            return Err(format!("vorbis: sample rate {rate} Hz out of range ({SAMPLE_RATES:?})"));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("vorbis: {channels} channels not supported (1 to {MAX_CHANNELS})"));
        }
        if !BIT_DEPTHS.contains(&config.bits_per_sample) {
            return Err(format!("vorbis: {}-bit samples not supported (16 or 24)", config.bits_per_sample));
        }
        if let (None, Some(kbps)) = (config.vbr_quality, config.bitrate_kbps)
            && !BITRATES_KBPS.contains(&kbps)
        {
            return Err(format!("vorbis: unsupported bitrate {kbps} kbps (supported: {BITRATES_KBPS:?})"));
        }
        // SAFETY: all-zero is a valid "not yet initialised" state for these plain C structs;
        // each is initialised below before use.
        let mut lib: Box<Libvorbis> = Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        unsafe {
            vorbis::vorbis_info_init(&mut lib.info);
            vorbis::vorbis_comment_init(&mut lib.comment);
        }
        let (ch, hz) = (c_long::from(channels), c_long::from(rate as i32));
        // SAFETY: `info` is initialised; the arguments are plain numbers.
        let rc = match (config.vbr_quality, config.bitrate_kbps) {
            (None, Some(kbps)) => unsafe { vorbis::vorbis_encode_init(&mut lib.info, ch, hz, -1, c_long::from(kbps as i32) * 1000, -1) },
            (q, _) => {
                let quality = vorbis_quality(q.unwrap_or(DEFAULT_VBR_QUALITY))?;
                unsafe { vorbis::vorbis_encode_init_vbr(&mut lib.info, ch, hz, quality) }
            }
        };
        if rc != 0 {
            return Err(format!("vorbis: libvorbis has no setup for {channels} channels at {rate} Hz with these settings (error {rc})"));
        }
        for (key, value) in comments(&config.tags, config.cover.as_ref()) {
            let (key, value) = (CString::new(key).expect("no NUL in keys"), CString::new(value).expect("comments() cuts at NUL"));
            // SAFETY: `comment` is initialised; libvorbis copies both strings.
            unsafe { vorbis::vorbis_comment_add_tag(&mut lib.comment, key.as_ptr(), value.as_ptr()) };
        }
        // SAFETY: `info` is set up for encoding; `dsp` and `block` are initialised here, once.
        unsafe {
            if vorbis::vorbis_analysis_init(&mut lib.dsp, &mut lib.info) != 0 {
                return Err("vorbis: libvorbis could not start the analysis".into());
            }
            vorbis::vorbis_block_init(&mut lib.dsp, &mut lib.block);
        }
        lib.dsp_ready = true;
        let mut headers: [MaybeUninit<ogg_packet>; 3] = [MaybeUninit::uninit(); 3];
        let [id, comment, code] = &mut headers;
        // SAFETY: a live DSP state; libvorbis fills the three packets, which stay valid until
        // the next call on the DSP state (we copy them out at once).
        let rc = unsafe {
            vorbis::vorbis_analysis_headerout(&mut lib.dsp, &mut lib.comment, id.as_mut_ptr().cast(), comment.as_mut_ptr().cast(), code.as_mut_ptr().cast())
        };
        if rc != 0 {
            return Err(format!("vorbis: libvorbis could not write its headers (error {rc})"));
        }
        let mut ogg = OggStream::new(SERIAL);
        for (i, packet) in headers.iter().enumerate() {
            // SAFETY: initialised by vorbis_analysis_headerout above.
            ogg.packet(unsafe { packet_bytes(packet.assume_init_ref()) }, 0);
            // The identification header alone on the first page; the other two end theirs.
            if i != 1 {
                ogg.flush();
            }
        }
        Ok(Self { lib, ogg, channels: channels.into(), rate: rate.into(), packets: 0, page_start: 0 })
    }

    /// Encodes interleaved PCM, 16- or 24-bit: libvorbis takes floats, so a 24-bit source's
    /// extra bits reach the encoder. Returns the Ogg pages finished so far (the headers, first).
    fn encode_samples<S: Sample>(&mut self, pcm: &[S]) -> Result<Vec<u8>, String> {
        codec_plugin_kit::frames("vorbis", pcm.len(), self.channels)?;
        let order = vorbis_order(self.channels as u8);
        for block in pcm.chunks(BLOCK * self.channels) {
            let frames = block.len() / self.channels;
            // SAFETY: a live DSP state; libvorbis returns one buffer per channel with room for
            // `frames` floats each.
            unsafe {
                let buffers = vorbis::vorbis_analysis_buffer(&mut self.lib.dsp, frames as c_int);
                for (c, &from) in order.iter().enumerate() {
                    let to = std::slice::from_raw_parts_mut(*buffers.add(c), frames);
                    for (t, &s) in to.iter_mut().zip(block.iter().skip(from).step_by(self.channels)) {
                        *t = s.to_f32();
                    }
                }
                vorbis::vorbis_analysis_wrote(&mut self.lib.dsp, frames as c_int);
            }
            self.write_packets()?;
        }
        Ok(self.ogg.take())
    }

    /// Takes every packet libvorbis has ready and pages it: the first audio packet alone on its
    /// page, then a page a second (of granule positions), the last left for `finish`.
    fn write_packets(&mut self) -> Result<(), String> {
        let lib = &mut *self.lib;
        let mut packet = MaybeUninit::<ogg_packet>::uninit();
        // SAFETY: a live DSP state and block, used as libvorbis's encoding loop prescribes;
        // each packet is copied out before the next call.
        unsafe {
            while vorbis::vorbis_analysis_blockout(&mut lib.dsp, &mut lib.block) == 1 {
                check(vorbis::vorbis_analysis(&mut lib.block, std::ptr::null_mut()), "analysis")?;
                check(vorbis::vorbis_bitrate_addblock(&mut lib.block), "bitrate management")?;
                loop {
                    let rc = vorbis::vorbis_bitrate_flushpacket(&mut lib.dsp, packet.as_mut_ptr().cast());
                    check(rc, "packet output")?;
                    if rc == 0 {
                        break;
                    }
                    let p = packet.assume_init_ref();
                    let granule = p.granulepos.max(0) as u64;
                    self.ogg.packet(packet_bytes(p), granule);
                    self.packets += 1;
                    if p.e_o_s == 0 && (self.packets == 1 || granule >= self.page_start + self.rate) {
                        self.ogg.flush();
                        self.page_start = granule;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Codec for VorbisSession {
    fn info() -> CodecInfo {
        // Any sample rate: from 8 kHz to 192 kHz.
        CodecInfo {
            max_channels: MAX_CHANNELS,
            bitrates: BITRATES_KBPS.to_vec(),
            vbr: true,
            bit_depths: BIT_DEPTHS.to_vec(),
            cover: true,
            ..CodecInfo::new("vorbis", "ogg", "audio/ogg")
        }
    }

    fn start(config: EncoderConfig) -> Result<Self, String> {
        VorbisSession::new(&config)
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        self.encode_samples(pcm)
    }

    fn encode_wide(&mut self, pcm: &[i32]) -> Result<Vec<u8>, String> {
        self.encode_samples(pcm)
    }

    /// Tells libvorbis the input is over: its last packet carries the exact end as granule
    /// position, and the stream ends on that page.
    fn finish(mut self) -> Result<Finished, String> {
        // SAFETY: a live DSP state; 0 frames marks the end of input.
        unsafe { vorbis::vorbis_analysis_wrote(&mut self.lib.dsp, 0) };
        self.write_packets()?;
        Ok(self.ogg.end())
    }
}

/// The bytes of a packet libvorbis produced.
///
/// # Safety
/// `p` must come from libvorbis and be used before its next call on the same state.
unsafe fn packet_bytes(p: &ogg_packet) -> &[u8] {
    if p.bytes <= 0 || p.packet.is_null() {
        return &[];
    }
    // SAFETY: libvorbis's packet points at `bytes` valid bytes.
    unsafe { std::slice::from_raw_parts(p.packet, p.bytes as usize) }
}

/// Maps a libvorbis status (negative on failure) to a readable error.
fn check(rc: c_int, what: &str) -> Result<(), String> {
    if rc < 0 { Err(format!("vorbis: libvorbis failed in {what} (error {rc})")) } else { Ok(()) }
}

/// libvorbis's version string.
pub fn version() -> String {
    // SAFETY: libvorbis returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(vorbis::vorbis_version_string()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests;
