//! A safe AAC-LC encoder over fdk-aac's C API (`fdk-aac-sys`): raw access units (no ADTS
//! headers, as MP4 stores them), the AudioSpecificConfig for the `esds` box, and the encoder
//! delay (priming) that the edit list must skip. This module owns every `unsafe` call into
//! fdk-aac; the rest of the crate sees only [`AacEncoder`].

use fdk_aac_sys as fdk;
use std::ptr;

/// How the encoder spends bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateControl {
    /// Constant bitrate, in bits per second (one the rate and channels allow: see
    /// `crate::bitrates_at`).
    Constant(u32),
    /// fdk-aac's variable bitrate modes, 1 (smallest) to 5 (best).
    Variable(u8),
}

/// One fdk-aac encoder instance configured for AAC-LC with raw output.
pub struct AacEncoder {
    handle: fdk::HANDLE_AACENCODER,
    channels: usize,
    /// The AudioSpecificConfig (ISO 14496-3), as the `esds` DecoderSpecificInfo wants it.
    audio_specific_config: Vec<u8>,
    /// PCM frames per channel that one access unit decodes to (1024 for AAC-LC).
    frame_length: u32,
    /// Frames of priming the decoder outputs before the first input frame.
    delay: u32,
    /// Room for one access unit.
    max_unit_bytes: usize,
    /// Input the encoder has not consumed yet (it takes whole frames at most per call).
    pending: Vec<i16>,
}

impl AacEncoder {
    /// Opens and configures the encoder; fdk-aac's refusals become readable errors.
    pub fn new(sample_rate: u32, channels: u8, rate: RateControl) -> Result<Self, String> {
        let mode = match channels {
            1 => fdk::CHANNEL_MODE_MODE_1,
            2 => fdk::CHANNEL_MODE_MODE_2,
            n => return Err(format!("m4a: {n} channels not supported (mono or stereo)")),
        };
        let mut handle: fdk::HANDLE_AACENCODER = ptr::null_mut();
        // SAFETY: fdk-aac writes a fresh handle into `handle`; 0 = all modules.
        check(unsafe { fdk::aacEncOpen(&mut handle, 0, u32::from(channels)) }, "opening the encoder")?;
        let mut encoder = Self {
            handle,
            channels: channels.into(),
            audio_specific_config: Vec::new(),
            frame_length: 0,
            delay: 0,
            max_unit_bytes: 0,
            pending: Vec::new(),
        };
        encoder.set(fdk::AACENC_PARAM_AACENC_AOT, 2, "audio object type AAC-LC")?;
        encoder.set(fdk::AACENC_PARAM_AACENC_SAMPLERATE, sample_rate, "sample rate")?;
        encoder.set(fdk::AACENC_PARAM_AACENC_CHANNELMODE, mode as u32, "channel mode")?;
        // 1: interleaved in WAV order (L, R), which is how the converter delivers PCM.
        encoder.set(fdk::AACENC_PARAM_AACENC_CHANNELORDER, 1, "channel order")?;
        match rate {
            RateControl::Constant(bps) => {
                encoder.set(fdk::AACENC_PARAM_AACENC_BITRATEMODE, 0, "bitrate mode")?;
                encoder.set(fdk::AACENC_PARAM_AACENC_BITRATE, bps, "bitrate")?;
            }
            RateControl::Variable(mode) => {
                encoder.set(fdk::AACENC_PARAM_AACENC_BITRATEMODE, u32::from(mode), "VBR mode")?;
            }
        }
        // 0: raw access units, the MP4 way (no ADTS/LATM framing).
        encoder.set(fdk::AACENC_PARAM_AACENC_TRANSMUX, 0, "transport (raw)")?;
        // Better quality for more computation, as the FDK documentation recommends when
        // workload is not a concern.
        encoder.set(fdk::AACENC_PARAM_AACENC_AFTERBURNER, 1, "afterburner")?;
        // SAFETY: a call with no buffers applies the parameters (documented initialisation).
        let init = unsafe { fdk::aacEncEncode(encoder.handle, ptr::null(), ptr::null(), ptr::null(), ptr::null_mut()) };
        check(init, "this combination of sample rate, channels and bitrate")?;
        // fdk-aac lowers a bitrate over what the rate and channels allow; refused instead, so a
        // file never has another bitrate than the one asked for.
        if let RateControl::Constant(bps) = rate {
            // SAFETY: a live, initialised handle.
            let effective = unsafe { fdk::aacEncoder_GetParam(encoder.handle, fdk::AACENC_PARAM_AACENC_BITRATE) };
            if effective != bps {
                return Err(format!(
                    "m4a: {} kbps is more than AAC carries at {sample_rate} Hz with {channels} channel(s) (at most {} kbps)",
                    bps / 1000,
                    effective / 1000
                ));
            }
        }
        // SAFETY: an all-zero InfoStruct is valid plain data; fdk-aac fills it.
        let mut info: fdk::AACENC_InfoStruct = unsafe { std::mem::zeroed() };
        check(unsafe { fdk::aacEncInfo(encoder.handle, &mut info) }, "reading the encoder info")?;
        let asc_len = (info.confSize as usize).min(info.confBuf.len());
        encoder.audio_specific_config = info.confBuf[..asc_len].to_vec();
        encoder.frame_length = info.frameLength;
        encoder.delay = info.nDelay;
        encoder.max_unit_bytes = (info.maxOutBufBytes as usize).max(768 * encoder.channels);
        if encoder.audio_specific_config.len() < 2 || encoder.frame_length == 0 {
            return Err("m4a: fdk-aac gave no AudioSpecificConfig".into());
        }
        Ok(encoder)
    }

