//! The conversion worker end to end: real FFmpeg demux, real codec plugins in Wasmtime, real
//! Redis queue. Every promised container converts; bad inputs fail readably; a killed worker
//! loses nothing; poison jobs are dead-lettered; hostile plugins fail only their jobs; plugins
//! swap without restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_tests::audio::{decode_mp3, decode_wav, mp3_frame_len};
use e2e_tests::fixtures::{bad_inputs, good_inputs, long_video};
use e2e_tests::*;
use job_model::layout;
use redis::AsyncCommands;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn wasm(name: &str) -> PathBuf {
    let path = workspace_root().join("target/wasm32-wasip2/release").join(name);
    assert!(path.is_file(), "{} missing: run `make build`", path.display());
    path
}

/// A plugin directory of the test's own, mapping format names to plugin files.
fn plugin_dir(dir: &Path, mapping: &[(&str, &str)]) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    write_mapping(&plugins, mapping);
    plugins
}

fn write_mapping(plugins: &Path, mapping: &[(&str, &str)]) {
    let text: String = mapping
        .iter()
        .map(|(format, file)| format!("[formats.{format}]\nplugin = {:?}\n", wasm(file).display().to_string()))
        .collect();
    // Write then rename, so the worker never reads half a file.
    let tmp = plugins.join("codecs.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, plugins.join("codecs.toml")).unwrap();
}

fn kv_on_redis_without_worker() -> PlatformOptions {
    PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }
}

#[tokio::test]
async fn every_promised_input_converts_to_mp3_and_wav_with_the_right_duration() {
    // Thirty jobs queued at once: above the default jobs-in-flight limit of one user.
    let variables = [("user_max_active_jobs".to_string(), "0".to_string())].into();
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, variables, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("conv@example.com").await;
    let inputs = good_inputs();
    let mut jobs = Vec::new();
    for (name, fixture) in &inputs {
        for format in ["mp3", "wav"] {
            let query = if format == "mp3" { "format=mp3&bitrate=128".to_string() } else { format!("format={format}") };
            let id = c.upload_file(&token, &fixture.path, fixture.content_type, &query).await;
            jobs.push((name, fixture, format, id));
        }
    }
    for (name, fixture, format, id) in jobs {
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "{name} → {format}: {job}");
        let (headers, bytes) = c.download(&token, &id).await;
        let decoded = match format {
            "mp3" => {
                assert_eq!(headers["content-type"], "audio/mpeg");
                // Tags travel from the source into ID3v2 (MPEG-TS carries none).
                if !name.starts_with("mpeg-ts") {
                    assert!(bytes.starts_with(b"ID3"), "{name}: ID3v2 tag first");
                }
                decode_mp3(&bytes)
            }
            _ => {
                assert_eq!(headers["content-type"], "audio/wav");
                decode_wav(&bytes)
            }
        };
        // Rates are kept when the codec accepts them; mp3 keeps at most two channels.
        assert_eq!(decoded.sample_rate, fixture.sample_rate, "{name} → {format}");
        let channels = if format == "mp3" { fixture.channels.min(2) } else { fixture.channels };
        assert_eq!(decoded.channels, channels, "{name} → {format}");
        // The decoded source (what FFmpeg gave the encoder) is the reference; its length is
        // the nominal one up to the source codec's last-frame padding.
        let source_secs = job["output"]["duration_secs"].as_f64().unwrap();
        assert!((source_secs - fixture.duration.unwrap()).abs() < 0.05, "{name}: decoded source lasts {source_secs}s");
        let source_frames = source_secs * f64::from(fixture.sample_rate);
        let exact = decoded.exact_frames.unwrap_or_else(|| panic!("{name} → {format}: no exact length in the header"));
        let tolerance = mp3_frame_len(fixture.sample_rate) as f64;
        assert!(
            (exact as f64 - source_frames).abs() <= tolerance,
            "{name} → {format}: output holds {exact} frames, source {source_frames}"
        );
        // A plain decoder (no gapless trimming) still yields all of it.
        assert!(decoded.frames as f64 >= source_frames - tolerance, "{name} → {format}: decoded {} frames", decoded.frames);
        assert_eq!(job["output"]["size"].as_u64().unwrap(), bytes.len() as u64);
    }
}

