//! Native tests of segmented encoding: an input cut as the host cuts it (on the plan's
//! granule), each segment encoded by its own `SegmentEncoder`, joined by `Joiner`, against the
//! serial encode of the same input; and the joiner's refusals of segments that do not fit.

use super::tests::{config, decode, encode, md5_of, signal};
use super::*;
use crate::joiner::Joiner;
use crate::segment::{HEADER_LEN, SegmentEncoder};

/// Encodes `pcm` (16-bit, interleaved) as segments starting at the given PCM frames, in
/// uneven chunks, and joins them; the file with its patch applied.
fn segmented(cfg: &EncoderConfig, pcm: &[i32], starts: &[u64]) -> Vec<u8> {
    let channels = usize::from(cfg.channels);
    let (granule, lead_in, lead_out) = segment::plan(cfg).expect("16-bit input is segmented");
    assert_eq!((lead_in, lead_out), (0, 0), "frames are independent: no overlap");
    let total = (pcm.len() / channels) as u64;
    let mut joiner = Joiner::new(cfg).unwrap();
    let mut out = Vec::new();
    for (k, &first) in starts.iter().enumerate() {
        assert!(first.is_multiple_of(u64::from(granule)));
        let end = starts.get(k + 1).copied().unwrap_or(total);
        let mut s = SegmentEncoder::start(cfg, first, 0).unwrap();
        let mut bytes = Vec::new();
        let own: Vec<i16> = pcm[first as usize * channels..end as usize * channels].iter().map(|&x| x as i16).collect();
        for chunk in own.chunks(channels * 3001) {
            bytes.extend(s.encode(chunk).unwrap());
        }
        bytes.extend(s.finish().unwrap());
        out.extend(joiner.add(&bytes).unwrap());
    }
    let Finished { tail, patch } = joiner.finish().unwrap();
    out.extend(tail);
    let patch = patch.unwrap();
    out[..patch.bytes.len()].copy_from_slice(&patch.bytes);
    out
}

#[test]
fn joined_segments_are_the_serial_file_at_every_level() {
    // 20 s of stereo: 216 blocks of 4096 (frame numbers past 127 take two bytes) or 766 of 1152.
    let frames = 44100 * 20 + 1234;
    let pcm = signal(44100, 2, frames, 16);
    for level in LEVELS {
        let cfg = EncoderConfig { level: Some(level), total_frames: Some(frames as u64), ..config(44100, 2, 16) };
        let block = block_size(level).unwrap() as u64;
        let starts = [0, 37 * block, 38 * block, 150 * block];
        let joined = segmented(&cfg, &pcm, &starts);
        let (serial, _) = encode(cfg.clone(), &pcm);
        let (_, _, _, total, back) = decode(&joined);
        assert_eq!((total, back.len()), (Some(frames as u64), pcm.len()), "level {level}");
        assert!(back == pcm, "level {level}: the joined file decodes to the input");
        let info = |f: &[u8]| f[8..42].to_vec();
        assert_eq!(&info(&joined)[18..], &md5_of(&pcm, 16), "level {level}: STREAMINFO MD5 of the whole input");
        if level == 1 || level == 4 {
            // Loose mid-side stereo (these levels) chooses from the frames before, so a
            // segment's first frames may decorrelate differently: same audio, other bytes.
            assert_eq!(info(&joined)[..4], info(&serial)[..4], "level {level}: block sizes");
        } else {
            assert!(joined == serial, "level {level}: joined file byte for byte the serial one");
        }
    }
}

#[test]
fn a_single_segment_and_odd_layouts_join() {
    // Mono 8 kHz at level 0 (1152-sample blocks), one segment; and 6 channels at 48 kHz.
    for (rate, channels, frames, starts) in [(8000, 1, 30_000, vec![0]), (48000, 6, 50_000, vec![0, 4096 * 3, 4096 * 11])] {
        let pcm = signal(rate, channels, frames, 16);
        let cfg = EncoderConfig { level: Some(if channels == 1 { 0 } else { 5 }), ..config(rate, channels, 16) };
        let joined = segmented(&cfg, &pcm, &starts);
        assert!(joined == encode(cfg, &pcm).0, "{rate} Hz × {channels}");
        assert!(decode(&joined).4 == pcm);
    }
}

