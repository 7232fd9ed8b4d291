//! Native tests of segmented encoding: the joined output against a serial encode of the same
//! PCM, decoded with minimp3 (which, like every decoder, sees only the frames).

use super::*;
use crate::joiner::Joiner;
use crate::segment::{EncodedSegment, LEAD_FRAMES, SegmentEncoder, frame_samples};
use std::io::Cursor;

fn config(
    sample_rate: u32,
    channels: u8,
    bitrate_kbps: Option<u32>,
    vbr_quality: Option<u8>,
) -> EncoderConfig {
    EncoderConfig {
        sample_rate,
        channels,
        bitrate_kbps,
        vbr_quality,
        tags: Tags {
            title: Some("Seams".into()),
            ..Tags::default()
        },
        ..EncoderConfig::default()
    }
}

/// A pure tone (shows any seam) or music-like noise: tones with a slow beat and filtered
/// noise bursts, deterministic.
fn signal(rate: u32, channels: u8, secs: f64, music: bool) -> Vec<i16> {
    let frames = (f64::from(rate) * secs) as usize;
    let mut seed = 0x2545_f491_u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed as f64 / u32::MAX as f64) * 2.0 - 1.0
    };
    let mut low = 0.0;
    let mut out = Vec::with_capacity(frames * usize::from(channels));
    for i in 0..frames {
        let t = i as f64 / f64::from(rate);
        for c in 0..channels {
            let v = if music {
                low = 0.97 * low + 0.03 * noise();
                let beat = 0.5 + 0.5 * (t * 2.0 * std::f64::consts::TAU).sin();
                0.25 * (t * (220.0 + 110.0 * f64::from(c)) * std::f64::consts::TAU).sin()
                    + 0.15 * (t * 1375.0 * std::f64::consts::TAU).sin() * beat
                    + 0.9 * low * beat
            } else {
                0.4 * (t * (997.0 + 3.0 * f64::from(c)) * std::f64::consts::TAU).sin()
            };
            out.push((v * 32767.0) as i16);
        }
    }
    out
}

fn apply(out: &mut [u8], patch: &Option<HeaderPatch>) {
    if let Some(p) = patch {
        out[p.offset as usize..p.offset as usize + p.bytes.len()].copy_from_slice(&p.bytes);
    }
}

fn serial(cfg: &EncoderConfig, pcm: &[i16]) -> Vec<u8> {
    let mut s = Mp3Session::new(cfg).unwrap();
    let mut out = s.encode(pcm).unwrap();
    let f = s.finish().unwrap();
    out.extend(f.tail);
    apply(&mut out, &f.patch);
    out
}

/// Encodes `pcm` as segments of `segment_frames` PCM frames and joins them.
fn segmented(cfg: &EncoderConfig, pcm: &[i16], segment_frames: u64) -> Vec<u8> {
    let ch = usize::from(cfg.channels);
    let total = (pcm.len() / ch) as u64;
    let lead = u64::from(LEAD_FRAMES * frame_samples(cfg.sample_rate));
    let mut joiner = Joiner::new(cfg.sample_rate);
    let mut out = Vec::new();
    let mut start = 0;
    while start < total {
        let end = start + segment_frames;
        let last = end + segment_frames / 4 >= total;
        let first = start.saturating_sub(lead);
        let input_end = if last { total } else { (end + lead).min(total) };
        let mut enc = SegmentEncoder::start(cfg, first, (start - first) as u32).unwrap();
        let mut record = Vec::new();
        for chunk in pcm[first as usize * ch..input_end as usize * ch].chunks(ch * 44100) {
            record.extend(enc.encode(chunk).unwrap());
        }
        record.extend(enc.finish().unwrap());
        out.extend(joiner.add(record).unwrap());
        if last {
            break;
        }
        start = end;
    }
    let f = joiner.finish().unwrap();
    out.extend(f.tail);
    apply(&mut out, &f.patch);
    out
}

/// Decodes to interleaved samples (every frame, the info frame decodes to nothing).
fn decode(mp3: &[u8]) -> Vec<i16> {
    let mut d = minimp3::Decoder::new(Cursor::new(mp3));
    let mut out = Vec::new();
    loop {
        match d.next_frame() {
            Ok(f) => out.extend(f.data),
            Err(minimp3::Error::Eof) => return out,
            Err(e) => panic!("decode error: {e}"),
        }
    }
}

/// (frames, delay, padding) from the info frame.
fn info(mp3: &[u8]) -> (u32, u32, u32) {
    let x = mp3
        .windows(4)
        .position(|w| w == b"Xing" || w == b"Info")
        .expect("info frame");
    let frames = u32::from_be_bytes(mp3[x + 8..x + 12].try_into().unwrap());
    let d = &mp3[x + 141..x + 144];
    let delay = (u32::from(d[0]) << 4) | (u32::from(d[1]) >> 4);
    let padding = ((u32::from(d[1]) & 0xF) << 8) | u32::from(d[2]);
    (frames, delay, padding)
}