#[tokio::test]
async fn bad_inputs_fail_their_jobs_with_a_reason_and_the_worker_carries_on() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bad@example.com").await;
    for (name, path, content_type) in bad_inputs() {
        let id = c.upload_file(&token, &path, content_type, "").await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "failed", "{name}: {job}");
        let reason = job["error"].as_str().unwrap().to_lowercase();
        assert!(!reason.is_empty(), "{name}");
        if name == "no audio stream" {
            assert!(reason.contains("audio"), "{name}: {reason}");
        }
        assert_eq!(job["attempts"], 1, "{name}: permanent failures are not retried");
        let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(error_body(res, 409).await["status"], "failed");
        // The operator sees it at WARN, with the reason.
        let failed = |l: &str| l.contains("conversion failed") && l.contains(&id);
        let log = p.log_when(|log| log.lines().any(failed)).await;
        let line = log.lines().find(|l| failed(l)).unwrap_or_else(|| panic!("{name}: {log}"));
        assert!(line.contains("WARN") && line.contains("reason="), "{name}: {line}");
    }
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
}

#[tokio::test]
async fn a_worker_killed_mid_conversion_loses_nothing_and_the_job_completes_once() {
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("crash@example.com").await;
    let video = long_video("crash-10min.mp4", 600, "160x120");
    let mut first = p.start_worker(&["--visibility-timeout-secs", "2", "--concurrency", "1"]);
    let id = c.upload_file(&token, &video, "video/mp4", "").await;
    // Wait until it is visibly converting, then kill -9.
    let started = std::time::Instant::now();
    loop {
        let job = c.job(&token, &id).await;
        if job["status"] == "converting" && job["progress"].as_u64().unwrap_or(0) >= 5 {
            break;
        }
        assert!(job["status"] != "done", "conversion finished before the kill; use a longer input");
        assert!(started.elapsed() < JOB_TIMEOUT, "never started converting: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill_hard();
    // Ten minutes encode in segments on both cores: the kill lands mid-segment.
    assert!(first.log().contains("encoding in segments"), "{}", first.log());
    let mut redis = p.redis().connect().await;
    let mut done_messages = redis::Client::open(p.redis().url()).unwrap().get_async_pubsub().await.unwrap();
    done_messages.subscribe(layout::DONE_CHANNEL).await.unwrap();

    let _second = p.start_worker(&["--visibility-timeout-secs", "2", "--concurrency", "1"]);
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "one attempt died with the worker, one finished");
    let (_, bytes) = c.download(&token, &id).await;
    let decoded = decode_mp3(&bytes);
    assert!((decoded.exact_frames.unwrap() as f64 - 600.0 * 44100.0).abs() <= 1152.0);

    // Exactly one completion, nothing left pending, nothing dead-lettered.
    use futures::StreamExt;
    let mut messages = done_messages.on_message();
    let first_message = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
    assert!(first_message.is_ok(), "the completion was published");
    assert!(tokio::time::timeout(Duration::from_secs(3), messages.next()).await.is_err(), "only once");
    let pending: (u64, redis::Value, redis::Value, redis::Value) =
        redis::cmd("XPENDING").arg(layout::JOB_STREAM).arg(layout::WORKER_GROUP).query_async(&mut redis).await.unwrap();
    assert_eq!(pending.0, 0);
    let dead: u64 = redis.xlen(layout::DEAD_LETTER_STREAM).await.unwrap();
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_poison_job_is_dead_lettered_after_three_attempts_and_the_next_job_runs() {
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("poison@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let poison = c.upload_file(&token, &fixture.path, fixture.content_type, "").await;
    // Its source loses a chunk before any worker sees it: every attempt fails.
    let mut redis = p.redis().connect().await;
    let _: () = redis.del(layout::source_chunk_key(&poison, 0)).await.unwrap();
    let good = c.upload_file(&token, &fixture.path, fixture.content_type, "").await;

    let worker = p.start_worker(&["--max-attempts", "3", "--concurrency", "1"]);
    let job = c.wait_for_job(&token, &poison, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"], 3);
    let reason = job["error"].as_str().unwrap();
    assert!(reason.contains("gave up after 3 attempts") && reason.contains("missing"), "{reason}");
    // The worker dead-letters the entry after the failure is visible on the record.
    wait_until("the entry is dead-lettered", Duration::from_secs(10), async || {
        redis.clone().xlen::<_, u64>(layout::DEAD_LETTER_STREAM).await.unwrap() > 0
    })
    .await;
    let dead: Vec<(String, Vec<(String, String)>)> = redis.xrange_all::<_, redis::streams::StreamRangeReply>(layout::DEAD_LETTER_STREAM)
        .await
        .unwrap()
        .ids
        .into_iter()
        .map(|e| (e.id.clone(), e.map.iter().map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap())).collect()))
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].1.contains(&("job_id".to_string(), poison.clone())));
    // The reason a reader saw first is the final one: the worker does not rewrite it.
    assert_eq!(c.job(&token, &poison).await["error"], job["error"]);
    assert_eq!(c.wait_for_job(&token, &good, JOB_TIMEOUT).await["status"], "done");
    drop(worker);
}

