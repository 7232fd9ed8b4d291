//! Ogg pages (RFC 3533): packets are laced into 255-byte segments, at most 255 segments a
//! page; each page carries the granule position of the last packet that ends on it (−1 if
//! none does), a sequence number and a CRC-32. Finished pages accumulate as bytes that the
//! caller takes with [`OggStream::take`], so a streaming encoder hands them out as it goes.

/// One logical Ogg stream being written.
pub struct OggStream {
    serial: u32,
    sequence: u32,
    /// Lacing values of the page being filled.
    lacing: Vec<u8>,
    /// Body of the page being filled.
    body: Vec<u8>,
    /// Granule position of the last packet that ends on the page being filled.
    granule: Option<u64>,
    /// Whether the page being filled starts with the rest of a packet.
    continued: bool,
    /// Finished pages not yet taken.
    out: Vec<u8>,
    ended: bool,
}

const FLAG_CONTINUED: u8 = 0x01;
const FLAG_FIRST: u8 = 0x02;
const FLAG_LAST: u8 = 0x04;

impl OggStream {
    pub fn new(serial: u32) -> Self {
        OggStream {
            serial,
            sequence: 0,
            lacing: Vec::with_capacity(255),
            body: Vec::new(),
            granule: None,
            continued: false,
            out: Vec::new(),
            ended: false,
        }
    }

    /// Appends a packet that ends at `granule` (samples at the codec's granule rate). Pages
    /// fill up and are finished as needed; the packet may span several.
    pub fn packet(&mut self, data: &[u8], granule: u64) {
        assert!(!self.ended, "packet after the end of the Ogg stream");
        // N full segments and a final shorter one (0 bytes if the length divides by 255).
        let segments = data.len() / 255 + 1;
        for (i, chunk) in data.chunks(255).chain(data.len().is_multiple_of(255).then_some(&[][..])).enumerate() {
            if self.lacing.len() == 255 {
                self.write_page(0);
                // When the page filled up inside this packet, the next one continues it.
                self.continued = i > 0;
            }
            self.lacing.push(chunk.len() as u8);
            self.body.extend_from_slice(chunk);
            if i + 1 == segments {
                self.granule = Some(granule);
            }
        }
    }

    /// Ends the page being filled, so the next packet starts a new one (header packets need a
    /// page of their own; a page a second keeps seeking fine-grained). No-op on an empty page.
    pub fn flush(&mut self) {
        if !self.lacing.is_empty() {
            self.write_page(0);
        }
    }

    /// Ends the stream: the page being filled is written with the end-of-stream flag (an empty
    /// one if nothing is pending). Its granule position is the last packet's, which is how
    /// Ogg Opus and Ogg Vorbis mark how many samples of the last packet are real.
    pub fn finish(&mut self) {
        if !self.ended {
            self.write_page(FLAG_LAST);
            self.ended = true;
        }
    }

    /// The finished pages written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the stream ([`OggStream::finish`]) and hands out the rest as a session's end: the
    /// pages not taken yet, and no header patch (an Ogg stream needs none).
    pub fn end(&mut self) -> codec_plugin_kit::Finished {
        self.finish();
        codec_plugin_kit::Finished { tail: self.take(), patch: None }
    }

    fn write_page(&mut self, flags: u8) {
        let mut flags = flags;
        if self.continued {
            flags |= FLAG_CONTINUED;
        }
        if self.sequence == 0 {
            flags |= FLAG_FIRST;
        }
        let granule = self.granule.map_or(u64::MAX, |g| g); // −1: no packet ends here
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0); // version
        self.out.push(flags);
        self.out.extend_from_slice(&granule.to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.sequence.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]); // CRC, filled in below
        self.out.push(self.lacing.len() as u8);
        self.out.extend_from_slice(&self.lacing);
        self.out.extend_from_slice(&self.body);
        let crc = crc32(&self.out[start..]);
        self.out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.sequence += 1;
        self.lacing.clear();
        self.body.clear();
        self.granule = None;
        self.continued = false;
    }
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final XOR.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            (0..8).fold((i as u32) << 24, |r, _| if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04C1_1DB7 } else { r << 1 })
        })
    });
    bytes.iter().fold(0, |crc, &b| (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize])
}

/// A page as read back by [`read_pages`]: (flags, granule, sequence, lacing, body).
#[cfg(any(test, feature = "testing"))]
pub type Page = (u8, u64, u32, Vec<u8>, Vec<u8>);

/// The pages of an Ogg stream, for tests: each must start with `OggS` and carry its CRC.
#[cfg(any(test, feature = "testing"))]
pub fn read_pages(mut bytes: &[u8]) -> Vec<Page> {
    let mut pages = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(&bytes[..4], b"OggS");
        let n = bytes[26] as usize;
        let lacing = bytes[27..27 + n].to_vec();
        let len = 27 + n + lacing.iter().map(|&l| l as usize).sum::<usize>();
        let mut page = bytes[..len].to_vec();
        let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].fill(0);
        assert_eq!(crc32(&page), crc, "page CRC");
        pages.push((
            bytes[5],
            u64::from_le_bytes(bytes[6..14].try_into().unwrap()),
            u32::from_le_bytes(bytes[18..22].try_into().unwrap()),
            lacing,
            bytes[27 + n..len].to_vec(),
        ));
        bytes = &bytes[len..];
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_value() {
        // The CRC-32/MPEG-2 check value without its initial 0xFFFFFFFF is Ogg's.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn small_packets_share_a_page_and_the_last_granule_marks_it() {
        let mut s = OggStream::new(7);
        s.packet(b"head", 0);
        s.flush();
        s.packet(&[1; 10], 960);
        s.packet(&[2; 255], 1920);
        s.finish();
        let p = read_pages(&s.take());
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].0, p[0].1, p[0].2), (FLAG_FIRST, 0, 0));
        assert_eq!(p[1].0, FLAG_LAST);
        assert_eq!(p[1].1, 1920);
        // 255 bytes need a 255 segment and a terminating 0.
        assert_eq!(p[1].3, [10, 255, 0]);
        assert_eq!(p[1].4.len(), 265);
    }

    #[test]
    fn a_large_packet_spans_pages_with_continuation_flags() {
        let mut s = OggStream::new(1);
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        s.packet(&big, 0);
        s.flush();
        s.packet(&[9; 3], 48000);
        s.finish();
        let p = read_pages(&s.take());
        let body: Vec<u8> = p.iter().take_while(|pg| pg.4 != [9; 3]).flat_map(|pg| pg.4.clone()).collect();
        assert_eq!(body, big);
        assert!(p.len() > 3);
        for (i, pg) in p.iter().enumerate() {
            assert_eq!(pg.2, i as u32, "sequence numbers count up");
        }
        let spanning = p.len() - 1;
        for pg in &p[1..spanning] {
            assert_ne!(pg.0 & FLAG_CONTINUED, 0);
        }
        // Only the page where the big packet ends has its granule; the others say −1.
        assert_eq!(p[0].1, u64::MAX);
        assert_eq!(p[spanning - 1].1, 0);
        assert_eq!(p[spanning].1, 48000);
        assert_eq!(p[spanning].0, FLAG_LAST);
    }
}
