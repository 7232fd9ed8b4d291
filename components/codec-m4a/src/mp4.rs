//! A small streaming MP4 (M4A) writer for one AAC track, shaped by how the platform stores
//! output: bytes are handed out as they are produced and only the first output chunk can be
//! rewritten at the end. So the file is `ftyp`, `free`, `mdat` (size patched at the end; the
//! `free` box is the room to turn `mdat` into a 64-bit box past 4 GiB), the access units as they
//! come, and `moov` last, with the sample tables, an edit list that trims the encoder's
//! priming and padding exactly, and iTunes metadata (`udta/meta/ilst`, `covr`).
//!
//! Layouts follow ISO/IEC 14496-12 (boxes), 14496-14 (`esds`, `mp4a`) and Apple's iTunes
//! metadata conventions.

/// Access units per MP4 chunk (about 1.5 s at 44.1 kHz): few `stco` entries, short seeks.
pub const SAMPLES_PER_CHUNK: u32 = 64;

/// What the `moov` box describes about the one audio track.
pub struct Track<'a> {
    pub sample_rate: u32,
    pub channels: u8,
    /// AudioSpecificConfig for the `esds` box.
    pub audio_specific_config: &'a [u8],
    /// PCM frames per access unit (1024 for AAC-LC).
    pub frame_length: u32,
    /// Frames to skip at the start of the decoded stream (priming): the edit's media time.
    pub skip_frames: u64,
    /// Frames to present after the skip: the exact source length (the edit's duration).
    pub play_frames: u64,
}

/// The tags for `ilst`, and the cover for `covr` (JPEG or PNG; its size is not stored).
pub use codec_plugin_kit::{Picture, Tags};

/// Bytes to write over the start of the output at the end.
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The file's layout as access units are appended.
pub struct Mp4Writer {
    /// Where the `free` box starts (right after `ftyp`).
    free_at: u64,
    /// Where the access units start.
    payload_at: u64,
    /// Size in bytes of each access unit, in order.
    sizes: Vec<u32>,
    payload_len: u64,
}

impl Mp4Writer {
    /// A writer and the file's first bytes: `ftyp`, `free` and the `mdat` header.
    pub fn new() -> (Self, Vec<u8>) {
        // M4A brand first, as iTunes and FFmpeg write audio-only MP4.
        let ftyp = boxed(b"ftyp", [b"M4A ".as_slice(), &0x200u32.to_be_bytes(), b"M4A isomiso2mp41"].concat());
        let free_at = ftyp.len() as u64;
        let mut head = ftyp;
        head.extend(boxed(b"free", Vec::new()));
        // Size 0 ("to the end of the file") until the patch sets it.
        head.extend(0u32.to_be_bytes());
        head.extend(b"mdat");
        let payload_at = head.len() as u64;
        (Self { free_at, payload_at, sizes: Vec::new(), payload_len: 0 }, head)
    }

    /// Records one access unit written right after the previous one.
    pub fn add_sample(&mut self, len: usize) -> Result<(), String> {
        let len = u32::try_from(len).map_err(|_| "m4a: an access unit over 4 GiB".to_string())?;
        self.sizes.push(len);
        self.payload_len += u64::from(len);
        Ok(())
    }

    pub fn samples(&self) -> usize {
        self.sizes.len()
    }

    /// The patch that sizes `mdat` (a 32-bit box after `free`, or a 64-bit box over `free` and
    /// the old header when it exceeds 4 GiB) and the `moov` box to append.
    pub fn finish(&self, track: &Track, tags: &Tags, cover: Option<&Picture>) -> (Patch, Vec<u8>) {
        let small = 8 + self.payload_len;
        let patch = match u32::try_from(small) {
            Ok(size) => [boxed(b"free", Vec::new()), size.to_be_bytes().to_vec(), b"mdat".to_vec()].concat(),
            Err(_) => [1u32.to_be_bytes().as_slice(), b"mdat", &(16 + self.payload_len).to_be_bytes()].concat(),
        };
        (Patch { offset: self.free_at, bytes: patch }, self.moov(track, tags, cover))
    }

