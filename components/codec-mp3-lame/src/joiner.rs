//! Joins encoded segments into the MP3 a serial encode would have made.
//!
//! Neighbouring segments overlap: each encoder also encoded [`crate::segment::LEAD_FRAMES`]
//! frames on the far side of its seam. The seam is moved to a splice frame `j` inside the
//! overlap where the output stays valid and clean:
//! - frames before `j` come from the earlier segment (A), frames from `j` on from the later
//!   one (B), byte for byte;
//! - B's frame `j` begins its main data `main_data_begin` bytes back, in the bit reservoir.
//!   In A's stream, the last `main_data_begin(A, j)` bytes of the main data areas before `j`
//!   belong to no frame before `j`, so `j` is a splice point when B's reservoir fits into that
//!   free space: the bytes B kept there are copied into it and the rest is zeroed;
//!   When B needs a few bytes more than that, A's frame `j - 1` takes its padding slot or the
//!   next bitrate up (a CBR file keeps one slightly larger frame);
//! - A's frame `j - 1` and B's frame `j` use plain long blocks, so the windows that overlap
//!   across the seam match whoever chose them (a point without that is taken only when the
//!   overlap has none).
//!
//! A segment's last frames are held until the next one arrives, since the splice writes into
//! them; the rest is final as soon as the segment comes, and goes out at once, in the buffer
//! it came in: the joiner's memory holds one segment, not two and a copy. At the end, the
//! info frame is rewritten for the whole file ([`crate::xing`]).

use crate::frames::{self, Frame};
use crate::segment::{EncodedSegment, LEAD_FRAMES};
use crate::xing;
use codec_plugin_kit::{Finished, HeaderPatch};

/// Frames at the edges of a segment's encode that a splice does not use: LAME's first frames
/// (its reservoir and psychoacoustic history are still empty) and its last (flushed with
/// silence).
const SETTLE_FRAMES: u64 = (LEAD_FRAMES / 2) as u64;
const EDGE_FRAMES: u64 = 3;

/// How far back from a splice frame its bytes may be written: one bit reservoir (511 bytes at
/// most) spans a few frames at high bitrates and about twenty at the lowest.
const REACH_FRAMES: usize = 64;

/// Frames a segment keeps for the next splice. The next seam is its lead-out from the
/// segment's end, the splice at most `LEAD_FRAMES` from the seam, and the splice writes up to
/// `REACH_FRAMES` back.
const KEEP_FRAMES: usize = 4 * LEAD_FRAMES as usize + REACH_FRAMES;

/// A segment waiting for its successor.
struct Held {
    stream: Vec<u8>,
    frames: Vec<Frame>,
    /// Index (in the whole output's audio frames) of `frames[0]`.
    first_index: u64,
    /// PCM frames of the input this segment's encoder received, from the input's start.
    input_end: u64,
    /// First of `frames` not yet emitted.
    next: usize,
    /// The frames before `frames[0]` were emitted: a splice must leave `REACH_FRAMES` before it.
    trimmed: bool,
}

/// The joiner of one output.
pub struct Joiner {
    held: Option<Held>,
    frame_samples: u32,
    /// Where the info frame goes (after the ID3v2 tag) and the first segment's version of it.
    info_offset: u64,
    info_template: Vec<u8>,
    /// Every audio frame's length so far, for the seek table: two bytes each (a frame's
    /// length comes from its header's bitrate table, 2,881 bytes at most), since the
    /// instance's memory keeps its peak.
    frame_lengths: Vec<u16>,
    music_crc: xing::MusicCrc,
    /// PCM frames of the input, as far as the segments so far reach.
    samples: u64,
}

fn index_of(frame: u64, frame_samples: u32) -> u64 {
    frame / u64::from(frame_samples)
}

impl Joiner {
    pub fn new(sample_rate: u32) -> Joiner {
        Joiner {
            held: None,
            frame_samples: crate::segment::frame_samples(sample_rate),
            info_offset: 0,
            info_template: Vec::new(),
            frame_lengths: Vec::new(),
            music_crc: xing::MusicCrc::new(),
            samples: 0,
        }
    }