#[test]
fn frame_numbers_are_coded_as_flac_codes_them() {
    let coded = |n: u64| {
        let mut out = Vec::new();
        joiner::utf8_number(n, &mut out);
        out
    };
    assert_eq!(coded(0), [0x00]);
    assert_eq!(coded(0x7F), [0x7F]);
    assert_eq!(coded(0x80), [0xC2, 0x80]);
    assert_eq!(coded(0x7FF), [0xDF, 0xBF]);
    assert_eq!(coded(0x800), [0xE0, 0xA0, 0x80]);
    assert_eq!(coded(0x1_0000), [0xF0, 0x90, 0x80, 0x80]);
    assert_eq!(coded(0x20_0000), [0xF8, 0x88, 0x80, 0x80, 0x80]);
    assert_eq!(coded(0x7FFF_FFFF), [0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF]);
}

/// One encoded segment of `frames` PCM frames of `pcm`, starting at `first`.
fn one_segment(cfg: &EncoderConfig, pcm: &[i32], first: u64, frames: usize) -> Vec<u8> {
    let ch = usize::from(cfg.channels);
    let mut s = SegmentEncoder::start(cfg, first, 0).unwrap();
    let own: Vec<i16> = pcm[first as usize * ch..(first as usize + frames) * ch].iter().map(|&x| x as i16).collect();
    let mut bytes = s.encode(&own).unwrap();
    bytes.extend(s.finish().unwrap());
    bytes
}

#[test]
fn segments_that_do_not_fit_are_refused() {
    let cfg = config(44100, 2, 16);
    let pcm = signal(44100, 2, 4096 * 8, 16);
    // Not on a block boundary, a lead-in, 24-bit input.
    assert!(SegmentEncoder::start(&cfg, 1000, 0).err().unwrap().contains("block boundary"));
    assert!(SegmentEncoder::start(&cfg, 0, 4096).err().unwrap().contains("lead-in"));
    assert_eq!(segment::plan(&config(44100, 2, 24)), None);
    assert!(Joiner::new(&config(44100, 2, 24)).err().unwrap().contains("16-bit"));

    // Out of order: the second segment first.
    let second = one_segment(&cfg, &pcm, 4096 * 2, 4096 * 2);
    let err = Joiner::new(&cfg).unwrap().add(&second).unwrap_err();
    assert!(err.contains("starts at frame 8192") && err.contains("ends at 0"), "{err}");
    // A segment that skips blocks.
    let mut j = Joiner::new(&cfg).unwrap();
    j.add(&one_segment(&cfg, &pcm, 0, 4096)).unwrap();
    assert!(j.add(&second).unwrap_err().contains("ends at 4096"));

    // A frame after a short one: records of a 1000-frame segment, then a whole block's.
    let mut crafted = one_segment(&cfg, &pcm, 0, 1000);
    crafted.extend_from_slice(&one_segment(&cfg, &pcm, 0, 4096)[HEADER_LEN..]);
    assert!(Joiner::new(&cfg).unwrap().add(&crafted).unwrap_err().contains("shorter than a block"));

    // Not a segment; a segment cut short; a frame whose bytes were damaged.
    assert!(Joiner::new(&cfg).unwrap().add(b"fLaC\0\0\0\0\0\0\0\0").unwrap_err().contains("not an encoded FLAC segment"));
    let whole = one_segment(&cfg, &pcm, 0, 4096 * 2);
    assert!(Joiner::new(&cfg).unwrap().add(&whole[..whole.len() - 10]).unwrap_err().contains("cut inside a frame"));
    let mut damaged = whole.clone();
    let at = HEADER_LEN + 8 + 40;
    damaged[at] ^= 0x10;
    let err = Joiner::new(&cfg).unwrap().add(&damaged).err().unwrap();
    assert!(err.contains("fails its CRC-16"), "{err}");
}