#[tokio::test]
async fn hostile_plugins_fail_only_their_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(
        dir.path(),
        &[
            ("mp3", "codec_mp3_lame.wasm"),
            ("trap", "codec_trap.wasm"),
            ("spin-loop", "codec_spin_loop.wasm"),
            ("memory-bomb", "codec_memory_bomb.wasm"),
        ],
    );
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let mut worker = p.start_worker(&[
        "--plugins",
        plugins.to_str().unwrap(),
        "--plugin-timeout-secs",
        "2",
        "--plugin-max-memory-mib",
        "32",
        "--concurrency",
        "2",
    ]);
    let c = Client::new(&p);
    let token = c.new_user("hostile@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    for (format, expect) in [("trap", "unreachable"), ("spin-loop", "deadline"), ("memory-bomb", "")] {
        let id = c.upload_file(&token, &fixture.path, fixture.content_type, &format!("format={format}")).await;
        let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "failed", "{format}: {job}");
        let reason = job["error"].as_str().unwrap();
        assert!(reason.contains(format) && reason.contains(expect), "{format}: {reason}");
        // One clear sentence for the user; the backtrace stays in the log.
        assert!(!reason.contains("backtrace") && !reason.contains('\n'), "{format}: {reason}");
    }
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    assert!(worker.is_running(), "the worker survived every hostile plugin");
}

