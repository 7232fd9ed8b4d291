//! The build's precompiled artifacts (`mp3edge precompile`, the end of `make build`): a first
//! start loads every component from them and compiles nothing, even with an empty module cache;
//! an artifact that does not match (the component changed after the build), was edited, may be
//! written by others, belongs to another user or is not a regular file is never loaded: that
//! component is compiled (and cached) instead, and the conversion still makes a good mp3.
//! Engines of other settings are in `spin-host`'s unit tests (`precompiled`, `engine`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e_tests::fixtures::good_inputs;
use e2e_tests::probe::probe;
use e2e_tests::*;

const RELEASE: &str = "target/wasm32-wasip2/release";

/// An application in `dir`: the web component in its manifest, the converter and two plugins.
fn small_app(dir: &Path) {
    let built = workspace_root().join(RELEASE);
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(built.join("web.wasm"), dir.join("web.wasm")).unwrap();
    std::fs::copy(built.join("converter.wasm"), dir.join("converter.wasm")).unwrap();
    std::fs::copy(built.join("codec_mp3_lame.wasm"), dir.join("plugins/codec_mp3_lame.wasm")).unwrap();
    std::fs::copy(built.join("codec_wav.wasm"), dir.join("plugins/codec_wav.wasm")).unwrap();
    std::fs::write(dir.join("plugins/codecs.toml"), "[formats.mp3]\nplugin = \"codec_mp3_lame.wasm\"\n\n[formats.wav]\nplugin = \"codec_wav.wasm\"\n").unwrap();
    std::fs::write(
        dir.join("spin.toml"),
        "spin_manifest_version = 2\n\n[application]\nname = \"small\"\n\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\n[component.web]\nsource = \"web.wasm\"\n",
    )
    .unwrap();
}

