//! Checks on converted audio: decode it with `minimp3` or `hound`, and read an mp3's
//! Xing/LAME info frame (frame count, encoder delay and padding) for its exact duration.

/// What a decoded output holds.
#[derive(Debug)]
pub struct Decoded {
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames (samples per channel) that the decoder produced.
    pub frames: u64,
    /// Exact duration in frames according to the file's own header (mp3: info frame).
    pub exact_frames: Option<u64>,
}

/// Samples per MPEG-1 Layer III frame (MPEG-2/2.5 use 576).
pub fn mp3_frame_len(sample_rate: u32) -> u64 {
    if sample_rate >= 32000 { 1152 } else { 576 }
}

pub fn decode_mp3(bytes: &[u8]) -> Decoded {
    let mut decoder = minimp3::Decoder::new(std::io::Cursor::new(bytes));
    let (mut rate, mut channels, mut frames) = (0u32, 0u16, 0u64);
    loop {
        match decoder.next_frame() {
            Ok(frame) => {
                rate = frame.sample_rate as u32;
                channels = frame.channels as u16;
                frames += (frame.data.len() / frame.channels.max(1)) as u64;
            }
            Err(minimp3::Error::Eof) => break,
            Err(minimp3::Error::SkippedData) => continue,
            Err(e) => panic!("mp3 does not decode: {e:?}"),
        }
    }
    assert!(frames > 0, "no audio decoded");
    Decoded { sample_rate: rate, channels, frames, exact_frames: lame_exact_frames(bytes, rate) }
}

/// Frame count × frame length − delay − padding, from the LAME info frame.
fn lame_exact_frames(bytes: &[u8], rate: u32) -> Option<u64> {
    let start = if bytes.starts_with(b"ID3") {
        let size = bytes[6..10].iter().fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
        10 + size
    } else {
        0
    };
    let frame = &bytes[start..(start + 2048).min(bytes.len())];
    let tag = frame.windows(4).position(|w| w == b"Xing" || w == b"Info")?;
    let flags = u32::from_be_bytes(frame[tag + 4..tag + 8].try_into().ok()?);
    if flags & 1 == 0 {
        return None;
    }
    let count = u64::from(u32::from_be_bytes(frame[tag + 8..tag + 12].try_into().ok()?));
    let lame = frame.windows(4).position(|w| w == b"LAME")?;
    let d = &frame[lame + 21..lame + 24];
    let delay = (u64::from(d[0]) << 4) | (u64::from(d[1]) >> 4);
    let padding = ((u64::from(d[1]) & 0x0f) << 8) | u64::from(d[2]);
    Some(count * mp3_frame_len(rate) - delay - padding)
}

pub fn decode_wav(bytes: &[u8]) -> Decoded {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("wav parses");
    let spec = reader.spec();
    assert_eq!(spec.bits_per_sample, 16);
    let frames = u64::from(reader.duration());
    let samples = reader.into_samples::<i16>().count() as u64;
    assert_eq!(samples, frames * u64::from(spec.channels), "header and data agree");
    Decoded { sample_rate: spec.sample_rate, channels: spec.channels, frames, exact_frames: Some(frames) }
}
