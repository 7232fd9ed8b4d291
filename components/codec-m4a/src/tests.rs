//! Native tests of the session and the MP4 writer: files are read back with an independent
//! decoder (Debian's `ffmpeg`/`ffprobe`, which `scripts/setup.sh` installs) and with a small
//! box parser here, so neither the layout nor the exact length is judged by the writer itself.

use super::*;
use codec_plugin_kit::testing::ffmpeg_decode;
use std::path::PathBuf;
use std::process::Command;

fn sine(rate: u32, channels: u8, frames: usize) -> Vec<i16> {
    codec_plugin_kit::testing::tone(rate, channels, frames, 440.0, 220.0)
}

/// Silence with one click at `at` in every channel: where it lands after decoding shows that
/// the priming is trimmed exactly.
fn click(channels: u8, frames: usize, at: usize) -> Vec<i16> {
    let mut pcm = vec![0i16; frames * channels as usize];
    pcm[at * channels as usize..(at + 1) * channels as usize].fill(30_000);
    pcm
}

fn config(sample_rate: u32, channels: u8) -> EncoderConfig {
    EncoderConfig { sample_rate, channels, ..EncoderConfig::default() }
}

/// Encodes in uneven chunks, as a streaming caller would, and applies the patch, which must fall
/// inside the first 16 KiB (the converter's first output chunk is at least that).
fn encode(cfg: EncoderConfig, pcm: &[i16]) -> Vec<u8> {
    let channels = cfg.channels as usize;
    let mut s = M4aSession::new(cfg).expect("valid config");
    let mut out = Vec::new();
    for chunk in pcm.chunks(channels * 4001) {
        out.extend(s.encode(chunk).unwrap());
    }
    let Finished { tail, patch } = s.finish().unwrap();
    out.extend(tail);
    let patch = patch.expect("an mdat size patch");
    let at = patch.offset as usize;
    assert!(at + patch.bytes.len() <= 16 * 1024);
    out[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    out
}

/// Writes `bytes` as `name` in the test's own temporary directory.
fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ffprobe`'s `key=value` lines for the audio stream, the format and their tags.
fn ffprobe(path: &PathBuf) -> std::collections::HashMap<String, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_format", "-show_streams", "-of", "default=nw=1"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (make setup)");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_lowercase(), v.to_string()))
        .collect()
}

fn loudest_frame(pcm: &[i16], channels: usize) -> usize {
    (0..pcm.len() / channels).max_by_key(|&i| pcm[i * channels].unsigned_abs()).unwrap()
}

/// The boxes at one level: (type, offset of the body, body length).
fn boxes(data: &[u8], from: usize, to: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut found = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        let (header, size) = match size {
            1 => (16, u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap()) as usize),
            0 => (8, to - at),
            n => (8, n),
        };
        assert!(size >= header && at + size <= to, "box {:?} at {at} overruns", String::from_utf8_lossy(&kind));
        found.push((kind, at + header, size - header));
        at += size;
    }
    assert_eq!(at, to, "boxes fill their parent exactly");
    found
}

/// The body of the box at `path` (e.g. `moov/trak/edts/elst`).
fn find<'a>(data: &'a [u8], path: &str) -> &'a [u8] {
    let (mut from, mut to) = (0, data.len());
    for name in path.split('/') {
        let name = name.replace("(c)", "\u{a9}");
        let name: Vec<u8> = name.chars().map(|c| c as u8).collect();
        let (_, body, len) = boxes(data, from, to)
            .into_iter()
            .find(|(kind, ..)| kind[..] == name[..])
            .unwrap_or_else(|| panic!("no {path}"));
        // Where the children start: after version and flags in `meta`, also the entry count in
        // `stsd`, and after the audio sample entry's fields in `mp4a`.
        let skip = match &name[..] {
            b"meta" => 4,
            b"stsd" => 8,
            b"mp4a" => 28,
            _ => 0,
        };
        (from, to) = (body + skip, body + len);
    }
    &data[from..to]
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn two_seconds_decode_to_exactly_88200_frames_when_the_length_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let frames = 88_200;
    let pcm = click(2, frames, 10_000);
    let cfg = EncoderConfig { total_frames: Some(frames as u64), ..config(44100, 2) };
    let path = write(&dir, "known.m4a", &encode(cfg, &pcm));
    let decoded = ffmpeg_decode(&path);
    assert_eq!(decoded.len() / 2, frames, "FFmpeg decodes exactly the source's frames");
    assert_eq!(loudest_frame(&decoded, 2), 10_000, "the priming is trimmed to the frame");
    let p = ffprobe(&path);
    assert_eq!((p["codec_name"].as_str(), p["sample_rate"].as_str(), p["channels"].as_str()), ("aac", "44100", "2"));
    assert_eq!(p["profile"], "LC");
    assert_eq!(p["duration_ts"], "88200");
}

#[test]
fn the_edit_list_is_exact_for_any_length() {
    let dir = tempfile::tempdir().unwrap();
    // Lengths not known ahead: the edit list still says exactly how long the audio is; FFmpeg
    // then decodes the last access unit whole (less than 1024 frames of padding).
    for (rate, channels, frames) in [(44100, 2, 88_200), (48000, 1, 12_345), (22050, 2, 1), (8000, 1, 1024)] {
        let pcm = click(channels, frames, frames / 2);
        let file = encode(config(rate, channels), &pcm);
        let elst = find(&file, "moov/trak/edts/elst");
        let mdhd = find(&file, "moov/trak/mdia/mdhd");
        assert_eq!(be32(elst, 4), 1, "one edit");
        assert_eq!(be32(elst, 8) as usize, frames, "the edit presents exactly the source");
        assert_eq!(be32(elst, 12), 2048, "and skips fdk-aac's priming");
        assert_eq!(be32(mdhd, 12), rate, "media timescale = sample rate");
        assert_eq!(be32(find(&file, "moov/mvhd"), 12), rate, "movie timescale = sample rate");
        let path = write(&dir, &format!("any-{rate}-{frames}.m4a"), &file);
        assert_eq!(ffprobe(&path)["duration_ts"], frames.to_string());
        let decoded = ffmpeg_decode(&path).len() / channels as usize;
        assert!((frames..frames + 1024).contains(&decoded), "{rate} Hz, {frames} frames: decoded {decoded}");
        if frames > 1 {
            assert_eq!(loudest_frame(&ffmpeg_decode(&path), channels as usize), frames / 2);
        }
    }
}

#[test]
fn layout_streams_ftyp_mdat_then_moov_with_consistent_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = encode(config(48000, 2), &sine(48000, 2, 48000 * 5));
    let top: Vec<[u8; 4]> = boxes(&file, 0, file.len()).iter().map(|b| b.0).collect();
    assert_eq!(top, [*b"ftyp", *b"free", *b"mdat", *b"moov"]);
    let (_, mdat_at, mdat_len) = boxes(&file, 0, file.len())[2];
    let stsz = find(&file, "moov/trak/mdia/minf/stbl/stsz");
    let count = be32(stsz, 8) as usize;
    let sizes: Vec<u32> = (0..count).map(|i| be32(stsz, 12 + 4 * i)).collect();
    assert_eq!(sizes.iter().map(|&s| s as usize).sum::<usize>(), mdat_len, "stsz covers mdat");
    assert!(count * 1024 >= 48000 * 5 + 2048, "enough access units for the priming and the audio");
    let stts = find(&file, "moov/trak/mdia/minf/stbl/stts");
    assert_eq!((be32(stts, 4), be32(stts, 8) as usize, be32(stts, 12)), (1, count, 1024));
    let stco = find(&file, "moov/trak/mdia/minf/stbl/stco");
    let chunks = be32(stco, 4) as usize;
    assert_eq!(chunks, count.div_ceil(mp4::SAMPLES_PER_CHUNK as usize));
    for c in 0..chunks {
        let before: usize = sizes[..c * mp4::SAMPLES_PER_CHUNK as usize].iter().map(|&s| s as usize).sum();
        assert_eq!(be32(stco, 8 + 4 * c) as usize, mdat_at + before, "chunk {c} offset");
    }
    let stsc = find(&file, "moov/trak/mdia/minf/stbl/stsc");
    assert_eq!(be32(stsc, 4), 2, "full chunks, then the shorter last one");
    let esds = find(&file, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds");
    // AudioSpecificConfig of AAC-LC (object type 2), 48 kHz (index 3), stereo: 0x11 0x90.
    assert!(esds.windows(4).any(|w| w == [0x05, 0x02, 0x11, 0x90]), "ASC in esds: {esds:02x?}");
    assert_eq!(&find(&file, "ftyp")[..4], b"M4A ");
    // Seeking into the middle decodes (what a player does with the slider).
    let path = write(&dir, "seek.m4a", &file);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-ss", "2.5", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.len() / 4 > 48000 * 2, "seek: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tags_and_cover_are_read_back_by_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    for (ext, mime) in [("png", "image/png"), ("jpg", "image/jpeg")] {
        let picture = dir.path().join(format!("cover.{ext}"));
        let made = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=c=red:s=32x24", "-frames:v", "1"])
            .arg(&picture)
            .status()
            .unwrap();
        assert!(made.success());
        let cfg = EncoderConfig {
            tags: codec_plugin_kit::testing::every_tag(),
            cover: Some(Picture { mime_type: mime.into(), width: 32, height: 24, data: std::fs::read(&picture).unwrap() }),
            ..config(44100, 1)
        };
        let path = write(&dir, &format!("tagged-{ext}.m4a"), &encode(cfg, &sine(44100, 1, 4410)));
        let p = ffprobe(&path);
        for (key, want) in [
            ("tag:title", "Ünïcødé – 日本語"),
            ("tag:artist", "mp3edge"),
            ("tag:album", "Tests"),
            ("tag:date", "2026"),
            ("tag:comment", "generated"),
            ("tag:genre", "Ambient"),
            ("tag:track", "3/12"),
        ] {
            assert_eq!(p.get(key).map(String::as_str), Some(want), "{key} in {p:?}");
        }
        // The cover is an attached picture stream FFmpeg decodes as an image of its size.
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(&path)
            .args(["-map", "0:v:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len(), 32 * 24, "{mime} cover decodes");
    }
}

#[test]
fn no_tags_no_udta_and_odd_track_numbers_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = encode(config(44100, 2), &sine(44100, 2, 2048));
    let moov = find(&file, "moov");
    assert!(boxes(moov, 0, moov.len()).iter().all(|b| &b.0 != b"udta"));
    let cfg = EncoderConfig { tags: Tags { track: Some("seven".into()), ..Tags::default() }, ..config(44100, 2) };
    let file = encode(cfg, &sine(44100, 2, 2048));
    let moov = find(&file, "moov");
    assert!(boxes(moov, 0, moov.len()).iter().all(|b| &b.0 != b"udta"), "no tag worth writing");
    let cfg = EncoderConfig { tags: Tags { track: Some("7".into()), ..Tags::default() }, ..config(44100, 2) };
    let path = write(&dir, "track7.m4a", &encode(cfg, &sine(44100, 2, 2048)));
    assert_eq!(ffprobe(&path).get("tag:track").map(String::as_str), Some("7"));
}

#[test]
fn bitrate_sets_the_size_and_vbr_modes_work() {
    // Tones over noise: something the encoder has to spend bits on.
    let mut state = 0x2545_f491u32;
    let pcm: Vec<i16> = sine(44100, 2, 44100 * 4)
        .into_iter()
        .map(|s| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s / 2 + ((state >> 16) as i16) / 6
        })
        .collect();
    let size = |cfg: EncoderConfig| {
        let file = encode(cfg, &pcm);
        let (_, _, mdat) = boxes(&file, 0, file.len())[2];
        mdat as f64 * 8.0 / 4.0 / 1000.0
    };
    let mut last = 0.0;
    for kbps in [64, 128, 192, 320] {
        let got = size(EncoderConfig { bitrate_kbps: Some(kbps), ..config(44100, 2) });
        assert!(got > last, "{kbps} kbps gives more than the previous step ({got} ≤ {last})");
        assert!(got < f64::from(kbps) * 1.15, "{kbps} kbps: {got} kbps");
        last = got;
    }
    let default = size(config(44100, 2));
    assert!((150.0..220.0).contains(&default), "default stereo ≈ 192 kbps: {default}");
    let best = size(EncoderConfig { vbr_quality: Some(0), ..config(44100, 2) });
    let smallest = size(EncoderConfig { vbr_quality: Some(9), ..config(44100, 2) });
    assert!(best > smallest * 1.5, "VBR 0 ({best}) well above VBR 9 ({smallest})");
}

#[test]
fn every_listed_rate_and_bitrate_encodes() {
    let dir = tempfile::tempdir().unwrap();
    for rate in SAMPLE_RATES {
        for channels in [1, 2] {
            let frames = rate as usize / 5;
            let path = write(&dir, &format!("rate-{rate}-{channels}.m4a"), &encode(config(rate, channels), &sine(rate, channels, frames)));
            let p = ffprobe(&path);
            assert_eq!(p["sample_rate"], rate.to_string());
            assert_eq!(p["channels"], channels.to_string());
            assert_eq!(p["duration_ts"], frames.to_string(), "{rate} Hz");
        }
    }
    for (rate, channels) in [(8000, 1), (44100, 2), (96000, 2)] {
        for kbps in bitrates_at(rate, channels) {
            let cfg = EncoderConfig { bitrate_kbps: Some(kbps), ..config(rate, channels) };
            M4aSession::new(cfg).unwrap_or_else(|e| panic!("{rate} Hz × {channels}, {kbps} kbps: {e}"));
        }
    }
}

#[test]
fn mdat_past_4_gib_becomes_a_64_bit_box_with_co64() {
    let (mut w, head) = mp4::Mp4Writer::new();
    // 70 units of 100 MB: the second chunk (unit 64) starts past 4 GiB.
    for _ in 0..70 {
        w.add_sample(100_000_000).unwrap();
    }
    let track = mp4::Track {
        sample_rate: 48000,
        channels: 2,
        audio_specific_config: &[0x11, 0x90],
        frame_length: 1024,
        skip_frames: 2048,
        play_frames: 1024,
    };
    let (patch, moov) = w.finish(&track, &Tags::default(), None);
    let mut first = head.clone();
    first[patch.offset as usize..patch.offset as usize + patch.bytes.len()].copy_from_slice(&patch.bytes);
    let at = patch.offset as usize;
    assert_eq!(be32(&first, at), 1, "64-bit size follows");
    assert_eq!(&first[at + 4..at + 8], b"mdat");
    let large = u64::from_be_bytes(first[at + 8..at + 16].try_into().unwrap());
    assert_eq!(large, 16 + 7_000_000_000, "the box starts where free was");
    assert_eq!(at + 16, head.len(), "payload offset unchanged");
    let moov = &moov[8..];
    let co64 = find(moov, "trak/mdia/minf/stbl/co64");
    assert_eq!(be32(co64, 4), 2);
    assert_eq!(u64::from_be_bytes(co64[8..16].try_into().unwrap()), head.len() as u64);
    assert_eq!(u64::from_be_bytes(co64[16..24].try_into().unwrap()), head.len() as u64 + 6_400_000_000);
}

#[test]
fn bad_input_is_an_error() {
    let err = |cfg: EncoderConfig| M4aSession::new(cfg).err().expect("an error");
    assert!(err(config(44000, 2)).contains("sample rate"));
    assert!(err(config(44100, 3)).contains("channels"));
    assert!(err(config(44100, 0)).contains("channels"));
    assert!(err(EncoderConfig { bitrate_kbps: Some(100), ..config(44100, 2) }).contains("bitrate"));
    assert!(err(EncoderConfig { bitrate_kbps: Some(10_000), ..config(44100, 2) }).contains("bitrate"));
    assert!(err(EncoderConfig { vbr_quality: Some(10), ..config(44100, 2) }).contains("VBR quality"));
    let mut s = M4aSession::new(config(44100, 2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
    assert!(s.encode(&[1, 2]).is_ok());
}

#[test]
fn an_empty_session_still_makes_a_well_formed_file() {
    let s = M4aSession::new(config(44100, 2)).unwrap();
    let Finished { mut tail, patch } = s.finish().unwrap();
    let patch = patch.unwrap();
    let at = patch.offset as usize;
    tail[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    let top: Vec<[u8; 4]> = boxes(&tail, 0, tail.len()).iter().map(|b| b.0).collect();
    assert_eq!(top, [*b"ftyp", *b"free", *b"mdat", *b"moov"]);
}

#[test]
fn every_listed_rate_takes_every_vbr_quality() {
    for rate in SAMPLE_RATES {
        for channels in [1, 2] {
            for q in 0..=9 {
                let cfg = EncoderConfig { vbr_quality: Some(q), ..config(rate, channels) };
                let mut s = M4aSession::new(cfg).unwrap_or_else(|e| panic!("{rate} Hz × {channels}, VBR {q}: {e}"));
                s.encode(&sine(rate, channels, 4096)).unwrap();
                s.finish().unwrap();
            }
        }
    }
}

#[test]
fn info_offers_what_start_accepts() {
    codec_plugin_kit::testing::info_offers_what_start_accepts::<M4aSession>(44100);
}

/// The bitrates published per rate are exactly those fdk-aac encodes unchanged: each one a
/// session starts with, every other refused (fdk-aac would lower it) with the rate's ceiling.
#[test]
fn bitrates_at_is_what_fdk_aac_keeps() {
    for rate in SAMPLE_RATES {
        for channels in 1..=MAX_CHANNELS {
            let carried = bitrates_at(rate, channels);
            for kbps in BITRATES_KBPS {
                let started = M4aSession::new(EncoderConfig { bitrate_kbps: Some(kbps), ..config(rate, channels) });
                match (carried.contains(&kbps), started) {
                    (true, Ok(_)) => {}
                    (false, Err(e)) => assert!(e.contains(&format!("{kbps} kbps is more than AAC carries at {rate} Hz")), "{e}"),
                    (listed, Ok(_)) => panic!("{rate} Hz {channels} ch {kbps} kbps: started, listed {listed}"),
                    (listed, Err(e)) => panic!("{rate} Hz {channels} ch {kbps} kbps: {e}, listed {listed}"),
                }
            }
            // Without a bitrate, the highest the rate carries up to 96 kbps per channel.
            assert!(M4aSession::new(config(rate, channels)).is_ok(), "{rate} Hz {channels} ch default");
        }
    }
    assert_eq!(bitrates_at(8000, 2), [32, 48, 64, 80, 96]);
    assert_eq!(bitrates_at(44100, 1), [32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256]);
    assert_eq!(bitrates_at(48000, 2), BITRATES_KBPS);
}
