//! Native tests: encode a generated sine, decode it back with minimp3, inspect tags and info frame.

use super::*;
use std::io::Cursor;

fn sine(rate: u32, channels: u8, secs: f32) -> Vec<i16> {
    let frames = (rate as f32 * secs) as usize;
    codec_plugin_kit::testing::tone(rate, channels, frames, 440.0, 220.0)
}

fn config(sample_rate: u32, channels: u8) -> EncoderConfig {
    EncoderConfig {
        sample_rate,
        channels,
        ..EncoderConfig::default()
    }
}

/// Encodes in uneven chunks, as a streaming caller would, and applies the patch.
fn encode(cfg: &EncoderConfig, pcm: &[i16]) -> (Vec<u8>, HeaderPatch) {
    let (out, patch) = encode_opt(cfg, pcm);
    (out, patch.expect("an info frame patch"))
}

fn encode_opt(cfg: &EncoderConfig, pcm: &[i16]) -> (Vec<u8>, Option<HeaderPatch>) {
    let mut s = Mp3Session::new(cfg).expect("valid config");
    let mut out = Vec::new();
    for chunk in pcm.chunks(cfg.channels as usize * 4001) {
        out.extend(s.encode(chunk).unwrap());
    }
    let Finished { tail, patch } = s.finish().unwrap();
    out.extend(tail);
    if let Some(patch) = &patch {
        let at = patch.offset as usize;
        assert_eq!(out[at], 0xFF, "the patch offset is the first frame's sync");
        out[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
    (out, patch)
}

/// Decodes everything: (sample rate, channels, samples per channel, first frame's kbps).
fn decode(mp3: &[u8]) -> (u32, usize, usize, i32) {
    let mut d = minimp3::Decoder::new(Cursor::new(mp3));
    let (mut rate, mut channels, mut samples, mut kbps) = (0, 0, 0, 0);
    loop {
        match d.next_frame() {
            Ok(f) => {
                (rate, channels) = (f.sample_rate as u32, f.channels);
                kbps = if kbps == 0 { f.bitrate } else { kbps };
                samples += f.data.len() / f.channels;
            }
            Err(minimp3::Error::Eof) => return (rate, channels, samples, kbps),
            Err(e) => panic!("decode error: {e}"),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Exact samples per channel from the info frame: frames × frame size − encoder delay − padding.
fn info_frame_samples(frame: &[u8], samples_per_frame: usize) -> usize {
    let x = find(frame, b"Xing")
        .or_else(|| find(frame, b"Info"))
        .expect("Xing/Info header");
    let flags = u32::from_be_bytes(frame[x + 4..x + 8].try_into().unwrap());
    assert_ne!(flags & 1, 0, "frame count present");
    let frames = u32::from_be_bytes(frame[x + 8..x + 12].try_into().unwrap()) as usize;
    let l = find(frame, b"LAME").expect("LAME tag");
    let d = &frame[l + 21..l + 24];
    let delay = (usize::from(d[0]) << 4) | usize::from(d[1] >> 4);
    let padding = (usize::from(d[1] & 0xF) << 8) | usize::from(d[2]);
    frames * samples_per_frame - delay - padding
}

#[test]
fn cbr_stereo_with_tags_and_exact_duration() {
    let pcm = sine(44100, 2, 3.0);
    let n = pcm.len() / 2;
    let mut cfg = config(44100, 2);
    cfg.tags = Tags {
        title: Some("Sine at 440 Hz".into()),
        artist: Some("mp3edge".into()),
        album: Some("Tests".into()),
        year: Some("2025".into()),
        comment: Some("generated".into()),
        ..Tags::default()
    };
    let (mp3, patch) = encode(&cfg, &pcm);

    assert!(mp3.starts_with(b"ID3"));
    let title: Vec<u8> = "Sine at 440 Hz"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(
        find(&mp3[..patch.offset as usize], &title).is_some(),
        "title in the ID3v2 tag"
    );

    assert!(patch.offset > 10);
    assert!(find(&patch.bytes, b"Info").is_some() && find(&patch.bytes, b"LAME").is_some());
    assert_eq!(info_frame_samples(&patch.bytes, 1152), n);

    let (rate, channels, decoded, kbps) = decode(&mp3);
    assert_eq!(
        (rate, channels, kbps),
        (44100, 2, DEFAULT_BITRATE_KBPS as i32)
    );
    // minimp3 also decodes the info frame (silence) and the encoder delay and padding.
    assert!(
        (n..n + 4 * 1152).contains(&decoded),
        "decoded {decoded} samples for {n}"
    );
}

#[test]
fn vbr_mono_22050() {
    let pcm = sine(22050, 1, 2.0);
    let mut cfg = config(22050, 1);
    cfg.vbr_quality = Some(4);
    cfg.bitrate_kbps = Some(7); // ignored with VBR
    let (mp3, patch) = encode(&cfg, &pcm);
    assert_eq!(patch.offset, 0, "no tags, no ID3v2");
    assert!(find(&patch.bytes, b"Xing").is_some() && find(&patch.bytes, b"LAME").is_some());
    assert_eq!(info_frame_samples(&patch.bytes, 576), pcm.len());
    let (rate, channels, decoded, _) = decode(&mp3);
    assert_eq!((rate, channels), (22050, 1));
    assert!(
        (pcm.len()..pcm.len() + 4 * 576).contains(&decoded),
        "decoded {decoded}"
    );
}

#[test]
fn every_listed_rate_and_bitrate_works() {
    for rate in SAMPLE_RATES {
        let (mp3, patch) = encode(&config(rate, 2), &sine(rate, 2, 0.2));
        assert_eq!(decode(&mp3).0, rate);
        assert!(find(&patch.bytes, b"Info").is_some());
    }
    // Every bitrate a rate carries is the one the stream has; every other is refused with
    // the ones it carries, never quietly replaced by the nearest (MPEG-2.5 tops out at
    // 64 kbps, MPEG-2 at 160, MPEG-1 lacks 144). The info frame is left out when frames are
    // too small to hold it.
    for rate in SAMPLE_RATES {
        let carried = bitrates_at(rate);
        assert!(!carried.is_empty(), "{rate} Hz carries no bitrate");
        for kbps in BITRATES_KBPS {
            let cfg = EncoderConfig {
                bitrate_kbps: Some(kbps),
                ..config(rate, 1)
            };
            if !carried.contains(&kbps) {
                let refused = Mp3Session::new(&cfg).err().unwrap_or_else(|| panic!("{rate} Hz {kbps} kbps accepted"));
                assert_eq!(refused, format!("mp3: {kbps} kbps is not an MP3 bitrate at {rate} Hz (it takes {carried:?} kbps there)"));
                continue;
            }
            let (mp3, patch) = encode_opt(&cfg, &sine(rate, 1, 0.2));
            assert_eq!(decode(&mp3).3 as u32, kbps, "{rate} Hz {kbps} kbps");
            assert!(
                patch.is_some() || kbps < 64,
                "{rate} Hz {kbps} kbps: no info frame"
            );
        }
    }
    assert_eq!(bitrates_at(44100), [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]);
    assert_eq!(bitrates_at(22050), [32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]);
    assert_eq!(bitrates_at(11025), [32, 40, 48, 56, 64]);
    assert!(bitrates_at(96000).is_empty());
}

/// Without a bitrate, a rate that cannot carry 192 kbps gets the highest it carries under it.
#[test]
fn the_default_bitrate_is_one_the_rate_carries() {
    for (rate, want) in [(44100, 192), (22050, 160), (8000, 64)] {
        let (mp3, _) = encode_opt(&config(rate, 1), &sine(rate, 1, 0.2));
        assert_eq!(decode(&mp3).3 as u32, want, "{rate} Hz");
    }
}

#[test]
fn unicode_tags_and_empty_input() {
    let mut cfg = config(48000, 2);
    cfg.tags.title = Some("Ünïcødé – 日本語 🎵".into());
    let s = Mp3Session::new(&cfg).unwrap();
    let Finished { tail, patch } = s.finish().unwrap();
    let title: Vec<u8> = "日本語".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(tail.starts_with(b"ID3") && find(&tail, &title).is_some());
    assert_eq!(tail[patch.unwrap().offset as usize], 0xFF);
}

#[test]
fn bad_input_is_an_error() {
    let err = |cfg: EncoderConfig| Mp3Session::new(&cfg).err().expect("an error");
    assert!(err(config(12345, 2)).contains("sample rate"));
    assert!(err(config(44100, 3)).contains("channels"));
    assert!(err(config(44100, 0)).contains("channels"));
    assert!(
        err(EncoderConfig {
            bitrate_kbps: Some(7),
            ..config(44100, 2)
        })
        .contains("bitrate")
    );
    assert!(
        err(EncoderConfig {
            bitrate_kbps: Some(1000),
            ..config(44100, 2)
        })
        .contains("bitrate")
    );
    assert!(
        err(EncoderConfig {
            vbr_quality: Some(10),
            ..config(44100, 2)
        })
        .contains("VBR quality")
    );
    let mut s = Mp3Session::new(&config(44100, 2)).unwrap();
    assert!(s.encode(&[1, 2, 3]).unwrap_err().contains("channels"));
    assert!(s.encode(&[1, 2]).is_ok());
}

#[test]
fn cover_genre_and_track_frames() {
    let mut cfg = config(44100, 1);
    // The smallest JPEG signature LAME accepts, then arbitrary bytes.
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..2000).map(|i| (i % 251) as u8))
        .collect();
    let cover = |data: Vec<u8>| Picture {
        mime_type: "image/jpeg".into(),
        width: 1,
        height: 1,
        data,
    };
    cfg.cover = Some(cover(jpeg.clone()));
    cfg.tags.genre = Some("Podcast".into());
    cfg.tags.track = Some("3/12".into());
    let (mp3, _) = encode(&cfg, &sine(44100, 1, 0.5));
    let apic = find(&mp3, b"APIC").expect("an APIC frame");
    assert!(
        find(&mp3[apic..], b"image/jpeg").is_some(),
        "APIC says image/jpeg"
    );
    assert!(
        find(&mp3[apic..], &jpeg).is_some(),
        "the picture bytes are in the APIC frame"
    );
    assert!(find(&mp3, b"TCON").is_some() && find(&mp3, b"TRCK").is_some());
    // Not an image: refused with a reason.
    cfg.cover = Some(cover(b"not a picture".to_vec()));
    assert!(
        Mp3Session::new(&cfg)
            .err()
            .unwrap()
            .contains("cover picture")
    );
}

#[test]
fn info_offers_what_start_accepts() {
    codec_plugin_kit::testing::info_offers_what_start_accepts::<Mp3Session>(44100);
}