    /// Adds the next segment; returns the output that is final now.
    pub fn add(&mut self, segment: Vec<u8>) -> Result<Vec<u8>, String> {
        let segment = EncodedSegment::from_bytes(segment)?;
        if !segment
            .first_frame
            .is_multiple_of(u64::from(self.frame_samples))
        {
            return Err("mp3: a segment does not start on a frame boundary".into());
        }
        let header_len = segment.header_len as usize;
        let frames = frames::parse_all(&segment.stream, header_len);
        let parsed: usize = header_len + frames.iter().map(|f| f.len).sum::<usize>();
        if parsed != segment.stream.len() {
            return Err(format!(
                "mp3: a segment's stream is not whole MP3 frames (byte {parsed} of {})",
                segment.stream.len()
            ));
        }
        let incoming = Held {
            first_index: index_of(segment.first_frame, self.frame_samples),
            input_end: segment.first_frame + segment.frames,
            frames,
            next: 0,
            stream: segment.stream,
            trimmed: false,
        };
        self.samples = incoming.input_end;
        let Some(mut earlier) = self.held.take() else {
            if segment.first_frame != 0 {
                return Err("mp3: the first segment must start at the input's start".into());
            }
            self.info_offset = u64::from(segment.header_len) - segment.info_frame.len() as u64;
            self.info_template = segment.info_frame;
            let header = incoming.stream[..header_len].to_vec();
            let mut incoming = incoming;
            let out = self.emit_head(&mut incoming, header);
            self.held = Some(incoming);
            return Ok(out);
        };
        let mut later = incoming;
        let seam = index_of(
            segment.first_frame + u64::from(segment.lead_in),
            self.frame_samples,
        );
        let (splice, growth) = self.choose_splice(&earlier, &later, seam)?;
        let a = (splice - earlier.first_index) as usize;
        let b = (splice - later.first_index) as usize;
        let reservoir = later.frames[b].main_data_begin;
        let carried = bytes_before(&later.stream, &later.frames, b, reservoir);
        let mut free = earlier.frames[a].main_data_begin;
        if let Some((byte, len)) = growth {
            // A's last frame grows at its end: more free space after its main data.
            let before = &mut earlier.frames[a - 1];
            let (end, extra) = (before.offset + before.len, len - before.len);
            earlier.stream[before.offset + 2] = byte;
            earlier.stream.splice(end..end, std::iter::repeat_n(0, extra));
            before.len = len;
            free += extra;
        }
        write_before(&mut earlier.stream, &earlier.frames, a, &vec![0; free]);
        write_before(&mut earlier.stream, &earlier.frames, a, &carried);
        let out = self.emit(&earlier, earlier.next..a);
        drop(earlier);
        later.next = b;
        let out = self.emit_head(&mut later, out);
        self.held = Some(later);
        Ok(out)
    }

    /// `before`, then `held`'s frames from `next` up to its last `KEEP_FRAMES`, which alone
    /// it keeps. The output reuses the buffer of `held`'s stream.
    fn emit_head(&mut self, held: &mut Held, before: Vec<u8>) -> Vec<u8> {
        let cut = held.frames.len().saturating_sub(KEEP_FRAMES);
        if cut <= held.next {
            return before;
        }
        let (start, end) = (held.frames[held.next].offset, held.frames[cut].offset);
        let kept = held.stream[end..].to_vec();
        let mut out = std::mem::replace(&mut held.stream, kept);
        out.truncate(end);
        self.count(&held.frames[held.next..cut], &out[start..]);
        out.splice(..start, before);
        held.frames.drain(..cut);
        for frame in &mut held.frames {
            frame.offset -= end;
        }
        held.first_index += cut as u64;
        held.next = 0;
        held.trimmed = true;
        out
    }

