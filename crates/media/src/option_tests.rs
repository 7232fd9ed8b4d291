//! Native tests of what the audio options add to the decoder: sample-exact trims (from the
//! start and after a seek), the track choice and stream list, the gain and its measuring
//! pass, 24-bit sources, and the cover frame (black intros skipped, JPEG out).

use std::process::Command;

use super::tests::{ffmpeg, source, tmp};
use super::*;

/// Everything `decoder` has left to give.
fn read_all(decoder: &mut Decoder) -> Result<Vec<f32>, String> {
    let mut pcm = Vec::new();
    loop {
        let block = decoder.read_f32(4000)?;
        if block.is_empty() {
            return Ok(pcm);
        }
        pcm.extend(block);
    }
}

fn decode_all(data: &[u8], request: OutputRequest) -> Result<(Decoder, Vec<f32>), String> {
    let (src, layout) = source(data.to_vec());
    let mut decoder = Decoder::open(src, layout, request)?;
    let pcm = read_all(&mut decoder)?;
    Ok((decoder, pcm))
}

#[test]
fn demux_trims_are_sample_exact_with_and_without_a_seek() {
    let dir = tmp();
    let saw = ffmpeg(dir.path(), "saw.wav", &["-f", "lavfi", "-i", "aevalsrc=exprs=0.9*mod(t\\,1):s=44100:d=30", "-c:a", "pcm_s16le"]);
    let trim = |start: f64, end: f64| OutputRequest { start_secs: Some(start), end_secs: Some(end), ..Default::default() };
    let (_, pcm) = decode_all(&saw, trim(0.5, 1.25)).unwrap();
    assert_eq!(pcm.len(), 33075);
    assert!((pcm[0] - 0.45).abs() < 1e-3, "{}", pcm[0]);
    // 20.25 s is past the seek threshold.
    let (_, pcm) = decode_all(&saw, trim(20.25, 21.0)).unwrap();
    assert_eq!(pcm.len(), 33075);
    assert!((pcm[0] - 0.225).abs() < 1e-3, "{}", pcm[0]);
    // Resampled: lengths are counted at the output rate.
    let (_, pcm) = decode_all(&saw, OutputRequest { sample_rate: Some(8000), ..trim(20.5, 21.0) }).unwrap();
    assert_eq!(pcm.len(), 4000);
    let err = decode_all(&saw, trim(31.0, 32.0)).err().unwrap();
    assert!(err.contains("trim starts at 31"), "{err}");
}

