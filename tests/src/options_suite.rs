//! The audio options every output format honours (issue 8), as one call a format's test makes
//! with what is particular to it: a sample-accurate trim, mono output, loudness normalization
//! landing within 1 LU of the target by FFmpeg's own meter, tag overrides read back, and the
//! cover picture from a video (present where the format has one, absent with `cover=none`).
//! Everything goes through the real platform and is read back by FFmpeg ([`crate::probe`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::fixtures::good_inputs;
use crate::probe::{self, Probe};
use crate::{Client, Platform, PlatformOptions};

/// What a format promises about the options, for [`audio_options_hold`].
pub struct OptionExpectations {
    /// The `format=` value.
    pub format: &'static str,
    /// The output rate for a source at this rate (e.g. Opus always 48 kHz).
    pub rate_for: fn(u32) -> u32,
    /// Allowed difference in frames between a trimmed output and the exact trim (0 for PCM,
    /// about one codec frame for lossy codecs).
    pub tolerance_frames: u64,
    /// Whether tags are read back (`title`, `artist`, `album`).
    pub tags: bool,
    /// Whether the format embeds a cover picture.
    pub cover: bool,
}

fn input(name: &str) -> (PathBuf, &'static str) {
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| *n == name).expect("a good input");
    (fixture.path, fixture.content_type)
}

/// Converts with each option and checks the outputs (see the module doc).
pub async fn audio_options_hold(expect: OptionExpectations) {
    let variables = [("user_max_active_jobs".to_string(), "0".to_string())].into();
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, variables, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("options-suite@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let format = expect.format;
    let tone = input("wav");
    let video = input("mp4 h264+aac");
    let cases = [
        (tone.clone(), format!("format={format}&start=0.5&end=1.25")),
        (video.clone(), format!("format={format}&channels=1")),
        (tone.clone(), format!("format={format}&normalize=-16")),
        (tone.clone(), format!("format={format}&normalize=-23")),
        (tone.clone(), format!("format={format}&title=Suite%20title&artist=Suite%20artist&album=Suite%20album")),
        (video.clone(), format!("format={format}")),
        (video.clone(), format!("format={format}&cover=none")),
    ];
    let mut jobs = Vec::new();
    for ((path, content_type), query) in &cases {
        jobs.push((query.clone(), c.upload_file(&token, path, content_type, query).await));
    }
    let mut outputs: Vec<(String, Probe, PathBuf)> = Vec::new();
    for (query, id) in jobs {
        let job = c.wait_for_job(&token, &id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "done", "{query}: {job}");
        let (_, bytes) = c.download(&token, &id).await;
        let path = dir.path().join(format!("{id}.out"));
        std::fs::write(&path, &bytes).unwrap();
        outputs.push((query, probe::probe(&path), path));
    }
    let [trim, mono, loud16, loud23, tags, cover, no_cover] = &outputs[..] else { unreachable!() };

    let rate = (expect.rate_for)(44100);
    let exact = (0.75 * f64::from(rate)).round() as u64;
    assert!(trim.1.decoded_frames.abs_diff(exact) <= expect.tolerance_frames, "{}: {} frames, exactly {exact}", trim.0, trim.1.decoded_frames);
    assert_eq!(mono.1.channels, 1, "{}", mono.0);
    for ((query, _, path), target) in [(loud16, -16.0), (loud23, -23.0)] {
        let (lufs, _) = probe::loudness(path);
        assert!((lufs - target).abs() <= 1.0, "{query}: {lufs} LUFS");
    }
    if expect.tags {
        let t = &tags.1.tags;
        assert_eq!(t.get("title").map(String::as_str), Some("Suite title"), "{}: {t:?}", tags.0);
        assert_eq!(t.get("artist").map(String::as_str), Some("Suite artist"), "{}: {t:?}", tags.0);
        assert_eq!(t.get("album").map(String::as_str), Some("Suite album"), "{}: {t:?}", tags.0);
    }
    assert_eq!(probe::cover_size(&cover.2).is_some(), expect.cover, "{}: cover {:?}", cover.0, cover.1);
    assert!(probe::cover_size(&no_cover.2).is_none(), "{}", no_cover.0);
}