    fn moov(&self, track: &Track, tags: &Tags, cover: Option<&Picture>) -> Vec<u8> {
        let media_duration = self.sizes.len() as u64 * u64::from(track.frame_length);
        let mut moov = mvhd(track.sample_rate, track.play_frames);
        moov.extend(boxed(b"trak", [tkhd(track.play_frames), edts(track), self.mdia(track, media_duration)].concat()));
        let ilst = ilst(tags, cover);
        if !ilst.is_empty() {
            moov.extend(boxed(b"udta", meta(ilst)));
        }
        boxed(b"moov", moov)
    }

    fn mdia(&self, track: &Track, media_duration: u64) -> Vec<u8> {
        let (version, times) = times(media_duration);
        let mut mdhd = times.0;
        mdhd.extend(track.sample_rate.to_be_bytes());
        mdhd.extend(times.1);
        mdhd.extend(0x55C4u16.to_be_bytes()); // language "und"
        mdhd.extend(0u16.to_be_bytes());
        let hdlr = full_box(b"hdlr", 0, 0, [&[0u8; 4][..], b"soun", &[0u8; 12], b"SoundHandler\0"].concat());
        let smhd = full_box(b"smhd", 0, 0, vec![0; 4]);
        let dinf = boxed(b"dinf", full_box(b"dref", 0, 0, [1u32.to_be_bytes().to_vec(), full_box(b"url ", 0, 1, Vec::new())].concat()));
        let minf = boxed(b"minf", [smhd, dinf, self.stbl(track)].concat());
        boxed(b"mdia", [full_box(b"mdhd", version, 0, mdhd), hdlr, minf].concat())
    }

    fn stbl(&self, track: &Track) -> Vec<u8> {
        let n = self.sizes.len() as u32;
        let stsd = full_box(b"stsd", 0, 0, [1u32.to_be_bytes().to_vec(), self.mp4a(track)].concat());
        let stts = full_box(
            b"stts",
            0,
            0,
            if n == 0 {
                0u32.to_be_bytes().to_vec()
            } else {
                [1u32, n, track.frame_length].iter().flat_map(|v| v.to_be_bytes()).collect()
            },
        );
        // Chunks of SAMPLES_PER_CHUNK samples; the last may be shorter.
        let chunks = n.div_ceil(SAMPLES_PER_CHUNK);
        let last = n - chunks.saturating_sub(1) * SAMPLES_PER_CHUNK;
        let mut stsc_entries: Vec<[u32; 3]> = Vec::new();
        if chunks > 0 {
            stsc_entries.push([1, if chunks == 1 { last } else { SAMPLES_PER_CHUNK }, 1]);
            if chunks > 1 && last != SAMPLES_PER_CHUNK {
                stsc_entries.push([chunks, last, 1]);
            }
        }
        let mut stsc = (stsc_entries.len() as u32).to_be_bytes().to_vec();
        stsc.extend(stsc_entries.iter().flatten().flat_map(|v| v.to_be_bytes()));
        let mut stsz = [0u32.to_be_bytes(), n.to_be_bytes()].concat();
        stsz.extend(self.sizes.iter().flat_map(|s| s.to_be_bytes()));
        let mut offsets = Vec::with_capacity(chunks as usize);
        let mut at = self.payload_at;
        for (i, size) in self.sizes.iter().enumerate() {
            if (i as u32).is_multiple_of(SAMPLES_PER_CHUNK) {
                offsets.push(at);
            }
            at += u64::from(*size);
        }
        let chunk_offsets = if offsets.last().is_some_and(|&o| o > u64::from(u32::MAX)) {
            let mut co64 = (offsets.len() as u32).to_be_bytes().to_vec();
            co64.extend(offsets.iter().flat_map(|o| o.to_be_bytes()));
            full_box(b"co64", 0, 0, co64)
        } else {
            let mut stco = (offsets.len() as u32).to_be_bytes().to_vec();
            stco.extend(offsets.iter().flat_map(|&o| (o as u32).to_be_bytes()));
            full_box(b"stco", 0, 0, stco)
        };
        boxed(
            b"stbl",
            [stsd, stts, full_box(b"stsc", 0, 0, stsc), full_box(b"stsz", 0, 0, stsz), chunk_offsets].concat(),
        )
    }

