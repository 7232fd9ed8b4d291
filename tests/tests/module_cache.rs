//! The compiled-module cache (issue 13): a second `mp3edge convert` loads the converter and every
//! plugin from the cache instead of compiling them, and still makes a good mp3 (read back by
//! FFmpeg); entries are owner-only; an entry others could have written, or a damaged one, is
//! never loaded but recompiled, and the conversion still succeeds. The build's precompiled
//! artifacts are turned off here (`MP3EDGE_PRECOMPILED=off`), so the cache alone is measured;
//! `precompiled.rs` tests them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use e2e_tests::fixtures::good_inputs;
use e2e_tests::probe::probe;
use e2e_tests::*;

fn convert(cache: &Path, dir: &Path, output: &str) -> Output {
    let out = Command::new(mp3edge_bin())
        .args(["convert", "clip.mp4", output])
        .current_dir(dir)
        .env("MP3EDGE_MODULE_CACHE", cache)
        .env("MP3EDGE_PRECOMPILED", "off")
        .env("MP3EDGE_LOG", "spin_host::engine=info,spin_host::module_cache=warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("mp3edge runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let got = probe(&dir.join(output));
    assert_eq!((got.codec.as_str(), got.sample_rate, got.channels), ("mp3", 44100, 2));
    assert!((got.decoded_frames as f64 / 44100.0 - 2.0).abs() < 0.05, "{got:?}");
    out
}

fn count(out: &Output, needle: &str) -> usize {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(needle)).count()
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn a_second_start_loads_compiled_components_and_never_trusts_foreign_or_damaged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap();
    std::fs::copy(&fixture.path, dir.path().join("clip.mp4")).unwrap();
    let cache = dir.path().join("modules");

    let first = convert(&cache, dir.path(), "1.mp3");
    let compiled = count(&first, "compiled component");
    assert!(compiled >= 2, "the converter and the plugins are compiled:\n{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(count(&first, "from cache"), 0);
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    let files = entries(&cache);
    assert_eq!(files.len(), compiled, "one entry per component: {files:?}");
    for file in &files {
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    }

    let second = convert(&cache, dir.path(), "2.mp3");
    assert_eq!(count(&second, "from cache"), compiled, "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(count(&second, "compiled component"), count(&second, "from cache"), "only cache loads");
    assert_eq!(std::fs::read(dir.path().join("1.mp3")).unwrap(), std::fs::read(dir.path().join("2.mp3")).unwrap());

    // An entry group or others may write is not loaded; a damaged one is refused and replaced.
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(&files[1], b"not a compiled component").unwrap();
    std::fs::set_permissions(&files[1], std::fs::Permissions::from_mode(0o600)).unwrap();
    let third = convert(&cache, dir.path(), "3.mp3");
    assert_eq!(count(&third, "from cache"), compiled - 2, "{}", String::from_utf8_lossy(&third.stderr));
    assert_eq!(count(&third, "cached component unusable"), 1, "{}", String::from_utf8_lossy(&third.stderr));
    for file in entries(&cache) {
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    }
    let fourth = convert(&cache, dir.path(), "4.mp3");
    assert_eq!(count(&fourth, "from cache"), compiled, "recompiled entries were stored again");
}