    /// The splice frame nearest the nominal seam (see the module docs), and the larger form
    /// (third header byte, length) A's frame before it takes when B's reservoir needs a few
    /// more bytes than A leaves free (two encoders' reservoirs settle within bytes of each
    /// other, but not always at or under). Clean seams are preferred to small growth.
    fn choose_splice(&self, a: &Held, b: &Held, seam: u64) -> Result<(u64, Option<(u8, usize)>), String> {
        let reach_back = if a.trimmed { REACH_FRAMES as u64 } else { 0 };
        let lo = (b.first_index + SETTLE_FRAMES)
            .max(a.first_index + a.next as u64 + 1)
            .max(a.first_index + reach_back)
            .max(b.first_index + 1);
        let hi = index_of(a.input_end, self.frame_samples)
            .saturating_sub(EDGE_FRAMES)
            .min((a.first_index + a.frames.len() as u64).saturating_sub(1))
            .min((b.first_index + b.frames.len() as u64).saturating_sub(1));
        let reach = u64::from(LEAD_FRAMES);
        let candidates: Vec<u64> =
            (0..=reach).flat_map(|d| [seam + d, seam.wrapping_sub(d)]).filter(|j| (lo..=hi).contains(j)).collect();
        let frames = |j: u64| (&a.frames[(j - a.first_index) as usize - 1..=(j - a.first_index) as usize], &b.frames[(j - b.first_index) as usize]);
        let deficit = |j: u64| {
            let (fa, fb) = frames(j);
            fb.main_data_begin as i64 - fa[1].main_data_begin as i64
        };
        let is_clean = |j: u64| {
            let (fa, fb) = frames(j);
            fa[0].long_blocks && fb.long_blocks
        };
        for clean in [true, false] {
            let usable: Vec<u64> = candidates.iter().copied().filter(|&j| !clean || is_clean(j)).collect();
            if let Some(&j) = usable.iter().find(|&&j| deficit(j) <= 0) {
                return Ok((j, None));
            }
            let grown = usable
                .iter()
                .filter_map(|&j| {
                    let before = frames(j).0[0];
                    let need = deficit(j) as usize;
                    let (byte, len) = frames::larger_forms(&a.stream, &before).into_iter().find(|&(_, len)| len - before.len >= need)?;
                    Some((len - before.len, j.abs_diff(seam), j, byte, len))
                })
                .min();
            if let Some((_, _, j, byte, len)) = grown {
                return Ok((j, Some((byte, len))));
            }
        }
        Err(format!("mp3: no splice point between the segments near frame {seam}"))
    }

    /// The bytes of `held.frames[range]`, counted into the whole file's figures.
    fn emit(&mut self, held: &Held, range: std::ops::Range<usize>) -> Vec<u8> {
        let Some((first, last)) = held
            .frames
            .get(range.clone())
            .and_then(|f| Some((f.first()?, f.last()?)))
        else {
            return Vec::new();
        };
        let bytes = held.stream[first.offset..last.offset + last.len].to_vec();
        self.count(&held.frames[range], &bytes);
        bytes
    }

    /// Counts `frames`, whose bytes are `bytes`, into the whole file's figures.
    fn count(&mut self, frames: &[Frame], bytes: &[u8]) {
        self.frame_lengths.extend(frames.iter().map(|f| f.len as u16));
        self.music_crc.update(bytes);
    }

    /// Ends the output: the last segment's remaining frames and the whole file's info frame.
    pub fn finish(mut self) -> Result<Finished, String> {
        let Some(last) = self.held.take() else {
            return Err("mp3: no segment was added".into());
        };
        let tail = self.emit(&last, last.next..last.frames.len());
        let patch = if self.info_template.is_empty() {
            None
        } else {
            let whole = xing::WholeFile {
                frame_lengths: &self.frame_lengths,
                samples: self.samples,
                frame_samples: self.frame_samples,
                music_crc: self.music_crc.value(),
            };
            Some(HeaderPatch {
                offset: self.info_offset,
                bytes: xing::rewrite(&self.info_template, &whole)?,
            })
        };
        Ok(Finished { tail, patch })
    }
}

/// The main data area bytes of `frames[..index]`, back to front: their `n` last bytes, in
/// stream order.
fn bytes_before(stream: &[u8], frames: &[Frame], index: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut need = n;
    for frame in frames[..index].iter().rev() {
        if need == 0 {
            break;
        }
        let area = frame.data_area();
        let take = need.min(area.len());
        out.splice(0..0, stream[area.end - take..area.end].iter().copied());
        need -= take;
    }
    out
}

/// Writes `bytes` over the last `bytes.len()` bytes of the main data areas of
/// `frames[..index]`.
fn write_before(stream: &mut [u8], frames: &[Frame], index: usize, bytes: &[u8]) {
    let mut src_end = bytes.len();
    for frame in frames[..index].iter().rev() {
        if src_end == 0 {
            break;
        }
        let area = frame.data_area();
        let take = src_end.min(area.len());
        stream[area.end - take..area.end].copy_from_slice(&bytes[src_end - take..src_end]);
        src_end -= take;
    }
}