    /// The `mp4a` sample entry with its `esds`.
    fn mp4a(&self, track: &Track) -> Vec<u8> {
        let mut entry = vec![0u8; 6];
        entry.extend(1u16.to_be_bytes()); // data reference index
        entry.extend([0u8; 8]);
        entry.extend(u16::from(track.channels).to_be_bytes());
        entry.extend(16u16.to_be_bytes());
        entry.extend([0u8; 4]);
        // 16.16 fixed point; rates above 65535 Hz do not fit and are read from the ASC.
        let rate = if track.sample_rate <= 0xFFFF { track.sample_rate << 16 } else { 0 };
        entry.extend(rate.to_be_bytes());
        entry.extend(self.esds(track));
        boxed(b"mp4a", entry)
    }

    fn esds(&self, track: &Track) -> Vec<u8> {
        let max_unit = self.sizes.iter().copied().max().unwrap_or(0);
        let seconds = self.sizes.len() as f64 * f64::from(track.frame_length) / f64::from(track.sample_rate.max(1));
        let average = if seconds > 0.0 { (self.payload_len as f64 * 8.0 / seconds) as u32 } else { 0 };
        // The largest unit over one frame's time, as a rate.
        let peak = (u64::from(max_unit) * 8 * u64::from(track.sample_rate) / u64::from(track.frame_length.max(1))) as u32;
        let mut config = vec![0x40, 0x15]; // MPEG-4 Audio; audio stream, upstream 0, reserved 1
        config.extend(&max_unit.to_be_bytes()[1..]); // bufferSizeDB, 24 bits
        config.extend(peak.max(average).to_be_bytes());
        config.extend(average.to_be_bytes());
        config.extend(descriptor(0x05, track.audio_specific_config));
        let mut es = 1u16.to_be_bytes().to_vec(); // ES_ID
        es.push(0); // no dependency, URL or OCR stream
        es.extend(descriptor(0x04, &config));
        es.extend(descriptor(0x06, &[0x02])); // SLConfig: predefined MP4
        full_box(b"esds", 0, 0, descriptor(0x03, &es))
    }
}

/// The movie header: timescale = the sample rate, so durations are frame counts.
fn mvhd(sample_rate: u32, duration: u64) -> Vec<u8> {
    let (version, times) = times(duration);
    let mut body = times.0;
    body.extend(sample_rate.to_be_bytes());
    body.extend(times.1);
    body.extend(0x0001_0000u32.to_be_bytes()); // rate 1.0
    body.extend(0x0100u16.to_be_bytes()); // volume 1.0
    body.extend([0u8; 10]);
    body.extend(MATRIX.iter().flat_map(|v| v.to_be_bytes()));
    body.extend([0u8; 24]);
    body.extend(2u32.to_be_bytes()); // next track ID
    full_box(b"mvhd", version, 0, body)
}

/// The track header: enabled, in the movie; track 1; full volume.
fn tkhd(duration: u64) -> Vec<u8> {
    let (version, (created_modified, duration)) = times(duration);
    let mut body = created_modified;
    body.extend(1u32.to_be_bytes()); // track ID
    body.extend([0u8; 4]);
    body.extend(duration);
    body.extend([0u8; 8]);
    body.extend(0u16.to_be_bytes()); // layer
    body.extend(1u16.to_be_bytes()); // alternate group
    body.extend(0x0100u16.to_be_bytes()); // volume
    body.extend([0u8; 2]);
    body.extend(MATRIX.iter().flat_map(|v| v.to_be_bytes()));
    body.extend([0u8; 8]); // width, height
    full_box(b"tkhd", version, 3, body)
}

/// One edit: skip the priming (media time) and present exactly the source's length.
fn edts(track: &Track) -> Vec<u8> {
    let small = u32::try_from(track.play_frames).is_ok() && i32::try_from(track.skip_frames).is_ok();
    let mut body = 1u32.to_be_bytes().to_vec();
    if small {
        body.extend((track.play_frames as u32).to_be_bytes());
        body.extend((track.skip_frames as i32).to_be_bytes());
    } else {
        body.extend(track.play_frames.to_be_bytes());
        body.extend((track.skip_frames as i64).to_be_bytes());
    }
    body.extend(1i16.to_be_bytes()); // media rate 1.0
    body.extend(0i16.to_be_bytes());
    boxed(b"edts", full_box(b"elst", if small { 0 } else { 1 }, 0, body))
}

/// `meta` (a full box in iTunes files) with its `mdir` handler and the `ilst`.
fn meta(ilst: Vec<u8>) -> Vec<u8> {
    let hdlr = full_box(b"hdlr", 0, 0, [&[0u8; 4][..], b"mdir", b"appl", &[0u8; 8], b"\0"].concat());
    full_box(b"meta", 0, 0, [hdlr, boxed(b"ilst", ilst)].concat())
}

