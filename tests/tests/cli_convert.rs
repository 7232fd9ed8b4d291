//! `mp3edge convert` on par with ffmpeg for audio extraction (issue 30), through the real
//! binary on ffmpeg-made fixtures: the output's extension chooses the format, the API's audio
//! options as flags with the API's exact refusals (compared with a running platform's 400s),
//! `-` for standard input and output, several inputs at once with a summary, and the one-time
//! "preparing codecs" notice.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use e2e_tests::fixtures::{bad_inputs, good_inputs};
use e2e_tests::probe::probe;
use e2e_tests::*;

fn mp3edge(args: &[&str], cwd: &Path) -> Output {
    mp3edge_command().args(args).current_dir(cwd).output().expect("mp3edge runs")
}

/// `mp3edge` with `stdin` written to its standard input through a pipe (not seekable).
fn mp3edge_piped(args: &[&str], cwd: &Path, stdin: Vec<u8>) -> Output {
    let mut child = mp3edge_command()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mp3edge runs");
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The command may refuse before reading it all.
        let _ = pipe.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of the named fixture in `dir` as `name`.
fn fixture_as(which: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| *n == which).unwrap();
    let path = dir.join(name);
    std::fs::copy(&fixture.path, &path).unwrap();
    path
}

#[test]
fn the_output_extension_chooses_the_format_and_format_must_agree_with_it() {
    let dir = tempfile::tempdir().unwrap();
    fixture_as("wav", dir.path(), "tone.wav");
    let run = |args: &[&str]| mp3edge(args, dir.path());
    for (out, codec, container) in [
        ("out.flac", "flac", "flac"),
        ("out.mp3", "mp3", "mp3"),
        ("out.opus", "opus", "ogg"),
        ("out.ogg", "vorbis", "ogg"),
        ("out.m4a", "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
        ("out.wav", "pcm_s16le", "wav"),
        ("out.aiff", "pcm_s16be", "aiff"),
        ("out.aif", "pcm_s16be", "aiff"),
        ("UPPER.FLAC", "flac", "flac"),
    ] {
        let got = run(&["convert", "tone.wav", out]);
        assert!(got.status.success(), "{out}: {}", text(&got));
        let probed = probe(&dir.path().join(out));
        assert_eq!((probed.codec.as_str(), probed.container.as_str()), (codec, container), "{out}");
    }
    // No extension: --format says it; the same format as the extension is no conflict.
    let got = run(&["convert", "tone.wav", "plain", "--format", "FLAC"]);
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(probe(&dir.path().join("plain")).codec, "flac");
    let got = run(&["convert", "tone.wav", "agreed.opus", "--format", "opus"]);
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(probe(&dir.path().join("agreed.opus")).codec, "opus");

    // Refused with exit 2 and nothing written: a contradiction, an unknown extension, none.
    for (args, out, expect) in [
        (
            vec!["convert", "tone.wav", "clash.flac", "--format", "mp3"],
            "clash.flac",
            "mp3edge: --format mp3 does not match clash.flac: .flac is the extension of flac\n\
             hint: leave --format out, or name the output with the extension of mp3\n",
        ),
        (
            vec!["convert", "tone.wav", "what.xyz"],
            "what.xyz",
            "mp3edge: cannot tell the format of what.xyz: .xyz is no format's extension; they are .aiff/.aif (aiff), \
             .flac (flac), .m4a (m4a), .mp3 (mp3), .ogg (ogg), .opus (opus), .wav (wav)\nhint: pass --format NAME\n",
        ),
        (
            vec!["convert", "tone.wav", "bare"],
            "bare",
            "mp3edge: cannot tell the format of bare: it has no extension\nhint: pass --format NAME\n",
        ),
        (
            vec!["convert", "tone.wav", "out.xyz", "--format", "nope"],
            "out.xyz",
            "mp3edge: unsupported format: format must be one of: aiff, flac, m4a, mp3, ogg, opus, wav\n",
        ),
    ] {
        let got = run(&args);
        assert_eq!(got.status.code(), Some(2), "{args:?}: {}", text(&got));
        assert_eq!(stderr(&got), expect, "{args:?}");
        assert!(got.stdout.is_empty(), "{args:?}: {}", text(&got));
        assert!(!dir.path().join(out).exists() && !dir.path().join(format!("{out}.part")).exists(), "{args:?}");
    }
}

/// The flag and its value for each refused upload query of the API.
const REFUSED: &[(&str, &str)] = &[
    ("start", "abc"),
    ("end", "1:75"),
    ("rate", "12345"),
    ("channels", "3"),
    ("track", "64"),
    ("normalize", "3"),
    ("level", "99"),
    ("cover", "maybe"),
    ("bitrate", "7"),
    ("vbr", "11"),
    ("artist", " "),
];

fn query_escape(value: &str) -> String {
    value.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._:".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn audio_flags_are_the_api_options_and_refusals_read_as_its_400s() {
    let dir = tempfile::tempdir().unwrap();
    fixture_as("mp4 h264+aac", dir.path(), "clip.mp4");
    fixture_as("wav", dir.path(), "tone.wav");
    // Every option at once, each with its API value.
    let got = mp3edge(
        &[
            "convert", "clip.mp4", "cut.mp3", "--start", "0.5", "--end", "0:01.5", "--rate", "22050", "--channels", "1",
            "--track", "0", "--normalize", "-16", "--true-peak", "-2", "--title", "A title", "--artist", "-dash artist",
            "--album", "An album", "--cover", "none", "--vbr", "4",
        ],
        dir.path(),
    );
    assert!(got.status.success(), "{}", text(&got));
    let p = probe(&dir.path().join("cut.mp3"));
    assert_eq!((p.codec.as_str(), p.sample_rate, p.channels), ("mp3", 22050, 1));
    assert!((p.decoded_frames as f64 / 22050.0 - 1.0).abs() < 0.05, "{p:?}");
    assert_eq!(p.tags.get("title").map(String::as_str), Some("A title"));
    assert_eq!(p.tags.get("artist").map(String::as_str), Some("-dash artist"));
    assert_eq!(p.tags.get("album").map(String::as_str), Some("An album"));
    let got = mp3edge(&["convert", "tone.wav", "best.flac", "--level", "8", "--true_peak", "-1", "--normalize", "podcast"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(probe(&dir.path().join("best.flac")).codec, "flac");

    // The same refusal as the platform's upload, word for word, and exit 2.
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("cli-options@example.com").await;
    let body = std::fs::read(dir.path().join("tone.wav")).unwrap();
    let mut cases: Vec<Vec<(&str, &str)>> = REFUSED.iter().map(|case| vec![*case]).collect();
    cases.push(vec![("start", "2"), ("end", "1")]);
    cases.push(vec![("true_peak", "-1")]);
    cases.push(vec![("bitrate", "128"), ("vbr", "2")]);
    cases.push(vec![("format", "mp3"), ("level", "5")]);
    cases.push(vec![("format", "wav"), ("bitrate", "128")]);
    cases.push(vec![("format", "mp3"), ("rate", "96000")]);
    for case in cases {
        let query: Vec<String> = case.iter().map(|(name, value)| format!("{name}={}", query_escape(value))).collect();
        let res = c
            .http
            .post(c.url(&format!("/upload?filename=tone.wav&{}", query.join("&"))))
            .bearer_auth(&token)
            .header("content-type", "audio/wav")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let api = error_body(res, 400).await;
        let mut args = vec!["convert".to_string(), "tone.wav".into(), "never.out".into()];
        if !case.iter().any(|(name, _)| *name == "format") {
            args.extend(["--format".into(), "mp3".into()]);
        }
        for (name, value) in &case {
            args.push(format!("--{}={value}", name.replace('_', "-")));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = mp3edge(&args, dir.path());
        assert_eq!(got.status.code(), Some(2), "{case:?}: {}", text(&got));
        let expect = format!("mp3edge: {}: {}\n", api["error"].as_str().unwrap(), api["detail"].as_str().unwrap());
        assert_eq!(stderr(&got), expect, "{case:?}");
        assert!(!dir.path().join("never.out").exists() && !dir.path().join("never.out.part").exists(), "{case:?}");
    }
}

#[test]
fn dash_reads_standard_input_and_writes_nothing_but_audio_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let clip = fixture_as("mp4 h264+aac", dir.path(), "clip.mp4");
    let got = mp3edge(&["convert", "clip.mp4", "reference.mp3"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    let reference = std::fs::read(dir.path().join("reference.mp3")).unwrap();

    // A file to standard output: the very bytes of the file conversion, and only them.
    let got = mp3edge(&["convert", "clip.mp4", "-", "--format", "mp3"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    assert!(got.stdout == reference, "standard output differs from the file ({} and {} bytes)", got.stdout.len(), reference.len());
    assert!(stderr(&got).contains("clip.mp4 → standard output"), "{}", stderr(&got));

    // A pipe to standard output, as `curl … | mp3edge convert - --format mp3 - > out.mp3`.
    let bytes = std::fs::read(&clip).unwrap();
    let got = mp3edge_piped(&["convert", "-", "--format", "mp3", "-"], dir.path(), bytes.clone());
    assert!(got.status.success(), "{}", text(&got));
    assert!(got.stdout == reference, "piped output differs from the file ({} and {} bytes)", got.stdout.len(), reference.len());
    // A pipe to a file, the format from its extension.
    let got = mp3edge_piped(&["convert", "-", "piped.opus"], dir.path(), bytes.clone());
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(probe(&dir.path().join("piped.opus")).codec, "opus");

    // Refused: standard output without --format, standard input without OUT (exit 2) …
    let got = mp3edge(&["convert", "clip.mp4", "-"], dir.path());
    assert_eq!(got.status.code(), Some(2), "{}", text(&got));
    assert_eq!(stderr(&got), "mp3edge: standard output has no extension to tell the format by\nhint: pass --format NAME\n");
    assert!(got.stdout.is_empty());
    let got = mp3edge_piped(&["convert", "-"], dir.path(), bytes.clone());
    assert_eq!(got.status.code(), Some(2), "{}", text(&got));
    assert!(stderr(&got).contains("standard input has no name"), "{}", text(&got));
    // … standard output on a terminal (`script` gives the command a pseudo-terminal) …
    let got = Command::new("script")
        .args(["-qec", &format!("{} convert clip.mp4 - --format mp3", mp3edge_bin().display()), "/dev/null"])
        .current_dir(dir.path())
        .env("MP3EDGE_MODULE_CACHE", workspace_root().join("target/test-module-cache"))
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert_eq!(got.status.code(), Some(2), "{}", text(&got));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).replace("\r\n", "\n"),
        "mp3edge: standard output is a terminal, not a place for audio\nhint: redirect it (`> out.mp3`) or give OUT\n"
    );
    // … standard input past the largest upload, and a pipe of no media (exit 1), with no audio.
    let got = mp3edge_piped(&["convert", "-", "--format", "mp3", "-", "--max-upload-bytes", "1000"], dir.path(), bytes);
    assert_eq!(got.status.code(), Some(1), "{}", text(&got));
    assert_eq!(stderr(&got).lines().last(), Some("mp3edge: cannot convert: standard input is larger than 1000 bytes (--max-upload-bytes)"));
    assert!(got.stdout.is_empty());
    let (_, random, _) = bad_inputs().into_iter().find(|(_, path, _)| path.ends_with("random.bin")).unwrap();
    let got = mp3edge_piped(&["convert", "-", "--format", "mp3", "-"], dir.path(), std::fs::read(random).unwrap());
    assert_eq!(got.status.code(), Some(1), "{}", text(&got));
    assert!(stderr(&got).contains("mp3edge: cannot convert: "), "{}", text(&got));
    assert!(got.stdout.is_empty(), "{} bytes on standard output", got.stdout.len());
}

#[test]
fn several_inputs_convert_together_into_a_directory_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    fixture_as("mp4 h264+aac", dir.path(), "a.mp4");
    fixture_as("webm vp9+opus", dir.path(), "b.webm");
    fixture_as("mkv h264+vorbis", dir.path(), "c.mkv");
    std::fs::create_dir(dir.path().join("more")).unwrap();
    fixture_as("wav", &dir.path().join("more"), "d.wav");
    let (_, random, _) = bad_inputs().into_iter().find(|(_, path, _)| path.ends_with("random.bin")).unwrap();
    std::fs::copy(random, dir.path().join("noise.bin")).unwrap();

    let got = mp3edge(
        &["convert", "a.mp4", "b.webm", "noise.bin", "c.mkv", "more", "--output-dir", "out", "--format", "mp3", "--jobs", "2"],
        dir.path(),
    );
    // One failure: exit 1, its reason, and every other output whole.
    assert_eq!(got.status.code(), Some(1), "{}", text(&got));
    for name in ["a", "b", "c", "d"] {
        let p = probe(&dir.path().join("out").join(format!("{name}.mp3")));
        assert_eq!(p.codec, "mp3", "{name}");
    }
    let listed: Vec<String> = std::fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    let err = stderr(&got);
    assert!(err.contains("mp3edge: cannot convert: 1 of 5 failed:\n  noise.bin: "), "{err}");
    assert!(err.lines().any(|l| l.starts_with("converted 4 of 5 in ")), "{err}");
    for name in ["a.mp4", "b.webm", "c.mkv", "more/d.wav", "noise.bin"] {
        assert!(err.contains(&format!("converting {name} → out/")), "{name}: {err}");
        assert!(err.contains(&format!("{name}: 100%")) == (name != "noise.bin"), "{name}: {err}");
    }
    let out = String::from_utf8_lossy(&got.stdout);
    for name in ["a.mp4 → out/a.mp3", "b.webm → out/b.mp3", "c.mkv → out/c.mp3", "more/d.wav → out/d.mp3"] {
        assert!(out.contains(name), "{name}: {out}");
    }

    // All converted: exit 0 and the summary; existing outputs need --force.
    let got = mp3edge(&["convert", "a.mp4", "b.webm", "-o", "out2", "--format", "opus"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    assert!(String::from_utf8_lossy(&got.stdout).lines().any(|l| l.starts_with("converted 2 of 2 in ")), "{}", text(&got));
    assert_eq!(probe(&dir.path().join("out2/b.opus")).codec, "opus");
    let got = mp3edge(&["convert", "a.mp4", "b.webm", "-o", "out2", "--format", "opus"], dir.path());
    assert_eq!(got.status.code(), Some(2), "{}", text(&got));
    assert!(stderr(&got).contains("out2/a.opus exists"), "{}", text(&got));

    // --jobs 1: one at a time (each input done before the next starts); --jobs 3: together
    // (every input started before the first is done).
    let got = mp3edge(&["convert", "a.mp4", "b.webm", "c.mkv", "-o", "serial", "--jobs", "1"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    let events: Vec<&str> = stderr(&got).lines().filter(|l| l.starts_with("converting ") || l.ends_with(": 100%")).map(|l| if l.starts_with("converting ") { "start" } else { "done" }).collect::<Vec<_>>();
    assert_eq!(events, ["start", "done", "start", "done", "start", "done"], "{}", text(&got));
    let got = mp3edge(&["convert", "a.mp4", "b.webm", "c.mkv", "-o", "together", "--jobs", "3"], dir.path());
    assert!(got.status.success(), "{}", text(&got));
    let events: Vec<&str> = stderr(&got).lines().filter(|l| l.starts_with("converting ") || l.ends_with(": 100%")).map(|l| if l.starts_with("converting ") { "start" } else { "done" }).collect::<Vec<_>>();
    assert_eq!(events, ["start", "start", "start", "done", "done", "done"], "{}", text(&got));

    // The command line is checked before anything runs: exit 2.
    fixture_as("webm vp9+opus", dir.path(), "a.webm");
    for (args, expect) in [
        (vec!["convert", "a.mp4", "a.webm", "-o", "out3"], "mp3edge: a.mp4 and a.webm would both be written to out3/a.mp3\n"),
        (vec!["convert", "a.mp4", "b.webm", "c.mkv"], "mp3edge: give IN [OUT], or several inputs with --output-dir DIR\n"),
        (vec!["convert", "a.mp4", "missing.mp4", "-o", "out3"], "mp3edge: cannot read missing.mp4: No such file or directory (os error 2)\n"),
    ] {
        let got = mp3edge(&args, dir.path());
        assert_eq!(got.status.code(), Some(2), "{args:?}: {}", text(&got));
        assert_eq!(stderr(&got), expect, "{args:?}");
        assert!(!dir.path().join("out3").exists(), "{args:?}");
    }
}

#[test]
fn the_first_run_says_it_prepares_the_codecs_and_later_runs_do_not() {
    let dir = tempfile::tempdir().unwrap();
    fixture_as("wav", dir.path(), "tone.wav");
    let cache = tempfile::tempdir().unwrap();
    let run = |out: &str| {
        Command::new(mp3edge_bin())
            .args(["convert", "tone.wav", out])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("MP3EDGE_MODULE_CACHE", cache.path())
            // Compiling, not loading the build's precompiled components (which takes no time).
            .env("MP3EDGE_PRECOMPILED", "off")
            .output()
            .unwrap()
    };
    let first = run("first.mp3");
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(stderr(&first).lines().next(), Some("preparing codecs (once)…"), "{}", text(&first));
    let second = run("second.mp3");
    assert!(second.status.success(), "{}", text(&second));
    assert!(!stderr(&second).contains("preparing codecs"), "{}", text(&second));
}