fn precompile(app: &Path) -> String {
    let out = Command::new(mp3edge_bin())
        .args(["precompile", "--app-dir"])
        .arg(app)
        .arg("--converter")
        .arg(app.join("converter.wasm"))
        .env("NO_COLOR", "1")
        .output()
        .expect("mp3edge runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `mp3edge convert` of the clip with the small application and an empty module cache.
fn convert(app: &Path, work: &Path, output: &str) -> String {
    let cache = work.join(format!("cache-{output}"));
    let out: Output = Command::new(mp3edge_bin())
        .args(["convert", "clip.mp4", output, "--plugins"])
        .arg(app.join("plugins"))
        .arg("--converter")
        .arg(app.join("converter.wasm"))
        .current_dir(work)
        .env("MP3EDGE_MODULE_CACHE", &cache)
        .env("MP3EDGE_LOG", "spin_host::engine=info,spin_host::precompiled=info,spin_host::module_cache=warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("mp3edge runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let got = probe(&work.join(output));
    assert_eq!((got.codec.as_str(), got.sample_rate, got.channels), ("mp3", 44100, 2));
    assert!((got.decoded_frames as f64 / 44100.0 - 2.0).abs() < 0.05, "{got:?}");
    log
}

fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// The artifacts beside `wasm` (`NAME.KEY.DIGEST.cwasm`).
fn artifacts_of(wasm: &Path) -> Vec<PathBuf> {
    let stem = wasm.file_stem().unwrap().to_str().unwrap();
    let mut found: Vec<PathBuf> = std::fs::read_dir(wasm.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.strip_prefix(stem).is_some_and(|rest| rest.starts_with('.') && rest.matches('.').count() == 3) && name.ends_with(".cwasm")
        })
        .collect();
    found.sort();
    found
}

/// Exactly one component, `wasm`, is compiled; the three others come from their artifacts.
fn only_compiled(log: &str, wasm: &Path) {
    let compiled = lines_with(log, "compiled component");
    assert_eq!(compiled.len(), 1, "{log}");
    assert!(compiled[0].contains(wasm.to_str().unwrap()), "{log}");
    assert_eq!(lines_with(log, "loaded precompiled build artifact").len(), 2, "the converter and two plugins, one of them compiled:\n{log}");
}

#[test]
fn a_first_conversion_loads_the_builds_artifacts_and_never_a_mismatched_or_untrusted_one() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    small_app(&app);
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap();
    std::fs::copy(&fixture.path, work.path().join("clip.mp4")).unwrap();

    let first = precompile(&app);
    assert!(first.contains("4 components for this machine's engine, 4 compiled, 0 up to date"), "{first}");
    assert!(precompile(&app).contains("4 components for this machine's engine, 0 compiled, 4 up to date"));
    let converter = app.join("converter.wasm");
    let lame = app.join("plugins/codec_mp3_lame.wasm");
    let wav = app.join("plugins/codec_wav.wasm");
    for wasm in [&converter, &lame, &wav, &app.join("web.wasm")] {
        let found = artifacts_of(wasm);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(std::fs::metadata(&found[0]).unwrap().permissions().mode() & 0o777, 0o644, "readable by an image's user");
    }

    // Every component from its artifact: nothing compiled, nothing from the (empty) cache.
    let log = convert(&app, work.path(), "0.mp3");
    assert_eq!(lines_with(&log, "loaded precompiled build artifact").len(), 3, "{log}");
    assert_eq!(lines_with(&log, "compiled component").len(), 0, "{log}");

    // The converter changed after the build (a custom section appended): another wasm hash.
    let original = std::fs::read(&converter).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(&[0x00, 0x05, 0x04, b'n', b'o', b't', b'e']);
    std::fs::write(&converter, &changed).unwrap();
    let log = convert(&app, work.path(), "1.mp3");
    only_compiled(&log, &converter);
    assert_eq!(lines_with(&log, "for another engine or another build").len(), 1, "{log}");
    std::fs::write(&converter, &original).unwrap();

    // One bit of the mp3 plugin's artifact changed: its digest no longer matches its name.
    let artifact = artifacts_of(&lame).remove(0);
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&artifact, &bytes).unwrap();
    let log = convert(&app, work.path(), "2.mp3");
    only_compiled(&log, &lame);
    assert!(lines_with(&log, "not trusted").iter().any(|l| l.contains("damaged or edited")), "{log}");
    assert!(precompile(&app).contains("1 compiled, 3 up to date"), "the edited artifact is replaced");

    // Writable by group and others.
    let artifact = artifacts_of(&wav).remove(0);
    std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    let log = convert(&app, work.path(), "3.mp3");
    only_compiled(&log, &wav);
    assert!(lines_with(&log, "not trusted").iter().any(|l| l.contains("mode 666")), "{log}");
    assert!(precompile(&app).contains("1 compiled, 3 up to date"));

    // Another user's (the suite runs as root, which may give it away).
    let artifact = artifacts_of(&converter).remove(0);
    let path = std::ffi::CString::new(artifact.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0, "chown: {}", std::io::Error::last_os_error());
    let log = convert(&app, work.path(), "4.mp3");
    only_compiled(&log, &converter);
    assert!(lines_with(&log, "not trusted").iter().any(|l| l.contains("owner 65534")), "{log}");
    assert!(precompile(&app).contains("1 compiled, 3 up to date"));

    // A directory others may write to: anyone could have swapped the artifacts in it.
    std::fs::set_permissions(app.join("plugins"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = convert(&app, work.path(), "5.mp3");
    assert_eq!(lines_with(&log, "compiled component").len(), 2, "both plugins:\n{log}");
    assert_eq!(lines_with(&log, "its directory's owner").len(), 2, "{log}");
    std::fs::set_permissions(app.join("plugins"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // All trusted again: nothing compiled, the same mp3 as the first conversion.
    let log = convert(&app, work.path(), "6.mp3");
    assert_eq!(lines_with(&log, "compiled component").len(), 0, "{log}");
    assert_eq!(std::fs::read(work.path().join("0.mp3")).unwrap(), std::fs::read(work.path().join("6.mp3")).unwrap());

    // A new build of a component removes its earlier artifact.
    std::fs::write(&converter, &changed).unwrap();
    let out = precompile(&app);
    assert!(out.contains("1 compiled, 3 up to date") && out.contains("(an earlier build's)"), "{out}");
    assert_eq!(artifacts_of(&converter).len(), 1);
}

#[tokio::test]
async fn up_serves_its_first_request_without_compiling_anything() {
    // The workspace's application, as `make build` leaves it (already precompiled: up to date).
    let out = Command::new(mp3edge_bin()).arg("precompile").current_dir(workspace_root()).output().expect("mp3edge runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cache = tempfile::tempdir().unwrap();
    let p = Platform::start_with(PlatformOptions {
        env: vec![("MP3EDGE_MODULE_CACHE".into(), cache.path().display().to_string())],
        ..Default::default()
    })
    .unwrap();
    let res = reqwest::get(format!("{}/", p.base_url)).await.unwrap();
    assert_eq!(res.status(), 200);
    // Edge components (3) and, in the worker, the converter and the seven plugins.
    let log = p.log_when(|log| log.contains("codec plugins loaded")).await;
    assert_eq!(lines_with(&log, "loaded precompiled build artifact").len(), 11, "{log}");
    assert_eq!(lines_with(&log, "compiled component").len(), 0, "{log}");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing had to be cached");
}
