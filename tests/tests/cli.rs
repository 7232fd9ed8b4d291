//! The command line: `mp3edge convert` on real files (output read back by FFmpeg, exit codes on
//! bad input), `mp3edge users` against a running platform's data directory, `mp3edge up` from
//! another directory, the admin endpoints of `up`, one request log line with user and job, JSON
//! logs, and `--help` grouped by topic.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e_tests::fixtures::{bad_inputs, good_inputs};
use e2e_tests::probe::probe;
use e2e_tests::*;

fn mp3edge(args: &[&str], cwd: &Path) -> Output {
    mp3edge_command().args(args).current_dir(cwd).output().expect("mp3edge runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn convert_makes_an_mp3_and_a_wav_from_a_video_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap();
    let input = dir.path().join("clip.mp4");
    std::fs::copy(&fixture.path, &input).unwrap();
    // Run from elsewhere: the plugins and converter are found beside the binary.
    let out = mp3edge(&["convert", input.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let mp3 = dir.path().join("clip.mp3");
    let got = probe(&mp3);
    assert_eq!((got.codec.as_str(), got.sample_rate, got.channels), ("mp3", 44100, 2));
    assert!((got.decoded_frames as f64 / 44100.0 - 2.0).abs() < 0.05, "{got:?}");
    assert_eq!(got.tags.get("title").map(String::as_str), Some("mp3edge fixture"));
    // A plain line on a pipe, never a progress bar's control codes, and a summary.
    assert!(!text(&out).contains('\u{1b}'), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clip.mp3"), "{}", text(&out));
    assert!(!dir.path().join("clip.mp3.part").exists());

    let wav = dir.path().join("out.wav");
    let out = mp3edge(&["convert", "clip.mp4", "out.wav", "--format", "WAV"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let got = probe(&wav);
    assert_eq!(got.codec, "pcm_s16le");
    // What FFmpeg decodes of the AAC source: 2 s up to the AAC encoder's last-frame padding.
    assert!((got.decoded_frames as f64 / 44100.0 - 2.0).abs() < 0.05, "{got:?}");

    let vbr = dir.path().join("vbr.mp3");
    let out = mp3edge(&["convert", "clip.mp4", "vbr.mp3", "--vbr", "2"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(probe(&vbr).codec, "mp3");
}

#[test]
fn convert_exit_codes_say_what_went_wrong_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| *name == "wav").unwrap();
    let input = dir.path().join("tone.wav");
    std::fs::copy(&fixture.path, &input).unwrap();
    let run = |args: &[&str]| mp3edge(args, dir.path());

    // The command line is wrong: 2, with the reason.
    for (args, expect) in [
        (vec!["convert", "missing.mp4"], "cannot read missing.mp4"),
        (vec!["convert", "tone.wav", "--format", "xyz"], "unsupported format: format must be one of: "),
        (vec!["convert", "tone.wav", "--format", "../x"], "unsupported format: format must be one of: "),
        (vec!["convert", "tone.wav", "--bitrate", "7"], "invalid bitrate: "),
        (vec!["convert", "tone.wav", "--bitrate", "128", "--vbr", "2"], "not both"),
        (vec!["convert", "tone.wav", "--format", "wav", "--bitrate", "128"], "bitrate"),
        (vec!["convert", "tone.wav", "tone.wav", "--format", "wav"], "the input itself"),
        (vec!["convert", "tone.wav", "--app-dir", "/nonexistent"], "hint"),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expect), "{args:?}: {}", text(&out));
    }
    let out = run(&["convert", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // An existing output is kept unless --force.
    std::fs::write(dir.path().join("tone.mp3"), b"mine").unwrap();
    let out = run(&["convert", "tone.wav"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(std::fs::read(dir.path().join("tone.mp3")).unwrap(), b"mine");
    let out = run(&["convert", "tone.wav", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(probe(&dir.path().join("tone.mp3")).codec, "mp3");

    // The input cannot be converted: 1, with the job's reason, and no output at all.
    for (name, path, _) in bad_inputs() {
        let out = mp3edge(&["convert", path.to_str().unwrap(), dir.path().join("bad.mp3").to_str().unwrap()], dir.path());
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(text(&out).contains("cannot convert"), "{name}: {}", text(&out));
        assert!(!dir.path().join("bad.mp3").exists() && !dir.path().join("bad.mp3.part").exists(), "{name}");
    }
    std::fs::write(dir.path().join("empty.mp4"), b"").unwrap();
    let out = run(&["convert", "empty.mp4"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("empty"), "{}", text(&out));
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds, by the proleptic Gregorian calendar (days since
/// 1970-01-01 to a civil date through 400-year eras), independently of the command's code.
fn utc_minute(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}

#[test]
fn utc_minutes_of_known_instants() {
    assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
    assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00 UTC");
    assert_eq!(utc_minute(1_796_649_900), "2026-12-07 13:25 UTC");
}

#[tokio::test]
async fn users_commands_manage_accounts_of_a_running_server() {
    let p = Platform::start();
    let c = Client::new(&p);
    let users = |args: &[&str], stdin: &str| p.users_command(args, stdin);
    let out = users(&["add", "Cli@Example.com"], "a long enough password\n");
    assert!(out.status.success(), "{}", text(&out));
    let token = c.login("cli@example.com", "a long enough password").await;
    let me = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);

    let out = users(&["add", "cli@example.com"], "another long password\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already"), "{}", text(&out));
    let out = users(&["add", "weak@example.com"], "short\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = users(&["add", "not-an-address"], "a long enough password\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = users(&["list"], "");
    assert!(out.status.success() && text(&out).contains("cli@example.com") && text(&out).contains(ADMIN_EMAIL), "{}", text(&out));
    // The store it opened, on standard error; dates as people read them, in UTC.
    let store = p.data_dir.path().join("state").canonicalize().unwrap();
    let opened = String::from_utf8_lossy(&out.stderr);
    assert!(opened.starts_with("accounts of ") && opened.ends_with(&format!(" (data directory {})\n", store.display())), "{opened}");
    let listed = String::from_utf8_lossy(&out.stdout);
    let line = listed.lines().find(|l| l.starts_with("cli@example.com ")).unwrap_or_else(|| panic!("{listed}"));
    let created = line.split_whitespace().skip(3).collect::<Vec<_>>().join(" ");
    let (before, after) = (utc_minute(unix_now() - 120), utc_minute(unix_now()));
    assert!(created.len() == "2026-12-07 13:05 UTC".len() && before <= created && created <= after, "{created:?} not in {before}..{after}: {listed}");

    let out = users(&["passwd", "cli@example.com"], "a brand new password\n");
    assert!(out.status.success(), "{}", text(&out));
    // A new password ends the sessions from before it.
    let ended = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ended.status(), 401);
    let token = c.login("cli@example.com", "a brand new password").await;
    assert_eq!(c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().status(), 200);

    // Disabled: the token in hand stops working at once.
    let out = users(&["disable", "cli@example.com"], "");
    assert!(out.status.success(), "{}", text(&out));
    let me = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 401);
    let jobs = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(jobs.status(), 401);
    // The last active administrator stays.
    let out = users(&["disable", ADMIN_EMAIL], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("last active administrator"), "{}", text(&out));
    let out = users(&["enable", "cli@example.com"], "");
    assert!(out.status.success(), "{}", text(&out));
    let out = users(&["passwd", "nobody@example.com"], "a long enough password\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = Command::new(mp3edge_bin()).args(["users", "list", "--data-dir", "/nonexistent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("hint"), "{}", text(&out));
}

#[tokio::test]
async fn up_serves_admin_endpoints_and_logs_one_line_per_request_with_user_and_job() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("logs@example.com").await;
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| *name == "wav").unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    c.wait_for_job(&token, &id, Duration::from_secs(60)).await;
    let res = c.http.get(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // The log annotations never reach the client from mp3edge's own host.
    assert!(res.headers().get("mp3edge-log-user").is_none() && res.headers().get("mp3edge-log-job").is_none());

    let get = |path: &str| c.http.get(format!("{}{path}", p.admin_url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    // The worker counts a job done just after it records it so: the counter may lag the record.
    wait_until("the worker counting the job done", Duration::from_secs(10), async || {
        get("/metrics").await.unwrap().text().await.unwrap().lines().any(|line| line == "mp3edge_jobs_done_total 1")
    })
    .await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mp3edge_http_requests_total{component=\"gateway\",method=\"GET\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("mp3edge_http_request_duration_seconds_count{component=\"auth\"}"), "{metrics}");
    assert!(metrics.lines().any(|line| line == "mp3edge_jobs_done_total 1"), "{metrics}");

    let is_status_line = |l: &str| l.contains(&format!("/jobs/{id}")) && l.contains(" request");
    let log = p.log_when(|log| log.lines().any(is_status_line)).await;
    let lines: Vec<&str> = log.lines().filter(|l| is_status_line(l)).collect();
    assert!(!lines.is_empty(), "{log}");
    let line = lines.last().unwrap();
    for part in ["method=GET", "status=200", "route=/jobs/...", "user=logs@example.com", &format!("job={id}"), "elapsed_ms="] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    let uploads: Vec<&str> = log.lines().filter(|l| l.contains("path=/upload")).collect();
    assert_eq!(uploads.len(), 1, "one line per request: {uploads:?}");
    assert!(uploads[0].contains(&format!("job={id}")) && uploads[0].contains("status=202"), "{}", uploads[0]);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let p = Platform::start_with(PlatformOptions { args: vec!["--log-format".into(), "json".into()], ..Default::default() }).unwrap();
    let c = Client::new(&p);
    c.admin_token().await;
    let log = p.log_when(|log| log.lines().any(|l| l.starts_with('{') && l.contains(r#""path":"/login""#))).await;
    let requests: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["message"] == "request")
        .collect();
    let login = requests.iter().find(|v| v["path"] == "/login").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(login["status"], 200);
    assert_eq!(login["user"], ADMIN_EMAIL);
    assert_eq!(login["level"], "INFO");
}

#[test]
fn up_runs_from_any_directory_and_says_where_to_look_when_it_cannot() {
    let elsewhere = tempfile::tempdir().unwrap();
    // An explicit --app-dir without the application: exit 2 and a hint.
    let out = mp3edge(&["up", "--app-dir", elsewhere.path().to_str().unwrap()], elsewhere.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no spin.toml") && text(&out).contains("hint"), "{}", text(&out));

    // From another directory, the application beside the binary is found and served.
    let port = free_port();
    let admin = free_port();
    let mut child = Command::new(mp3edge_bin())
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
        .current_dir(elsewhere.path())
        .env("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET)
        .env("SPIN_VARIABLE_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("SPIN_VARIABLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("MP3EDGE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut served = false;
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            served = answer.starts_with("HTTP/1.1 200");
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(served, "{}", text(&out));
    // The data directory defaults to the application directory's, not the current one.
    assert!(!elsewhere.path().join(".mp3edge").exists());
}

#[test]
fn help_is_grouped_by_topic_and_every_flag_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let up = text(&mp3edge(&["up", "--help"], dir.path()));
    for heading in ["Serving:", "Files:", "Limits:", "Conversion worker:", "Notifications:", "Operations:", "Logging:"] {
        assert!(up.contains(heading), "{heading} missing:\n{up}");
    }
    for flag in ["--admin-listen", "--job-timeout-secs", "--app-dir", "--plugins", "--log-format"] {
        assert!(up.contains(flag), "{flag} missing:\n{up}");
    }
    for command in ["up", "worker", "convert", "users"] {
        let help = text(&mp3edge(&[command, "--help"], dir.path()));
        // `--help` puts each flag's description on the lines after it.
        let lines: Vec<&str> = help.lines().collect();
        let is_flag = |l: &str| {
            let l = l.trim_start();
            l.starts_with("--") || (l.starts_with('-') && l.as_bytes().get(2) == Some(&b','))
        };
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| is_flag(l)) {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            assert!(!next.trim().is_empty() && !is_flag(next), "{command}: undescribed flag: {line}\n{help}");
        }
    }
}

#[test]
fn users_finds_the_data_directory_as_up_does_and_says_which_store_it_opened() {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("spin.toml"), "").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // No state yet: exit 2 and where it looked.
    let out = mp3edge(&["users", "list", "--app-dir", app.path().to_str().unwrap()], elsewhere.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("no data directory at {}", app.path().join(".mp3edge").display())), "{}", text(&out));
    // The application directory's `.mp3edge`, as `up` would use it.
    std::fs::create_dir(app.path().join(".mp3edge")).unwrap();
    let out = mp3edge(&["users", "list", "--app-dir", app.path().to_str().unwrap()], elsewhere.path());
    assert!(out.status.success(), "{}", text(&out));
    let state = app.path().join(".mp3edge").canonicalize().unwrap();
    let opened = String::from_utf8_lossy(&out.stderr);
    assert!(opened.starts_with(&format!("accounts of {}/", state.display())), "{opened}");
    assert!(opened.ends_with(&format!(" (data directory {})\n", state.display())), "{opened}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{:<40} {:<6} {:<8} created\n", "email", "admin", "active"));
}
