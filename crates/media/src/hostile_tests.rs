//! Uploads made to abuse FFmpeg: files that make a demuxer open other files or sockets, and a
//! small file of huge frames. Each is refused (or, for the frames, not decoded) before FFmpeg
//! acts on it; the end-to-end tests show the same through the worker and its media process.

use std::net::UdpSocket;

use super::tests::{ffmpeg, source, tmp};
use super::*;

fn open_error(data: &[u8]) -> String {
    let (chunks, layout) = source(data.to_vec());
    match Decoder::open(chunks, layout, OutputRequest::default()) {
        Ok(decoder) => panic!("opened as {}", decoder.info().container),
        Err(e) => e,
    }
}

#[test]
fn a_concat_list_naming_a_file_beside_the_worker_is_refused() {
    let dir = tmp();
    let secret = dir.path().join("secret.wav");
    ffmpeg(dir.path(), "secret.wav", &["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]);
    for list in [
        "ffconcat version 1.0\nfile 'secret.wav'\n".to_string(),
        format!("ffconcat version 1.0\nfile '{}'\n", secret.display()),
        format!("ffconcat version 1.0\nfile 'file:{}'\n", secret.display()),
    ] {
        let e = open_error(list.as_bytes());
        assert_eq!(e, "files of this kind (Virtual concatenation script) are not accepted: upload a video or audio file (MP4, MOV, MKV, WebM, AVI, MP3, WAV, FLAC, Ogg, ...)");
    }
}

#[test]
fn an_sdp_file_is_refused_without_binding_its_port() {
    // A port that is free now: the SDP asks FFmpeg to receive RTP on it.
    let port = UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let sdp = format!("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio {port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\n");
    let started = std::time::Instant::now();
    let e = open_error(sdp.as_bytes());
    assert!(e.starts_with("files of this kind (SDP) are not accepted"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    // Nothing bound the port in between.
    UdpSocket::bind(("0.0.0.0", port)).expect("the SDP's port is still free");
}

#[test]
fn playlists_and_image_sequences_are_refused() {
    let hls = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nhttp://127.0.0.1:9/a.ts\n#EXT-X-ENDLIST\n";
    assert!(open_error(hls.as_bytes()).starts_with("files of this kind (Apple HTTP Live Streaming) are not accepted"));
    let dir = tmp();
    let png = ffmpeg(dir.path(), "still.png", &["-f", "lavfi", "-i", "color=c=red:size=32x32", "-frames:v", "1"]);
    let e = open_error(&png);
    assert!(e.starts_with("files of this kind (piped png sequence) are not accepted"), "{e}");
}

/// Where `needle` occurs in `data` (exactly once).
fn only(data: &[u8], needle: &[u8]) -> usize {
    let found: Vec<usize> = data.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    assert_eq!(found.len(), 1, "{needle:02x?} occurs once");
    found[0]
}

/// PNG's chunk checksum (CRC-32, reflected, polynomial 0xEDB88320).
fn png_crc(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(u32::MAX, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 })
    })
}

/// A Matroska file with one PNG video frame that says it is 16000 × 16000 pixels (a gigabyte,
/// decoded) and a second of audio: a 320 × 256 frame whose sizes are rewritten in the track
/// and in the PNG's header.
fn huge_frames() -> Vec<u8> {
    let dir = tmp();
    let mut data = ffmpeg(
        dir.path(),
        "huge.mkv",
        &["-f", "lavfi", "-i", "testsrc=size=320x256:rate=1:duration=1", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:v", "png", "-c:a", "pcm_s16le"],
    );
    let side = 16000u32.to_be_bytes();
    // Matroska's PixelWidth and PixelHeight (two-byte values).
    let width = only(&data, &[0xB0, 0x82, 0x01, 0x40]);
    data[width + 2..width + 4].copy_from_slice(&side[2..]);
    let height = only(&data, &[0xBA, 0x82, 0x01, 0x00]);
    data[height + 2..height + 4].copy_from_slice(&side[2..]);
    // The PNG's IHDR: width, height, then the chunk's CRC over its type and data.
    let ihdr = only(&data, b"IHDR");
    data[ihdr + 4..ihdr + 8].copy_from_slice(&side);
    data[ihdr + 8..ihdr + 12].copy_from_slice(&side);
    let crc = png_crc(&data[ihdr..ihdr + 17]);
    data[ihdr + 17..ihdr + 21].copy_from_slice(&crc.to_be_bytes());
    data
}

/// Set for the test binary started by [`frames_too_large_give_no_cover_and_take_no_memory`].
const ENV_COVER_CHILD: &str = "MP3EDGE_TEST_HUGE_FRAMES_COVER";

/// The cover process's exit code when it made no cover, as it must.
const COVER_CHILD_NO_COVER: i32 = 42;

/// Not a test: the process whose peak memory the test measures.
#[test]
#[ignore = "run by frames_too_large_give_no_cover_and_take_no_memory in a process of its own"]
fn huge_frames_cover_entry() {
    let Some(path) = std::env::var_os(ENV_COVER_CHILD) else { return };
    let (chunks, layout) = source(std::fs::read(path).unwrap());
    // A code the test harness never exits with, so a run that found no such test (0) fails.
    let code = match cover::cover(chunks, layout, 600) {
        Ok(None) => COVER_CHILD_NO_COVER,
        Ok(Some(_)) => 3,
        Err(_) => 4,
    };
    std::process::exit(code);
}

#[test]
fn frames_too_large_give_no_cover_and_take_no_memory() {
    let dir = tmp();
    let path = dir.path().join("huge.mkv");
    std::fs::write(&path, huge_frames()).unwrap();
    // The cover is made in a process of its own, whose peak memory the kernel reports.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hostile_tests::huge_frames_cover_entry", "--ignored", "--test-threads", "1"])
        .env(ENV_COVER_CHILD, &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for the child just spawned (std never reaps it), filling plain structs.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(reaped, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == COVER_CHILD_NO_COVER, "the cover process ended with {status:#x}");
    // A 16000 × 16000 frame is 768 MiB as RGB; the test binary itself takes a few dozen.
    assert!(usage.ru_maxrss < 150 * 1024, "peak {} KiB", usage.ru_maxrss);
}

#[test]
fn the_audio_of_a_file_of_huge_frames_still_decodes() {
    let (chunks, layout) = source(huge_frames());
    let mut decoder = Decoder::open(chunks, layout, OutputRequest::default()).unwrap();
    assert!(decoder.info().has_video);
    let mut frames = 0;
    loop {
        let block = decoder.read(4096).unwrap();
        if block.is_empty() {
            break;
        }
        frames += block.len();
    }
    assert_eq!(frames, 44_100);
}
