//! WAV codec plugin: interleaved s16 PCM in, 16-bit PCM WAV (hound) out, streamed.
//!
//! hound writes the header with zero sizes first and fixes them by seeking back at the end;
//! [`Sink`] turns that into streaming: appended bytes are handed out by each `encode`, and the
//! rewritten header becomes the `finish` patch at offset 0. [`WavSession`] is plain Rust, tested
//! natively, and a [`Codec`]; the kit's `export_codec!` makes it the component's `encoder` on
//! wasm.

use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig};
use hound::{SampleFormat, WavSpec, WavWriter};
use std::cell::RefCell;
use std::io::{self, Seek, SeekFrom, Write};
use std::rc::Rc;

/// Accepted input sample rates.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8000..=192_000;
/// Most channels accepted.
pub const MAX_CHANNELS: u8 = 8;

/// The session result types are the plugin kit's, shared by every codec.
pub use codec_plugin_kit::{Finished, HeaderPatch};

codec_plugin_kit::export_codec!(WavSession);

/// hound's output stream. hound writes the header (44 bytes, or 68 as WAVE_FORMAT_EXTENSIBLE
/// for more than 2 channels), appends samples, and at the end seeks back to rewrite the sizes.
#[derive(Default)]
struct Stream {
    /// Where hound is writing.
    pos: u64,
    /// Bytes written so far (the logical file length).
    len: u64,
    /// Appended bytes not yet handed out.
    pending: Vec<u8>,
    /// Current content of the header.
    header: Vec<u8>,
    /// How long hound's header is.
    header_len: u64,
}

/// The shared handle hound writes into (hound never gives its writer back).
#[derive(Clone)]
struct Sink(Rc<RefCell<Stream>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = &mut *self.0.borrow_mut();
        let end = s.pos + buf.len() as u64;
        if s.pos == s.len {
            s.pending.extend_from_slice(buf);
            s.len = end;
        } else if end > s.header.len() as u64 {
            return Err(io::Error::other("wav: rewrite beyond the header"));
        }
        // Keep the header copy current, both when first written and when rewritten.
        if s.pos < s.header_len {
            let (from, to) = (s.pos as usize, end.min(s.header_len) as usize);
            if s.header.len() < to {
                s.header.resize(to, 0);
            }
            s.header[from..to].copy_from_slice(&buf[..to - from]);
        }
        s.pos = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let s = &mut *self.0.borrow_mut();
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => s.pos.checked_add_signed(d),
            SeekFrom::End(d) => s.len.checked_add_signed(d),
        };
        s.pos = pos
            .filter(|&p| p <= s.len)
            .ok_or_else(|| io::Error::other("wav: seek out of range"))?;
        Ok(s.pos)
    }
}

/// One WAV encoding run.
pub struct WavSession {
    writer: WavWriter<Sink>,
    sink: Sink,
    channels: usize,
}

impl WavSession {
    /// Validates the input layout; the (placeholder) header comes out with the first `encode`.
    pub fn new(sample_rate: u32, channels: u8) -> Result<Self, String> {
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(format!(
                "wav: sample rate {sample_rate} Hz out of range ({SAMPLE_RATES:?})"
            ));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!(
                "wav: {channels} channels not supported (1 to {MAX_CHANNELS})"
            ));
        }
        let spec = WavSpec {
            channels: channels.into(),
            sample_rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        // hound's layout: WAVE_FORMAT_EXTENSIBLE (68 bytes) above 2 channels, else PCMWAVEFORMAT.
        let header_len = if channels > 2 { 68 } else { 44 };
        let sink = Sink(Rc::new(RefCell::new(Stream {
            header_len,
            ..Stream::default()
        })));
        let writer = WavWriter::new(sink.clone(), spec).map_err(|e| format!("wav: {e}"))?;
        Ok(Self {
            writer,
            sink,
            channels: channels.into(),
        })
    }
}

impl Codec for WavSession {
    fn info() -> CodecInfo {
        // Any sample rate: from 8 kHz to 192 kHz.
        CodecInfo {
            max_channels: MAX_CHANNELS,
            ..CodecInfo::new("wav", "wav", "audio/wav")
        }
    }