/// Signal-to-noise ratio of `decoded` against the source (decoder delay 529 + encoder delay
/// 576 removed), and the worst 1152-sample window's error energy relative to the median
/// window's.
fn quality(source: &[i16], decoded: &[i16], channels: usize) -> (f64, f64) {
    let delay = delay_of(source, decoded, channels) * channels;
    let n = source.len().min(decoded.len().saturating_sub(delay));
    let (mut signal, mut noise) = (0.0, 0.0);
    let window = 1152 * channels;
    let mut windows = Vec::new();
    for (w, chunk) in source[..n].chunks(window).enumerate() {
        let mut e = 0.0;
        for (i, &s) in chunk.iter().enumerate() {
            let d = f64::from(decoded[delay + w * window + i]) - f64::from(s);
            e += d * d;
            signal += f64::from(s) * f64::from(s);
        }
        noise += e;
        windows.push(e);
    }
    // The edges (LAME's start and flush) are not seams.
    let inner: Vec<f64> = windows[4..windows.len() - 4].to_vec();
    let mut sorted = inner.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2].max(1.0);
    let worst = inner.iter().cloned().fold(0.0, f64::max);
    (10.0 * (signal / noise.max(1.0)).log10(), worst / median)
}

/// Where the source starts in the decoded output, in frames (the encoder's and decoder's
/// delays, and the info frame when the decoder outputs it as silence), found by correlation.
fn delay_of(source: &[i16], decoded: &[i16], channels: usize) -> usize {
    let probe = &source[44100 * channels..(44100 + 8192) * channels];
    (0..4000)
        .max_by_key(|d| {
            let at = 44100 * channels + d * channels;
            probe
                .iter()
                .zip(&decoded[at..])
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum::<i64>()
        })
        .unwrap()
}

fn check(cfg: &EncoderConfig, pcm: &[i16], segment_frames: u64) {
    let ch = usize::from(cfg.channels);
    let one = serial(cfg, pcm);
    let joined = segmented(cfg, pcm, segment_frames);
    let (a, b) = (decode(&one), decode(&joined));
    assert_eq!(
        a.len(),
        b.len(),
        "decoded length: serial {} vs segmented {}",
        a.len(),
        b.len()
    );
    assert_eq!(
        info(&one),
        info(&joined),
        "info frame (frames, delay, padding)"
    );
    let (snr_serial, worst_serial) = quality(pcm, &a, ch);
    let (snr_joined, worst_joined) = quality(pcm, &b, ch);
    println!(
        "{} Hz {ch} ch {:?}/{:?}: SNR serial {snr_serial:.2} dB, segmented {snr_joined:.2} dB; worst window {worst_serial:.1}x / {worst_joined:.1}x the median",
        cfg.sample_rate, cfg.bitrate_kbps, cfg.vbr_quality
    );
    assert!(
        snr_joined > snr_serial - 0.3,
        "SNR {snr_joined:.2} dB segmented vs {snr_serial:.2} dB serial"
    );
    assert!(
        worst_joined <= worst_serial.max(4.0) * 1.5,
        "a seam window is {worst_joined:.1}x the median error (serial's worst: {worst_serial:.1}x)"
    );
}

/// The input encoded as one segment is the serial encode byte for byte, apart from the seek
/// table (LAME samples it from bitrates) and the tag's CRC over it.
fn assert_one_segment_is_serial(cfg: &EncoderConfig, pcm: &[i16], segment_frames: u64) {
    let one = serial(cfg, pcm);
    let joined = segmented(cfg, pcm, segment_frames);
    let x = one.windows(4).position(|w| w == b"Info").unwrap();
    let strip = |m: &[u8]| [&m[..x + 16], &m[x + 116..x + 154], &m[x + 156..]].concat();
    assert_eq!(strip(&one), strip(&joined), "one segment of everything is the serial encode");
}

#[test]
fn one_segment_is_the_serial_encode() {
    let cfg = config(44100, 2, Some(192), None);
    assert_one_segment_is_serial(&cfg, &signal(44100, 2, 3.0, true), 1152 * 1000);
}