/// A decoder restarted on another stretch (a segment lane's next segment) gives the samples a
/// decoder opened with that trim gives: forward and back, and to the end of the stream. Near
/// the beginning it declines (a fresh decoder is opened there). Noise at a low bitrate is
/// partly coded as noise (AAC's PNS), which the decoder makes with a generator of its own: a
/// flushed decoder kept that generator's state, and its samples then differed.
#[test]
fn demux_restart_decodes_what_a_fresh_decoder_would() {
    let dir = tmp();
    let music = ffmpeg(dir.path(), "music.mp4", &["-f", "lavfi", "-i", "sine=frequency=330:duration=40", "-f", "lavfi", "-i", "anoisesrc=d=40:a=0.1:seed=7", "-filter_complex", "amix=inputs=2", "-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "96k"]);
    // Pink noise at 64 kbps: the restart of a flushed decoder differed here.
    let noise = ffmpeg(dir.path(), "noise.mp4", &["-f", "lavfi", "-i", "anoisesrc=d=40:a=0.5:c=pink:seed=7", "-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "64k"]);
    restarts_decode_what_a_fresh_decoder_would(music);
    restarts_decode_what_a_fresh_decoder_would(noise);
}

fn restarts_decode_what_a_fresh_decoder_would(aac: Vec<u8>) {
    let (src, layout) = source(aac.clone());
    let mut lane = Decoder::open(src, layout, OutputRequest { start_secs: Some(12.0), end_secs: Some(15.0), ..Default::default() }).unwrap();
    let first = read_all(&mut lane).unwrap();
    assert_eq!(first.len(), 3 * 44100 * 2);
    for (start, end) in [(Some(20.0), Some(26.5)), (Some(13.0), Some(14.0)), (Some(33.0), None), (Some(10.5), Some(12.0))] {
        assert!(lane.restart(start, end).unwrap(), "{start:?}..{end:?} is restarted");
        let again = read_all(&mut lane).unwrap();
        let (_, fresh) = decode_all(&aac, OutputRequest { start_secs: start, end_secs: end, ..Default::default() }).unwrap();
        assert_eq!(again.len(), fresh.len(), "{start:?}..{end:?}");
        assert!(again == fresh, "{start:?}..{end:?}: the restarted decoder's samples differ from a fresh one's");
    }
    assert!(!lane.restart(Some(2.0), Some(4.0)).unwrap(), "near the beginning a fresh decoder is opened");
    assert!(!lane.restart(None, Some(1.0)).unwrap());
    let err = lane.restart(Some(41.0), None).unwrap_err();
    assert!(err.contains("trim starts at 41"), "{err}");
}

#[test]
fn an_audio_only_decoder_hides_the_video_and_decodes_the_same() {
    let dir = tmp();
    let video = ffmpeg(
        dir.path(),
        "video.mp4",
        &[
            "-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=30",
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=30",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "96k",
        ],
    );
    let request = OutputRequest { start_secs: Some(11.0), end_secs: Some(17.5), ..Default::default() };
    let (full, expected) = decode_all(&video, request.clone()).unwrap();
    assert!(full.info().has_video);
    let (src, layout) = source(video.clone());
    let mut lane = Decoder::open_audio_only(src, layout, request).unwrap();
    assert!(!lane.info().has_video, "the video track was hidden");
    let pcm = read_all(&mut lane).unwrap();
    assert!(pcm == expected, "the same samples ({} and {})", pcm.len(), expected.len());
    assert!(lane.restart(Some(20.0), Some(21.0)).unwrap());
    let channels = usize::from(lane.output_format().1);
    assert_eq!(lane.read_f32(44100).unwrap().len(), 44100 * channels);
}

#[test]
fn demux_track_choice_and_stream_list() {
    let dir = tmp();
    let two = ffmpeg(
        dir.path(),
        "two.mka",
        &[
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1",
            "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=1",
            "-map", "0:a", "-map", "1:a", "-c:a", "flac", "-metadata:s:a:1", "language=fra",
            "-metadata:s:a:1", "title=Second",
        ],
    );
    let (decoder, _) = decode_all(&two, OutputRequest { track: Some(1), ..Default::default() }).unwrap();
    let info = decoder.info();
    assert_eq!((info.track, info.sample_rate, info.streams.len()), (1, 48000, 2));
    assert!(info.streams[0].default && !info.streams[1].default);
    assert_eq!(info.streams[1].language.as_deref(), Some("fra"));
    assert_eq!(info.streams[1].title.as_deref(), Some("Second"));
    let err = decode_all(&two, OutputRequest { track: Some(2), ..Default::default() }).err().unwrap();
    assert!(err.contains("2 audio streams") && err.contains("no track 2"), "{err}");
}

#[test]
fn demux_gain_and_loudness_measure() {
    let dir = tmp();
    let tone = ffmpeg(dir.path(), "tone.wav", &["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=3", "-c:a", "pcm_s16le"]);
    let (src, layout) = source(tone.clone());
    let measured = loudness::measure(src.clone(), layout, OutputRequest::default(), -16.0, -1.0).unwrap();
    // A 1 kHz sine at 1/8 full scale: peak -18 dBFS, about -21 LUFS (mono).
    assert!((measured.true_peak_dbtp + 18.06).abs() < 0.2, "{measured:?}");
    assert!((measured.integrated_lufs + 21.0).abs() < 1.0, "{measured:?}");
    assert!((measured.gain_db - (-16.0 - measured.integrated_lufs)).abs() < 1e-9, "{measured:?}");
    // For -2 LUFS the ceiling holds the gain to 17 dB (-18 → -1 dBTP).
    let held = loudness::measure(src, layout, OutputRequest::default(), -2.0, -1.0).unwrap();
    assert!((held.gain_db - 17.06).abs() < 0.2, "{held:?}");
    let (_, plain) = decode_all(&tone, OutputRequest::default()).unwrap();
    let (_, louder) = decode_all(&tone, OutputRequest { gain_db: Some(6.0), ..Default::default() }).unwrap();
    let ratio = louder[100] / plain[100];
    assert!((ratio - 1.9953).abs() < 1e-3, "{ratio}");
}

#[test]
fn demux_24_bit_sources_say_so() {
    let dir = tmp();
    let flac = ffmpeg(dir.path(), "hi.flac", &["-f", "lavfi", "-i", "aevalsrc=exprs=0.3*sin(2*PI*440*t):s=44100:d=0.5", "-c:a", "flac", "-sample_fmt", "s32"]);
    let (decoder, pcm) = decode_all(&flac, OutputRequest::default()).unwrap();
    assert_eq!(decoder.info().bits_per_sample, 24);
    assert!(pcm.iter().any(|&s| to_s24(s) % 256 != 0), "24-bit samples keep their low bits");
    let aac = ffmpeg(dir.path(), "lo.m4a", &["-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac"]);
    let (decoder, _) = decode_all(&aac, OutputRequest::default()).unwrap();
    assert_eq!(decoder.info().bits_per_sample, 16, "lossy sources count as 16 bits");
}

#[test]
fn demux_cover_skips_black_frames_and_scales() {
    let dir = tmp();
    // Two black seconds, then eight of a test pattern, 1280x720.
    let video = ffmpeg(
        dir.path(),
        "intro.mp4",
        &[
            "-f", "lavfi", "-i", "color=black:size=1280x720:rate=10:duration=2",
            "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=10:duration=8",
            "-f", "lavfi", "-i", "sine=duration=10",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ],
    );
    let (src, layout) = source(video);
    let picture = cover::cover(src, layout, 500).unwrap().expect("a cover");
    assert_eq!((picture.width, picture.height), (500, 280), "16:9 with even sides");
    assert!(picture.jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let path = dir.path().join("cover.jpg");
    std::fs::write(&path, &picture.jpeg).unwrap();
    let gray = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert_eq!(gray.stdout.len(), 500 * 280, "FFmpeg decodes it as a 500x280 picture");
    let mean = gray.stdout.iter().map(|&v| f64::from(v)).sum::<f64>() / gray.stdout.len() as f64;
    assert!(mean > 40.0, "not a black frame: mean luma {mean}");
    // Audio only: no cover.
    let audio = ffmpeg(dir.path(), "a.m4a", &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"]);
    let (src, layout) = source(audio);
    assert!(cover::cover(src, layout, 500).unwrap().is_none());
}