    /// Reads the layout only: the samples stay 16-bit PCM.
    fn start(config: EncoderConfig) -> Result<Self, String> {
        WavSession::new(config.sample_rate, config.channels)
    }

    /// Appends interleaved PCM; returns the bytes produced so far (the header, first time).
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        codec_plugin_kit::frames("wav", pcm.len(), self.channels)?;
        // RIFF sizes are 32-bit: the data chunk must stay below 4 GiB.
        let data_bytes = u64::from(self.writer.len()) * 2 + pcm.len() as u64 * 2;
        if data_bytes > u64::from(u32::MAX) - 68 {
            return Err("wav: output would exceed the 4 GiB WAV limit".into());
        }
        if !pcm.is_empty() {
            let mut w = self.writer.get_i16_writer(pcm.len() as u32);
            pcm.iter().for_each(|&s| w.write_sample(s));
            w.flush().map_err(|e| format!("wav: {e}"))?;
        }
        Ok(std::mem::take(&mut self.sink.0.borrow_mut().pending))
    }

    /// Lets hound fix the header sizes; the corrected header is the patch at offset 0.
    fn finish(self) -> Result<Finished, String> {
        self.writer.finalize().map_err(|e| format!("wav: {e}"))?;
        let s = &mut *self.sink.0.borrow_mut();
        let header = HeaderPatch {
            offset: 0,
            bytes: s.header.clone(),
        };
        Ok(Finished {
            tail: std::mem::take(&mut s.pending),
            patch: Some(header),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Streams `pcm` in uneven chunks, applies the patch, returns the file.
    fn wav(rate: u32, channels: u8, pcm: &[i16]) -> Vec<u8> {
        let mut s = WavSession::new(rate, channels).unwrap();
        let mut out = Vec::new();
        for chunk in pcm.chunks(channels as usize * 1001) {
            out.extend(s.encode(chunk).unwrap());
        }
        let Finished { tail, patch } = s.finish().unwrap();
        out.extend(tail);
        let patch = patch.unwrap();
        assert_eq!(patch.offset, 0);
        out[..patch.bytes.len()].copy_from_slice(&patch.bytes);
        out
    }

    fn check(rate: u32, channels: u8, frames: usize, header_len: usize) {
        let pcm: Vec<i16> = (0..frames * channels as usize)
            .map(|i| (i as i16).wrapping_mul(7))
            .collect();
        let out = wav(rate, channels, &pcm);
        assert_eq!(out.len(), header_len + pcm.len() * 2);
        let mut r = hound::WavReader::new(Cursor::new(out)).unwrap();
        let spec = WavSpec {
            channels: channels.into(),
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        assert_eq!(r.spec(), spec);
        assert_eq!(r.duration() as usize, frames);
        let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, pcm);
    }

    #[test]
    fn streams_a_valid_wav() {
        check(44100, 2, 44100 * 2, 44);
        check(8000, 1, 12345, 44);
        check(192_000, 8, 5000, 68);
        check(48000, 2, 0, 44);
    }

    #[test]
    fn header_comes_first_with_placeholder_sizes() {
        let mut s = WavSession::new(22050, 1).unwrap();
        let first = s.encode(&[1, 2, 3]).unwrap();
        assert_eq!(first.len(), 44 + 6);
        assert!(first.starts_with(b"RIFF") && &first[8..12] == b"WAVE");
        assert_eq!(&first[40..44], &[0; 4], "data size not known yet");
        assert_eq!(s.encode(&[4]).unwrap(), [4, 0]);
        let patch = s.finish().unwrap().patch.unwrap();
        assert_eq!(patch.bytes.len(), 44);
        assert_eq!(&patch.bytes[40..44], &8u32.to_le_bytes());
        assert_eq!(&patch.bytes[4..8], &(36u32 + 8).to_le_bytes());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(WavSession::new(7999, 2).is_err());
        assert!(WavSession::new(192_001, 2).is_err());
        assert!(WavSession::new(44100, 0).is_err());
        assert!(WavSession::new(44100, 9).is_err());
        let mut s = WavSession::new(44100, 2).unwrap();
        assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
    }

    #[test]
    fn info_offers_what_start_accepts() {
        codec_plugin_kit::testing::info_offers_what_start_accepts::<WavSession>(44100);
    }
}