/// Segments longer than what the joiner keeps for a splice: most of each goes out as soon as
/// it comes, and the result is what shorter segments give.
#[test]
fn long_segments_go_out_as_they_come() {
    let cfg = config(44100, 2, Some(192), None);
    let pcm = signal(44100, 2, 60.0, true);
    check(&cfg, &pcm, 1152 * 400);
    assert_one_segment_is_serial(&cfg, &pcm, 1152 * 4000);

    let mut enc = SegmentEncoder::start(&cfg, 0, 0).unwrap();
    let mut record = enc.encode(&pcm[..44100 * 2 * 20]).unwrap();
    record.extend(enc.finish().unwrap());
    let len = record.len();
    let out = Joiner::new(44100).add(record).unwrap();
    assert!(out.len() > len * 3 / 4, "{} of {len} bytes out at once", out.len());
}

/// Small frames (64 kbps at 22.05 kHz, mono): a splice's bytes reach further back.
#[test]
fn long_segments_at_a_low_bitrate() {
    let cfg = config(22050, 1, Some(64), None);
    check(&cfg, &signal(22050, 1, 60.0, true), 576 * 700);
}

#[test]
fn tone_cbr_stereo_441() {
    let cfg = config(44100, 2, Some(192), None);
    check(&cfg, &signal(44100, 2, 20.0, false), 1152 * 100);
}

#[test]
fn music_cbr_stereo_48() {
    let cfg = config(48000, 2, Some(128), None);
    check(&cfg, &signal(48000, 2, 20.0, true), 1152 * 90);
}

#[test]
fn music_vbr_mono_441() {
    let cfg = config(44100, 1, None, Some(2));
    check(&cfg, &signal(44100, 1, 20.0, true), 1152 * 120);
}

#[test]
fn tone_vbr_stereo_2205() {
    let cfg = config(22050, 2, None, Some(4));
    check(&cfg, &signal(22050, 2, 20.0, false), 576 * 130);
}

#[test]
fn music_cbr_mono_2205_many_segments() {
    let cfg = config(22050, 1, Some(64), None);
    check(&cfg, &signal(22050, 1, 30.0, true), 576 * 60);
}

#[test]
fn a_damaged_segment_is_refused() {
    let cfg = config(44100, 2, Some(192), None);
    let mut enc = SegmentEncoder::start(&cfg, 0, 0).unwrap();
    let mut blob = enc.encode(&signal(44100, 2, 1.0, true)).unwrap();
    blob.extend(enc.finish().unwrap());
    let mut joiner = Joiner::new(44100);
    assert!(joiner.add(blob[..10].to_vec()).is_err());
    let mut cut = blob.clone();
    cut.truncate(blob.len() - 1);
    assert!(Joiner::new(44100).add(cut).unwrap_err().contains("not an encoded segment"));
    let n = blob.len();
    blob.drain(n / 2..n / 2 + 100);
    assert!(
        Joiner::new(44100)
            .add(blob)
            .unwrap_err()
            .contains("not whole MP3 frames")
    );
    assert!(EncodedSegment::from_bytes(b"MP3S".to_vec()).is_err());
    assert!(
        SegmentEncoder::start(&cfg, 1000, 0).is_err(),
        "off the frame grid"
    );
}


/// Loud broadband noise over a tone at the default 192 kbps: both encoders spend their
/// reservoirs to the byte, so many seams need the earlier segment's last frame to grow.
#[test]
fn noise_cbr_stereo_441_many_segments() {
    let cfg = config(44100, 2, Some(192), None);
    let mut seed = 1u32;
    let pcm: Vec<i16> = (0..44100 * 30 * 2)
        .map(|i| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let t = (i / 2) as f64 / 44100.0;
            let noise = (f64::from(seed >> 16) / 65536.0 - 0.5) * 0.3 * (0.5 + 0.5 * (t * 4.4).sin());
            ((0.25 * (t * 1382.0).sin() + noise) * 32767.0) as i16
        })
        .collect();
    check(&cfg, &pcm, 1152 * 40);
}

#[test]
fn a_frame_grows_by_its_padding_slot_then_by_bitrate() {
    let cfg = config(44100, 2, Some(192), None);
    let mut s = Mp3Session::open(&cfg, false).unwrap();
    let mut out = s.encode(&signal(44100, 2, 1.0, true)).unwrap();
    out.extend(s.finish().unwrap().tail);
    let frame = crate::frames::parse_all(&out, 0).into_iter().find(|f| f.len == 626).expect("an unpadded frame");
    let forms = crate::frames::larger_forms(&out, &frame);
    let lengths: Vec<usize> = forms.iter().map(|&(_, len)| len).collect();
    assert_eq!(lengths, [627, 731, 732, 835, 836, 1044, 1045], "padding, then 224, 256 and 320 kbps");
    let mut grown = out[frame.offset..frame.offset + 4].to_vec();
    grown[2] = forms[1].0;
    grown.resize(731, 0);
    assert_eq!(crate::frames::parse_at(&grown, 0).map(|f| f.len), Some(731));
}
