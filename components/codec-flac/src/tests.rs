//! Native tests of the FLAC core: files are decoded back by `claxon` (an independent decoder),
//! and the metadata blocks are parsed here byte by byte.

use super::*;
use md5::{Digest, Md5};

/// A sine per channel plus a little deterministic noise, so prediction has work to do.
fn signal(rate: u32, channels: u8, frames: usize, bits: u8) -> Vec<i32> {
    let amplitude = if bits == 24 { 3_000_000.0 } else { 12_000.0 };
    let mut noise = 12345u32;
    (0..frames)
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate);
            (0..channels)
                .map(|c| {
                    noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let n = f64::from((noise >> 16) as u16 as i16) / 300.0;
                    ((t * (440.0 + 110.0 * f64::from(c)) * std::f64::consts::TAU).sin() * amplitude + n) as i32
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn config(rate: u32, channels: u8, bits: u8) -> EncoderConfig {
    EncoderConfig { sample_rate: rate, channels, bits_per_sample: bits, ..EncoderConfig::default() }
}

/// Encodes in uneven chunks, as the converter does, and applies the patch; also the patch length.
fn encode(cfg: EncoderConfig, pcm: &[i32]) -> (Vec<u8>, usize) {
    let (channels, bits) = (usize::from(cfg.channels), cfg.bits_per_sample);
    let mut s = FlacSession::new(cfg).expect("valid config");
    let mut out = Vec::new();
    for chunk in pcm.chunks(channels * 4001) {
        out.extend(if bits == 16 {
            s.encode(&chunk.iter().map(|&x| x as i16).collect::<Vec<_>>()).unwrap()
        } else {
            s.encode_wide(chunk).unwrap()
        });
    }
    let Finished { tail, patch } = s.finish().unwrap();
    out.extend(tail);
    let patch = patch.expect("a header patch");
    assert_eq!(patch.offset, 0);
    assert!(patch.bytes.len() <= 16 * 1024, "the patch fits the first output chunk");
    out[..patch.bytes.len()].copy_from_slice(&patch.bytes);
    (out, patch.bytes.len())
}

/// Decodes with claxon: (rate, channels, bits, total samples from STREAMINFO, samples).
fn decode(flac: &[u8]) -> (u32, u32, u32, Option<u64>, Vec<i32>) {
    let mut r = claxon::FlacReader::new(std::io::Cursor::new(flac)).expect("claxon reads it");
    let info = r.streaminfo();
    let samples = r.samples().map(Result::unwrap).collect();
    (info.sample_rate, info.channels, info.bits_per_sample, info.samples, samples)
}

fn md5_of(pcm: &[i32], bits: u8) -> [u8; 16] {
    let mut h = Md5::new();
    for s in pcm {
        h.update(&s.to_le_bytes()[..usize::from(bits / 8)]);
    }
    h.finalize().into()
}

/// The metadata blocks: (type, last, body), and where the frames start.
fn blocks(flac: &[u8]) -> (Vec<(u8, bool, Vec<u8>)>, usize) {
    assert_eq!(&flac[..4], b"fLaC");
    let (mut at, mut out) = (4, Vec::new());
    loop {
        let (kind, last) = (flac[at] & 0x7F, flac[at] & 0x80 != 0);
        let len = u32::from_be_bytes([0, flac[at + 1], flac[at + 2], flac[at + 3]]) as usize;
        out.push((kind, last, flac[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
        if last {
            return (out, at);
        }
    }
}

fn block(flac: &[u8], kind: u8) -> Option<Vec<u8>> {
    blocks(flac).0.into_iter().find(|b| b.0 == kind).map(|b| b.2)
}

#[test]
fn round_trips_exactly_with_totals_and_md5() {
    for (rate, channels, frames) in [(44100, 2, 44100 * 3 + 17), (8000, 1, 12345), (48000, 6, 20000), (22050, 2, 5), (96000, 8, 4096)] {
        let pcm = signal(rate, channels, frames, 16);
        let (flac, _) = encode(config(rate, channels, 16), &pcm);
        let (r, c, b, total, back) = decode(&flac);
        assert_eq!((r, c, b, total), (rate, u32::from(channels), 16, Some(frames as u64)));
        assert_eq!(back, pcm, "{rate} Hz × {channels}");
        let info = block(&flac, STREAMINFO).unwrap();
        assert_eq!(&info[18..34], &md5_of(&pcm, 16), "STREAMINFO MD5 is the PCM's");
        assert_eq!(&info[..4], &[0x10, 0, 0x10, 0], "fixed 4096-sample blocks (the last excluded)");
    }
}

#[test]
fn twenty_four_bit_round_trips_through_encode_wide() {
    let pcm = signal(96000, 2, 96000 + 333, 24);
    assert!(pcm.iter().any(|s| s.abs() > 1 << 16), "uses more than 16 bits");
    let (flac, _) = encode(config(96000, 2, 24), &pcm);
    let (_, _, bits, total, back) = decode(&flac);
    assert_eq!((bits, total), (24, Some(96333)));
    assert_eq!(back, pcm);
    assert_eq!(&block(&flac, STREAMINFO).unwrap()[18..34], &md5_of(&pcm, 24));
    // Edge values of the range, in six channels.
    let edges: Vec<i32> = [-(1 << 23), (1 << 23) - 1, 0, 1, -1, 77].repeat(1000);
    let (flac, _) = encode(config(48000, 6, 24), &edges);
    assert_eq!(decode(&flac).4, edges);
}

#[test]
fn every_level_is_lossless_and_higher_levels_are_smaller() {
    let pcm = signal(44100, 2, 44100 * 4, 16);
    let sizes: Vec<usize> = LEVELS
        .map(|level| {
            let (flac, _) = encode(EncoderConfig { level: Some(level), ..config(44100, 2, 16) }, &pcm);
            assert_eq!(decode(&flac).4, pcm, "level {level}");
            flac.len()
        })
        .collect();
    assert!(sizes[8] < sizes[0], "level 8 ({}) smaller than level 0 ({})", sizes[8], sizes[0]);
    assert!(sizes[5] < sizes[0]);
}

#[test]
fn seek_table_points_at_frames() {
    let rate = 8000;
    let frames = rate as usize * 95; // 95 s: points at 0, 10, …, 90 s
    let pcm = signal(rate, 1, frames, 16);
    for total_frames in [None, Some(frames as u64)] {
        let (flac, patch_len) = encode(EncoderConfig { total_frames, ..config(rate, 1, 16) }, &pcm);
        let (list, first_frame) = blocks(&flac);
        assert_eq!(list.iter().map(|b| b.0).collect::<Vec<_>>(), [STREAMINFO, SEEKTABLE, VORBIS_COMMENT]);
        assert_eq!(patch_len, 4 + 38 + 4 + list[1].2.len(), "the patch ends with the seek table");
        let table = &list[1].2;
        let points: Vec<(u64, u64, u16)> = table
            .chunks(18)
            .map(|p| {
                let sample = u64::from_be_bytes(p[..8].try_into().unwrap());
                let offset = u64::from_be_bytes(p[8..16].try_into().unwrap());
                (sample, offset, u16::from_be_bytes([p[16], p[17]]))
            })
            .collect();
        let real: Vec<_> = points.iter().filter(|p| p.0 != PLACEHOLDER).collect();
        assert_eq!(real.len(), 10, "one point per 10 s: {total_frames:?}");
        if total_frames.is_some() {
            assert_eq!(points.len(), 10, "slots sized from total-frames");
        } else {
            assert_eq!(points.len(), UNKNOWN_LENGTH_SEEK_POINTS);
        }
        for (i, (sample, offset, n)) in real.iter().enumerate() {
            assert!(*sample >= i as u64 * 80_000 && *sample < i as u64 * 80_000 + 4096);
            assert_eq!(*n, 4096);
            let at = first_frame + *offset as usize;
            assert_eq!(&flac[at..at + 2], &[0xFF, 0xF8], "a frame sync at point {i}");
        }
        assert!(real.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert_eq!(decode(&flac).4, pcm);
    }
}

#[test]
fn seek_table_stays_bounded_for_long_streams() {
    // 3 hours announced at 48 kHz, mono silence (cheap to encode): at most MAX_SEEK_POINTS.
    let rate = 48000u32;
    let frames = u64::from(rate) * 3 * 3600;
    let mut s = FlacSession::new(EncoderConfig { total_frames: Some(frames), ..config(rate, 1, 16) }).unwrap();
    let second = vec![0i16; rate as usize];
    let mut len = 0;
    for _ in 0..3 * 3600 {
        len += s.encode(&second).unwrap().len();
    }
    let patch = s.finish().unwrap().patch.unwrap();
    assert!(patch.bytes.len() <= MAX_PATCH_BYTES && len > patch.bytes.len());
    let table = &patch.bytes[4 + 38 + 4..];
    let real = table.chunks(18).filter(|p| p[..8] != [0xFF; 8]).count();
    assert!((700..=MAX_SEEK_POINTS).contains(&real), "{real} points");
}

#[test]
fn seek_points_spread_over_streams_longer_than_announced_slots() {
    // No length announced, 3 hours at 8 kHz: the reserved slots cover the whole, evenly.
    let rate = 8000u32;
    let mut s = FlacSession::new(config(rate, 1, 16)).unwrap();
    let second = vec![0i16; rate as usize];
    for _ in 0..3 * 3600 {
        s.encode(&second).unwrap();
    }
    let patch = s.finish().unwrap().patch.unwrap();
    let samples: Vec<u64> = patch.bytes[4 + 38 + 4..]
        .chunks(18)
        .map(|p| u64::from_be_bytes(p[..8].try_into().unwrap()))
        .filter(|&s| s != PLACEHOLDER)
        .collect();
    let total = u64::from(rate) * 3 * 3600;
    assert!(samples.len() > UNKNOWN_LENGTH_SEEK_POINTS * 3 / 4, "{} points", samples.len());
    assert!(*samples.last().unwrap() > total * 9 / 10, "the last point is near the end");
    assert!(samples.windows(2).all(|w| w[1] - w[0] <= 2 * total / UNKNOWN_LENGTH_SEEK_POINTS as u64));
}

#[test]
fn vorbis_comments_and_front_cover() {
    let tags = codec_plugin_kit::testing::every_tag();
    let cover = Cover { mime_type: "image/png".into(), width: 2, height: 3, data: vec![0x89, b'P', b'N', b'G', 1, 2, 3] };
    let pcm = signal(44100, 2, 10000, 16);
    let (flac, _) = encode(EncoderConfig { tags, cover: Some(cover.clone()), ..config(44100, 2, 16) }, &pcm);
    let r = claxon::FlacReader::new(std::io::Cursor::new(&flac)).unwrap();
    let get = |k: &str| r.get_tag(k).next().map(str::to_owned);
    assert_eq!(get("TITLE").as_deref(), Some("Ünïcødé – 日本語"));
    assert_eq!(get("ARTIST").as_deref(), Some("mp3edge"));
    assert_eq!(get("ALBUM").as_deref(), Some("Tests"));
    assert_eq!(get("DATE").as_deref(), Some("2026"));
    assert_eq!(get("COMMENT").as_deref(), Some("generated"));
    assert_eq!(get("GENRE").as_deref(), Some("Ambient"));
    assert_eq!(get("TRACKNUMBER").as_deref(), Some("3"));
    assert_eq!(get("TRACKTOTAL").as_deref(), Some("12"));
    assert_eq!(get("ENCODER").as_deref(), Some(VENDOR));
    assert_eq!(r.vendor(), Some(VENDOR));
    drop(r);

    let (list, _) = blocks(&flac);
    assert_eq!(list.last().unwrap().0, PICTURE, "the picture is the last block");
    let p = &list.last().unwrap().2;
    let u32_at = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 3, "front cover");
    assert_eq!(u32_at(4), 9);
    assert_eq!(&p[8..17], b"image/png");
    assert_eq!(u32_at(17), 0, "no description");
    assert_eq!((u32_at(21), u32_at(25)), (2, 3));
    assert_eq!(u32_at(37) as usize, cover.data.len());
    assert_eq!(&p[41..], &cover.data[..]);
    assert_eq!(decode(&flac).4, pcm);
}

#[test]
fn no_tags_still_has_vendor_and_encoder() {
    let (flac, _) = encode(config(44100, 1, 16), &signal(44100, 1, 100, 16));
    let comments = block(&flac, VORBIS_COMMENT).unwrap();
    assert_eq!(u32::from_le_bytes(comments[..4].try_into().unwrap()) as usize, VENDOR.len());
    assert!(block(&flac, PICTURE).is_none());
}

#[test]
fn empty_input_is_a_valid_file() {
    let s = FlacSession::new(config(44100, 2, 16)).unwrap();
    let Finished { tail, patch } = s.finish().unwrap();
    let mut flac = tail;
    let patch = patch.unwrap();
    flac[..patch.bytes.len()].copy_from_slice(&patch.bytes);
    let (_, _, _, total, samples) = decode(&flac);
    assert_eq!(total, None, "claxon reads a total of 0 as unknown");
    assert!(samples.is_empty());
    assert_eq!(&flac[8 + 13..8 + 18], &[0xF0, 0, 0, 0, 0], "16-bit (low bits of 15), 0 samples");
}

#[test]
fn header_comes_first_and_the_patch_completes_it() {
    let mut s = FlacSession::new(config(44100, 2, 16)).unwrap();
    let first = s.encode(&[1, 2]).unwrap();
    assert!(first.starts_with(b"fLaC"));
    let info = &first[8..42];
    assert_eq!(&info[14..18], &[0; 4], "total samples unknown before the end");
    assert_eq!(info[13] & 0x0F, 0, "total samples unknown before the end");
    assert_eq!(&info[18..34], &[0; 16], "MD5 unknown before the end");
    let patch = s.finish().unwrap().patch.unwrap();
    assert_eq!(&patch.bytes[..4], b"fLaC");
    assert_eq!(patch.bytes[8 + 17], 1, "one sample per channel");
}

#[test]
fn bad_input_is_a_readable_error() {
    let err = |c: EncoderConfig| FlacSession::new(c).err().unwrap();
    assert!(err(config(0, 2, 16)).contains("sample rate"));
    assert!(err(config(655_351, 2, 16)).contains("sample rate"));
    assert!(err(config(44100, 0, 16)).contains("channels"));
    assert!(err(config(44100, 9, 16)).contains("channels"));
    assert!(err(config(44100, 2, 20)).contains("20-bit"));
    assert!(err(EncoderConfig { level: Some(9), ..config(44100, 2, 16) }).contains("level 9"));
    let mut s = FlacSession::new(config(44100, 2, 16)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
    assert!(s.encode_wide(&[1, 2]).unwrap_err().contains("16-bit"));
    let mut s = FlacSession::new(config(44100, 1, 24)).unwrap();
    assert!(s.encode(&[1]).unwrap_err().contains("24-bit"));
    assert!(s.encode_wide(&[1 << 23]).unwrap_err().contains("24-bit range"));
}

#[test]
fn unusual_rates_are_carried() {
    // Frame headers state most rates; 65537, 100001 and 655349 Hz only STREAMINFO can.
    for rate in [1, 7350, 11025, 65_537, 88_200, 100_001, 192_000, 384_000, 655_349, MAX_SAMPLE_RATE] {
        let pcm = signal(rate, 1, 5000, 16);
        let (flac, _) = encode(config(rate, 1, 16), &pcm);
        let (r, _, _, _, back) = decode(&flac);
        assert_eq!((r, back), (rate, pcm), "{rate} Hz");
    }
}

#[test]
fn info_offers_what_start_accepts() {
    codec_plugin_kit::testing::info_offers_what_start_accepts::<FlacSession>(44100);
}

#[test]
fn the_linked_libflac_is_the_one_the_vendor_string_names() {
    // SAFETY: a static NUL-terminated string of libFLAC's.
    let version = unsafe { std::ffi::CStr::from_ptr(libflac_sys::FLAC__VERSION_STRING) }.to_str().unwrap();
    assert_eq!(version, LIBFLAC_VERSION);
    assert!(VENDOR.ends_with(&format!("(libFLAC {LIBFLAC_VERSION})")), "{VENDOR}");
}