/// The iTunes items that have a value: `©nam ©ART ©alb ©day ©cmt ©gen trkn covr` and the
/// encoder in `©too`; empty when there is nothing but the encoder to say.
fn ilst(tags: &Tags, cover: Option<&Picture>) -> Vec<u8> {
    let text = |s: &Option<String>| s.as_deref().map(clean).filter(|s| !s.is_empty());
    let mut items = Vec::new();
    for (name, value) in [
        (*b"\xa9nam", &tags.title),
        (*b"\xa9ART", &tags.artist),
        (*b"\xa9alb", &tags.album),
        (*b"\xa9day", &tags.year),
        (*b"\xa9cmt", &tags.comment),
        (*b"\xa9gen", &tags.genre),
    ] {
        if let Some(v) = text(value) {
            items.extend(item(&name, 1, v.as_bytes()));
        }
    }
    if let Some((number, total)) = tags.track.as_deref().and_then(track_number) {
        let payload = [[0, 0], number.to_be_bytes(), total.to_be_bytes(), [0, 0]].concat();
        items.extend(item(b"trkn", 0, &payload));
    }
    if let Some(cover) = cover {
        let kind = match cover.mime_type.as_str() {
            "image/png" => Some(14),
            "image/jpeg" | "image/jpg" => Some(13),
            _ => None,
        };
        if let Some(kind) = kind.filter(|_| !cover.data.is_empty()) {
            items.extend(item(b"covr", kind, &cover.data));
        }
    }
    if items.is_empty() {
        return items;
    }
    items.extend(item(b"\xa9too", 1, b"mp3edge (fdk-aac)"));
    items
}

/// One `ilst` item: a box named like the tag holding a `data` box of the given well-known type
/// (1 UTF-8, 0 implicit, 13 JPEG, 14 PNG).
fn item(name: &[u8; 4], kind: u32, payload: &[u8]) -> Vec<u8> {
    let data = boxed(b"data", [&kind.to_be_bytes()[..], &[0u8; 4], payload].concat());
    boxed(name, data)
}

/// Trimmed, without NULs, at most 1024 characters (as a tag, not a document).
fn clean(s: &str) -> String {
    s.trim().chars().filter(|&c| c != '\0').take(1024).collect()
}

/// `3` or `3/12` → (3, 0) or (3, 12); numbers past 65535 or not numbers: none.
fn track_number(s: &str) -> Option<(u16, u16)> {
    let mut parts = s.trim().splitn(2, '/');
    let number = parts.next()?.trim().parse::<u16>().ok().filter(|&n| n > 0)?;
    let total = match parts.next() {
        Some(t) => t.trim().parse::<u16>().unwrap_or(0),
        None => 0,
    };
    Some((number, total))
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Version and the (creation + modification time, duration) fields for a duration: version 0
/// with 32-bit fields when it fits, else version 1 with 64-bit ones. Times are 0 (unknown), so
/// the same input gives the same file.
fn times(duration: u64) -> (u8, (Vec<u8>, Vec<u8>)) {
    match u32::try_from(duration) {
        Ok(d) => (0, (vec![0; 8], d.to_be_bytes().to_vec())),
        Err(_) => (1, (vec![0; 16], duration.to_be_bytes().to_vec())),
    }
}

/// A box: 32-bit size, type, body.
pub fn boxed(kind: &[u8; 4], body: Vec<u8>) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend(((8 + body.len()) as u32).to_be_bytes());
    b.extend(kind);
    b.extend(body);
    b
}

/// A full box: a box whose body starts with version and 24-bit flags.
fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: Vec<u8>) -> Vec<u8> {
    let mut b = vec![version];
    b.extend(&flags.to_be_bytes()[1..]);
    b.extend(body);
    boxed(kind, b)
}

/// An MPEG-4 descriptor (14496-1): tag, size in 7-bit groups, body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut size = Vec::new();
    let mut n = body.len();
    size.push((n & 0x7F) as u8);
    n >>= 7;
    while n > 0 {
        size.push(0x80 | (n & 0x7F) as u8);
        n >>= 7;
    }
    size.reverse();
    [&[tag][..], &size, body].concat()
}