    pub fn audio_specific_config(&self) -> &[u8] {
        &self.audio_specific_config
    }

    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    /// Priming frames: what the decoder outputs before the first input frame.
    pub fn delay(&self) -> u32 {
        self.delay
    }

    /// Encodes interleaved PCM; calls `unit` with each access unit completed.
    pub fn encode(&mut self, pcm: &[i16], mut unit: impl FnMut(&[u8])) -> Result<(), String> {
        if !pcm.len().is_multiple_of(self.channels) {
            return Err(format!("m4a: {} samples do not divide into {} channels", pcm.len(), self.channels));
        }
        self.pending.extend_from_slice(pcm);
        let whole = self.frame_length as usize * self.channels;
        let mut consumed = 0;
        let mut out = vec![0u8; self.max_unit_bytes];
        // fdk-aac takes at most one frame per call; feed while a whole frame is waiting.
        while self.pending.len() - consumed >= whole {
            let (taken, produced) = call(self.handle, &self.pending[consumed..], &mut out)?.unwrap_or((0, 0));
            consumed += taken;
            if produced > 0 {
                unit(&out[..produced]);
            }
            if taken == 0 && produced == 0 {
                return Err("m4a: fdk-aac made no progress".into());
            }
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    /// Encodes what is left and flushes the encoder's delay line; calls `unit` with each
    /// remaining access unit.
    pub fn flush(&mut self, mut unit: impl FnMut(&[u8])) -> Result<(), String> {
        let mut out = vec![0u8; self.max_unit_bytes];
        let rest = std::mem::take(&mut self.pending);
        let mut consumed = 0;
        while consumed < rest.len() {
            let (taken, produced) = call(self.handle, &rest[consumed..], &mut out)?.unwrap_or((0, 0));
            consumed += taken;
            if produced > 0 {
                unit(&out[..produced]);
            }
            if taken == 0 && produced == 0 {
                break;
            }
        }
        // Then numInSamples = -1 until fdk-aac says it is done.
        for _ in 0..64 {
            match flush_call(self.handle, &mut out)? {
                None => return Ok(()),
                Some((_, produced)) if produced > 0 => unit(&out[..produced]),
                Some(_) => {}
            }
        }
        Err("m4a: fdk-aac did not finish flushing".into())
    }

    fn set(&mut self, param: fdk::AACENC_PARAM, value: u32, what: &str) -> Result<(), String> {
        // SAFETY: a live handle; fdk-aac validates the value.
        check(unsafe { fdk::aacEncoder_SetParam(self.handle, param, value) }, what)
    }
}

/// One `aacEncEncode` with input: (samples consumed, bytes produced).
fn call(handle: fdk::HANDLE_AACENCODER, pcm: &[i16], out: &mut [u8]) -> Result<Option<(usize, usize)>, String> {
    raw_call(handle, Some(pcm), out)
}

/// One flushing `aacEncEncode` (numInSamples −1); `None` once fdk-aac has nothing left.
fn flush_call(handle: fdk::HANDLE_AACENCODER, out: &mut [u8]) -> Result<Option<(usize, usize)>, String> {
    raw_call(handle, None, out)
}

/// One `aacEncEncode`; `None` input flushes. Returns `None` at the end of the flush.
fn raw_call(handle: fdk::HANDLE_AACENCODER, pcm: Option<&[i16]>, out: &mut [u8]) -> Result<Option<(usize, usize)>, String> {
    let empty: [i16; 0] = [];
    let input = pcm.unwrap_or(&empty);
    let mut in_ptr = input.as_ptr() as *mut std::ffi::c_void;
    let mut in_id = fdk::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32;
    let mut in_size = (input.len() * 2) as i32;
    let mut in_el_size = 2i32;
    let in_desc = fdk::AACENC_BufDesc {
        numBufs: 1,
        bufs: &mut in_ptr,
        bufferIdentifiers: &mut in_id,
        bufSizes: &mut in_size,
        bufElSizes: &mut in_el_size,
    };
    let mut out_ptr = out.as_mut_ptr() as *mut std::ffi::c_void;
    let mut out_id = fdk::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32;
    let mut out_size = out.len() as i32;
    let mut out_el_size = 1i32;
    let out_desc = fdk::AACENC_BufDesc {
        numBufs: 1,
        bufs: &mut out_ptr,
        bufferIdentifiers: &mut out_id,
        bufSizes: &mut out_size,
        bufElSizes: &mut out_el_size,
    };
    let in_args = fdk::AACENC_InArgs { numInSamples: if pcm.is_some() { input.len() as i32 } else { -1 }, numAncBytes: 0 };
    let mut out_args = fdk::AACENC_OutArgs { numOutBytes: 0, numInSamples: 0, numAncBytes: 0, bitResState: 0 };
    // SAFETY: every descriptor points at live locals and buffers of the stated sizes for the
    // duration of the call; fdk-aac reads `input` and writes at most `out.len()` bytes.
    let status = unsafe { fdk::aacEncEncode(handle, &in_desc, &out_desc, &in_args, &mut out_args) };
    if status == fdk::AACENC_ERROR_AACENC_ENCODE_EOF {
        return Ok(None);
    }
    check(status, "encoding")?;
    let produced = usize::try_from(out_args.numOutBytes).unwrap_or(0).min(out.len());
    let taken = usize::try_from(out_args.numInSamples).unwrap_or(0).min(input.len());
    Ok(Some((taken, produced)))
}

impl Drop for AacEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from aacEncOpen and is closed once.
        unsafe { fdk::aacEncClose(&mut self.handle) };
    }
}

/// Maps an fdk-aac status to a readable error.
fn check(status: fdk::AACENC_ERROR, what: &str) -> Result<(), String> {
    let reason = match status {
        fdk::AACENC_ERROR_AACENC_OK => return Ok(()),
        fdk::AACENC_ERROR_AACENC_INVALID_HANDLE => "invalid handle",
        fdk::AACENC_ERROR_AACENC_MEMORY_ERROR => "out of memory",
        fdk::AACENC_ERROR_AACENC_UNSUPPORTED_PARAMETER => "unsupported parameter",
        fdk::AACENC_ERROR_AACENC_INVALID_CONFIG => "invalid configuration",
        fdk::AACENC_ERROR_AACENC_INIT_ERROR | fdk::AACENC_ERROR_AACENC_INIT_AAC_ERROR => "configuration not supported",
        fdk::AACENC_ERROR_AACENC_ENCODE_ERROR => "encoding error",
        _ => "error",
    };
    Err(format!("m4a: fdk-aac refused {what}: {reason} (0x{status:02x})"))
}

