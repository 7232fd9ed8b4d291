//! Reading MPEG audio layer III frames: where each frame is, where its main data area lies,
//! how far back into earlier frames its main data begins (the bit reservoir), and whether
//! its granules use long blocks only. This is what splicing segments needs; nothing here
//! decodes audio.

/// One layer III frame inside a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame's header in the stream.
    pub offset: usize,
    /// Whole frame length in bytes (header, CRC, side information, main data area).
    pub len: usize,
    /// Bytes before the main data area: header, CRC and side information.
    pub head_len: usize,
    /// Bytes of main data this frame takes from the areas of the frames before it.
    pub main_data_begin: usize,
    /// Every granule and channel uses a normal long block (no window switching), so the
    /// frame overlaps its neighbours with the plain window whoever encoded them.
    pub long_blocks: bool,
    /// PCM frames the frame decodes to (1152 for MPEG-1, 576 for MPEG-2 and 2.5).
    pub samples: u32,
}

impl Frame {
    /// The main data area: the frame's bytes after its side information.
    pub fn data_area(&self) -> std::ops::Range<usize> {
        self.offset + self.head_len..self.offset + self.len
    }
}

const BITRATES_MPEG1: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const RATES_MPEG1: [u32; 3] = [44100, 48000, 32000];

/// Big-endian bit reader over the side information.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            let byte = self.bytes.get(self.pos / 8).copied().unwrap_or(0);
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        v
    }
}

/// What the 4 header bytes say: (MPEG-1, mono, CRC present, frame length); `None` when they
/// are not a valid layer III header. Free-format frames are not read (LAME never writes them
/// unless asked).
fn header(h: &[u8]) -> Option<(bool, bool, bool, usize)> {
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (h[1] >> 1) & 3; // 1: layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let protected = h[1] & 1 == 0;
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 3);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let padding = usize::from((h[2] >> 1) & 1);
    let mono = h[3] >> 6 == 3;
    let mpeg1 = version == 3;
    let rate = match version {
        3 => RATES_MPEG1[rate_index],
        2 => RATES_MPEG1[rate_index] / 2,
        _ => RATES_MPEG1[rate_index] / 4,
    };
    let (kbps, per_frame) = if mpeg1 { (BITRATES_MPEG1[bitrate_index], 144) } else { (BITRATES_MPEG2[bitrate_index], 72) };
    let len = (per_frame * kbps as usize * 1000) / rate as usize + padding;
    Some((mpeg1, mono, protected, len))
}

/// Larger forms of `frame` (which starts `bytes`' header): the third header byte and the
/// length for its padding slot and for each higher bitrate, shortest first. A frame with a
/// CRC has none (its CRC covers the header).
pub fn larger_forms(bytes: &[u8], frame: &Frame) -> Vec<(u8, usize)> {
    let h = &bytes[frame.offset..frame.offset + 4];
    let mut forms = Vec::new();
    if h[1] & 1 == 0 {
        return forms;
    }
    for index in (h[2] >> 4)..15 {
        for padding in [0u8, 2] {
            let byte = (index << 4) | (h[2] & 0x0D) | padding;
            if let Some((_, _, _, len)) = header(&[h[0], h[1], byte, h[3]])
                && len > frame.len
            {
                forms.push((byte, len));
            }
        }
    }
    forms.sort_by_key(|&(_, len)| len);
    forms
}

/// Parses the layer III frame at the start of `bytes` (`offset` is where that is in the
/// stream); `None` when it is not a complete, valid layer III frame.
pub fn parse_at(bytes: &[u8], offset: usize) -> Option<Frame> {
    let (mpeg1, mono, protected, len) = header(bytes.get(offset..offset + 4)?)?;
    let side_len = match (mpeg1, mono) {
        (true, true) => 17,
        (true, false) => 32,
        (false, true) => 9,
        (false, false) => 17,
    };
    let head_len = 4 + if protected { 2 } else { 0 } + side_len;
    if offset + len > bytes.len() || head_len > len {
        return None;
    }
    let side = &bytes[offset + head_len - side_len..offset + head_len];
    let mut bits = Bits {
        bytes: side,
        pos: 0,
    };
    let channels = if mono { 1 } else { 2 };
    let (main_data_begin, granules) = if mpeg1 {
        let begin = bits.take(9);
        bits.take(if mono { 5 } else { 3 }); // private bits
        bits.take(4 * channels); // scfsi
        (begin, 2)
    } else {
        let begin = bits.take(8);
        bits.take(if mono { 1 } else { 2 });
        (begin, 1)
    };
    let mut long_blocks = true;
    for _ in 0..granules {
        for _ in 0..channels {
            bits.take(12 + 9 + 8); // part2_3_length, big_values, global_gain
            bits.take(if mpeg1 { 4 } else { 9 }); // scalefac_compress
            if bits.take(1) == 1 {
                long_blocks = false;
            }
            bits.take(22); // block type and table selection, or table selection and regions
            bits.take(if mpeg1 { 3 } else { 2 }); // (preflag,) scalefac_scale, count1table_select
        }
    }
    Some(Frame {
        offset,
        len,
        head_len,
        main_data_begin: main_data_begin as usize,
        long_blocks,
        samples: if mpeg1 { 1152 } else { 576 },
    })
}

/// Every frame of `bytes` from `start` on, back to back; stops at the first byte that does
/// not begin a frame (the caller checks that everything was read).
pub fn parse_all(bytes: &[u8], start: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut at = start;
    while let Some(frame) = parse_at(bytes, at) {
        at += frame.len;
        frames.push(frame);
    }
    frames
}