#[tokio::test]
async fn swapping_the_plugin_mapping_takes_effect_for_the_next_job() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path(), &[("audio", "codec_mp3_lame.wasm")]);
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let _worker = p.start_worker(&["--plugins", plugins.to_str().unwrap()]);
    let c = Client::new(&p);
    let token = c.new_user("swap@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();

    let formats: serde_json::Value = c.http.get(c.url("/formats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(formats.as_array().unwrap().len(), 1, "{formats}");
    let first = c.upload_file(&token, &fixture.path, fixture.content_type, "format=audio").await;
    assert_eq!(c.wait_for_job(&token, &first, JOB_TIMEOUT).await["output"]["content_type"], "audio/mpeg");

    write_mapping(&plugins, &[("audio", "codec_wav.wasm"), ("wav", "codec_wav.wasm")]);
    // The edge learns the new list as soon as the worker reloads it.
    let started = std::time::Instant::now();
    loop {
        let formats: serde_json::Value = c.http.get(c.url("/formats")).send().await.unwrap().json().await.unwrap();
        if formats.as_array().unwrap().len() == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "format list never updated: {formats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = c.upload_file(&token, &fixture.path, fixture.content_type, "format=audio").await;
    let job = c.wait_for_job(&token, &second, JOB_TIMEOUT).await;
    assert_eq!(job["output"]["content_type"], "audio/wav", "{job}");
    decode_wav(&c.download(&token, &second).await.1);
}

#[tokio::test]
async fn worker_admin_endpoints_and_sigterm_finish_the_job_in_flight() {
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut worker = p.start_worker(&["--admin-listen", &admin, "--concurrency", "1"]);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{admin}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in ["mp3edge_jobs_done_total 0", "mp3edge_jobs_in_flight 0", "mp3edge_queue_lag 0", "mp3edge_queue_pending 0"] {
        assert!(metrics.contains(name), "{name} missing in:\n{metrics}");
    }

    let c = Client::new(&p);
    let token = c.new_user("term@example.com").await;
    let video = long_video("term-2min.mp4", 120, "160x120");
    let id = c.upload_file(&token, &video, "video/mp4", "").await;
    let started = std::time::Instant::now();
    while c.job(&token, &id).await["status"] != "converting" {
        assert!(started.elapsed() < JOB_TIMEOUT, "never started converting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mp3edge_jobs_in_flight 1"), "{metrics}");
    // SIGTERM mid-job: the worker finishes it, acknowledges it and exits cleanly.
    let status = worker.stop(Duration::from_secs(60)).expect("the worker exits after its job");
    assert!(status.success(), "{status:?}");
    let job = c.job(&token, &id).await;
    assert_eq!(job["status"], "done", "{job}");
    let mut redis = p.redis().connect().await;
    let pending: (u64, redis::Value, redis::Value, redis::Value) =
        redis::cmd("XPENDING").arg(layout::JOB_STREAM).arg(layout::WORKER_GROUP).query_async(&mut redis).await.unwrap();
    assert_eq!(pending.0, 0, "acknowledged before exiting");
    assert!(get("/healthz").await.is_err(), "admin endpoints closed with the worker");
}

#[tokio::test]
async fn vbr_quality_makes_a_variable_bitrate_mp3_with_exact_length() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("vbr@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "vbr=2").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["options"]["vbr_quality"], 2);
    let (_, bytes) = c.download(&token, &id).await;
    // LAME marks VBR streams with a "Xing" info frame ("Info" for CBR), the first frame after
    // the ID3v2 tag (which holds the cover picture of a video source).
    let tag = if bytes.starts_with(b"ID3") { 10 + bytes[6..10].iter().fold(0usize, |n, &b| (n << 7) | usize::from(b & 0x7f)) } else { 0 };
    assert!(bytes[tag..].windows(4).take(4096).any(|w| w == b"Xing"), "VBR info frame");
    let decoded = decode_mp3(&bytes);
    let source_frames = job["output"]["duration_secs"].as_f64().unwrap() * f64::from(fixture.sample_rate);
    assert!((decoded.exact_frames.unwrap() as f64 - source_frames).abs() <= 1152.0);
}

#[tokio::test]
async fn wav_passes_the_conversion_suite_read_back_by_ffmpeg() {
    e2e_tests::suite::convert_every_input(e2e_tests::suite::FormatExpectations {
        query: "format=wav",
        content_type: "audio/wav",
        codec: "pcm_s16le",
        rate_for: |rate| rate,
        max_channels: 8,
        tolerance_frames: 0,
        tags: false,
    })
    .await;
}

#[tokio::test]
async fn a_long_job_encodes_in_segments_and_a_trapping_segment_fails_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path(), &[("mp3", "codec_mp3_lame.wasm"), ("segment-trap", "codec_segment_trap.wasm")]);
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let mut worker = p.start_worker(&["--plugins", plugins.to_str().unwrap(), "--segment-secs", "5", "--segment-threads", "2"]);
    let c = Client::new(&p);
    let token = c.new_user("segments@example.com").await;
    let input = e2e_tests::fixtures::signal(e2e_tests::fixtures::Signal::Music, 30.0, 44100, 2);

    let id = c.upload_file(&token, &input, "audio/flac", "format=mp3&bitrate=192").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(worker.log().lines().any(|l| l.contains("encoding in segments") && l.contains("segments=6")), "{}", worker.log());
    let (_, bytes) = c.download(&token, &id).await;
    assert_eq!(decode_mp3(&bytes).exact_frames, Some(30 * 44100), "the joined mp3 states the source's exact length");

    // A plugin that traps in every segment but the first: the job fails with the reason, and
    // nothing of the attempt is left.
    let id = c.upload_file(&token, &input, "audio/flac", "format=segment-trap").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    let reason = job["error"].as_str().unwrap();
    assert!(reason.contains("segment-trap") && reason.contains("unreachable") && !reason.contains('\n'), "{reason}");
    let mut redis = p.redis().connect().await;
    let left: Vec<String> = redis.keys(format!("{}*", layout::output_chunk_key(&id, 0).trim_end_matches(char::is_numeric))).await.unwrap();
    assert!(left.is_empty(), "output chunks left: {left:?}");
    // Nor any segment of it, nor its plan.
    let plan = layout::segment_plan_key(&id);
    wait_until("the plan is removed", Duration::from_secs(5), async || !redis.clone().exists::<_, bool>(&plan).await.unwrap()).await;
    let left: Vec<String> = redis.keys(format!("job:{id}:seg:*")).await.unwrap();
    assert!(left.is_empty(), "segments left: {left:?}");
    let id = c.upload_file(&token, &input, "audio/flac", "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    assert!(worker.is_running());
}

#[tokio::test]
async fn one_cpu_workers_cut_a_long_job_when_another_worker_serves_the_queue() {
    // One segment thread each, the shape of a one-CPU pod: alone, a worker encodes serially
    // (cutting would only add seams); beside another, the job is shared.
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let args = ["--segment-secs", "5", "--segment-threads", "1", "--concurrency", "1"];
    let first = p.start_worker(&args);
    let c = Client::new(&p);
    let token = c.new_user("one-cpu@example.com").await;
    let input = e2e_tests::fixtures::signal(e2e_tests::fixtures::Signal::Music, 30.0, 48000, 2);
    let alone = c.upload_file(&token, &input, "audio/flac", "format=mp3&bitrate=192").await;
    assert_eq!(c.wait_for_job(&token, &alone, JOB_TIMEOUT).await["status"], "done");
    assert!(!first.log().contains("encoding in segments"), "a lone one-thread worker cut the job:\n{}", first.log());

    let second = p.start_worker(&args);
    // Until the second worker reads the queue, the first one would not count it.
    wait_until("the second worker serves the segment queue", Duration::from_secs(20), async || {
        let mut redis = p.redis().connect().await;
        let serving: Vec<String> = redis.zrange(layout::SEGMENT_WORKERS, 0, -1).await.unwrap();
        serving.len() >= 2
    })
    .await;
    let shared = c.upload_file(&token, &input, "audio/flac", "format=mp3&bitrate=192").await;
    assert_eq!(c.wait_for_job(&token, &shared, JOB_TIMEOUT).await["status"], "done");
    let (log1, log2) = (first.log(), second.log());
    let converted = format!("conversion done job={shared}");
    let (owner, helper) = if log1.contains(&converted) { (&log1, &log2) } else { (&log2, &log1) };
    assert!(owner.contains("encoding in segments"), "not cut beside another worker:\n{owner}");
    let encoded = |log: &str| log.lines().filter(|l| l.contains("encoded a segment") && l.contains(&shared)).count();
    // Six segments of 5 s: the job's worker encodes the first itself; the five others are
    // shared, and the other worker takes some of them.
    assert_eq!(encoded(owner) + encoded(helper), 5, "each shared segment encoded once:\n{log1}\n{log2}");
    assert!(encoded(helper) > 0, "the other worker encoded none:\n{helper}");
    let (_, bytes) = c.download(&token, &shared).await;
    assert_eq!(decode_mp3(&bytes).exact_frames, Some(30 * 48000));
}

#[tokio::test]
async fn two_workers_share_the_segments_of_one_long_job() {
    let p = Platform::start_with(kv_on_redis_without_worker()).unwrap();
    let args = ["--segment-secs", "5", "--segment-threads", "2", "--concurrency", "1"];
    let (first, second) = (p.start_worker(&args), p.start_worker(&args));
    let c = Client::new(&p);
    let token = c.new_user("cluster@example.com").await;
    let input = e2e_tests::fixtures::signal(e2e_tests::fixtures::Signal::Music, 60.0, 48000, 2);
    let id = c.upload_file(&token, &input, "audio/flac", "format=mp3&bitrate=192").await;
    // While they wait in the store, the segments count in the owner's usage.
    let usage_key = job_model::lifecycle::usage_key("cluster@example.com");
    let field = job_model::lifecycle::segments_field(&id);
    let mut counted = 0u64;
    let watcher = p.redis().connect().await;
    let job = loop {
        let seen: Option<u64> = watcher.clone().hget(&usage_key, &field).await.unwrap();
        counted = counted.max(seen.unwrap_or(0));
        let job = c.job(&token, &id).await;
        if job["status"] == "done" || job["status"] == "failed" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(job["status"], "done", "{job}");
    // A segment of 5 s at 192 kbps is about 120 KB.
    assert!(counted > 100_000, "segments counted: {counted} bytes");
    let (_, bytes) = c.download(&token, &id).await;
    assert_eq!(decode_mp3(&bytes).exact_frames, Some(60 * 48000));
    // Twelve segments: the job's worker encodes the first, and both take the others.
    let encoded = |log: String| log.lines().filter(|l| l.contains("encoded a segment") && l.contains(&id)).count();
    let (by_first, by_second) = (encoded(first.log()), encoded(second.log()));
    assert_eq!(by_first + by_second, 11, "each shared segment encoded once: {by_first} + {by_second}");
    assert!(by_first > 0 && by_second > 0, "both workers encoded segments: {by_first} + {by_second}");
    // Nothing of the segments is left: no plan, no stored segment, no stream entry.
    let mut redis = p.redis().connect().await;
    let plan = layout::segment_plan_key(&id);
    wait_until("the plan is removed", Duration::from_secs(5), async || !redis.clone().exists::<_, bool>(&plan).await.unwrap()).await;
    let left: Vec<String> = redis.keys(format!("job:{id}:seg:*")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let entries: u64 = redis.xlen(layout::SEGMENT_STREAM).await.unwrap();
    assert_eq!(entries, 0);
    // Nor in the usage: the output alone is counted.
    let usage: std::collections::HashMap<String, u64> = redis.hgetall(&usage_key).await.unwrap();
    assert!(!usage.contains_key(&field), "{usage:?}");
    assert_eq!(usage.get(&job_model::lifecycle::output_field(&id)).copied(), Some(bytes.len() as u64), "{usage:?}");
}
