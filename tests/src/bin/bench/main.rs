//! `make bench`: the worker against `ffmpeg` on the same machine, in the same run.
//!
//! Generates a 5-minute and a 60-minute 640x360 H.264/AAC video, then for each times
//! (a) `ffmpeg -threads 1 -i IN -vn -c:a libmp3lame -b:a 192k OUT` and
//! (b) the worker converting the same file to mp3 at 192 kbps (job start to output stored,
//!     as the worker logs it; CPU from /proc for the worker process and its media processes),
//! several runs each, and prints medians, the ratios (b)/(a) and the worker's peak RSS (that of
//! its last run: a first start also compiles every component into its module cache).
//! Then, each with its goal (issue 13): the CPU-seconds per minute of audio of both and their
//! ratio; the mp3 plugin's own CPU against native LAME's (the 5-minute input's audio as WAV,
//! `mp3edge convert --segment-threads 1` against `ffmpeg -threads 1`, minimum of the runs); the peak RSS of one whole `mp3edge up` (edge and worker in one process) converting the
//! longest input; the upload throughput of the longest input on loopback, `POST /upload`
//! against tus (`/uploads`); and the edge under `wrk` (`scripts/setup.sh` installs it), idle and
//! while the longest input converts, against a native server in the same run (`edge`).
//! First, a first start of `mp3edge up` (edge and worker, empty module cache): its time to the
//! first served request and its peak RSS by then, with the build's precompiled components and
//! without them (compiling every component, as before `mp3edge precompile`), against a warm start
//! (module cache filled) in the same run, interleaved, medians.
//! Usage: `cargo run --release -p e2e-tests --bin bench -- [--runs N] [--short-only] [--up-only]
//! [--first-start-only] [--edge-only]` (`--up-only`: only the whole-`up` RSS, the uploads and
//! the edge; `--first-start-only`: only the first start; `--edge-only`: only the edge).

mod edge;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::fixtures::long_video;
use e2e_tests::{Client, Platform, PlatformOptions};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn children_cpu_secs() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// CPU seconds (user + system) a process has used so far, with those of its children that
/// ended: the worker's media processes, which run FFmpeg for it (`demux::sandbox`).
fn process_cpu_secs(pid: u32) -> f64 {
    let fields = e2e_tests::procfs::stat_fields(format!("/proc/{pid}/stat")).expect("worker is running");
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    fields[11..15].iter().map(|f| f.parse::<f64>().unwrap()).sum::<f64>() / ticks
}

/// The largest peak resident memory of a media process of the worker behind `admin_url`
/// (its `/metrics`), in MiB.
async fn media_process_peak_mib(admin_url: &str) -> f64 {
    let metrics = reqwest::get(format!("{admin_url}/metrics")).await.unwrap().text().await.unwrap();
    let bytes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mp3edge_media_process_peak_rss_bytes "))
        .expect("the worker reports its media processes' peak")
        .parse()
        .unwrap();
    bytes / (1 << 20) as f64
}

/// Peak resident set of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

struct Figures {
    wall: f64,
    cpu: f64,
}

fn run_ffmpeg(input: &Path, runs: usize) -> (Figures, f64) {
    let out = std::env::temp_dir().join("mp3edge-bench-ffmpeg.mp3");
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    let mut max_rss = 0.0;
    for _ in 0..runs {
        let cpu_before = children_cpu_secs();
        let started = Instant::now();
        let mut child = Command::new("ffmpeg")
            .args(["-y", "-v", "error", "-nostdin", "-threads", "1", "-i"])
            .arg(input)
            .args(["-vn", "-c:a", "libmp3lame", "-b:a", "192k"])
            .arg(&out)
            .spawn()
            .expect("ffmpeg");
        let pid = child.id() as i32;
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let _ = child.try_wait();
        walls.push(started.elapsed().as_secs_f64());
        cpus.push(children_cpu_secs() - cpu_before);
        max_rss = f64::max(max_rss, usage.ru_maxrss as f64 / 1024.0);
        assert_eq!(status, 0, "ffmpeg failed");
    }
    (Figures { wall: median(walls), cpu: median(cpus) }, max_rss)
}

/// The mp3 plugin's CPU against native LAME's: the same PCM (the input's audio as a WAV file)
/// encoded at 192 kbps by `ffmpeg -threads 1` (Debian's libmp3lame) and by `mp3edge convert
/// --segment-threads 1` (serially, in one plugin instance under Wasmtime; decoding a WAV costs
/// next to nothing), each process whole, start-up included. Minimum CPU of `runs` runs each,
/// after one run that fills the module cache.
fn run_plugin_alone(input: &Path, runs: usize) -> (f64, f64) {
    let wav = input.with_extension("wav");
    if !wav.is_file() {
        let status = Command::new("ffmpeg").args(["-y", "-v", "error", "-nostdin", "-i"]).arg(input).args(["-vn", "-c:a", "pcm_s16le"]).arg(&wav).status().expect("ffmpeg");
        assert!(status.success(), "extracting the audio of {}", input.display());
    }
    let out = std::env::temp_dir().join("mp3edge-bench-plugin.mp3");
    let cpu_of = |command: &mut Command| {
        let before = children_cpu_secs();
        let status = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().expect("spawning");
        assert!(status.success(), "{command:?} failed");
        children_cpu_secs() - before
    };
    let ffmpeg = || {
        let mut c = Command::new("ffmpeg");
        c.args(["-y", "-v", "error", "-nostdin", "-threads", "1", "-i"]).arg(&wav).args(["-c:a", "libmp3lame", "-b:a", "192k"]).arg(&out);
        c
    };
    let plugin = || {
        let mut c = e2e_tests::mp3edge_command();
        c.arg("convert").args(["-y", "--bitrate", "192", "--segment-threads", "1"]).arg(&wav).arg(&out);
        c
    };
    cpu_of(&mut plugin());
    let (mut ffmpeg_cpu, mut plugin_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        ffmpeg_cpu = ffmpeg_cpu.min(cpu_of(&mut ffmpeg()));
        plugin_cpu = plugin_cpu.min(cpu_of(&mut plugin()));
    }
    let _ = std::fs::remove_file(&out);
    (ffmpeg_cpu, plugin_cpu)
}

/// FLAC as a user waits for it: the video to a 16-bit FLAC file by `mp3edge convert` (its
/// default level, 5) and by `ffmpeg -threads 1 -c:a flac` (FFmpeg's own encoder, its default
/// level), each process whole; median wall seconds of `runs` runs each, after one run that fills
/// the module cache. (ffmpeg, mp3edge)
fn run_flac(input: &Path, runs: usize) -> (f64, f64) {
    let out = std::env::temp_dir().join("mp3edge-bench.flac");
    let wall_of = |command: &mut Command| {
        let started = Instant::now();
        let status = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().expect("spawning");
        assert!(status.success(), "{command:?} failed");
        started.elapsed().as_secs_f64()
    };
    let ffmpeg = || {
        let mut c = Command::new("ffmpeg");
        c.args(["-y", "-v", "error", "-nostdin", "-threads", "1", "-i"]).arg(input).args(["-vn", "-c:a", "flac", "-sample_fmt", "s16"]).arg(&out);
        c
    };
    let mp3edge = || {
        let mut c = e2e_tests::mp3edge_command();
        c.arg("convert").args(["-y", "--format", "flac"]).arg(input).arg(&out);
        c
    };
    wall_of(&mut mp3edge());
    let (mut ffmpeg_wall, mut mp3edge_wall) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ffmpeg_wall.push(wall_of(&mut ffmpeg()));
        mp3edge_wall.push(wall_of(&mut mp3edge()));
    }
    let _ = std::fs::remove_file(&out);
    (median(ffmpeg_wall), median(mp3edge_wall))
}

async fn run_worker(input: &Path, runs: usize) -> (Figures, f64, f64, Vec<f64>) {
    // The worker's compiled-module cache is warm, as at any restart of a deployment: compiling
    // in-process leaves the worker tens of MiB larger for the rest of its life (the compiled
    // code in anonymous memory and Cranelift's freed heap), which is a first start's, not a
    // conversion's.
    let cache = e2e_tests::workspace_root().join("target").join("bench-worker-module-cache");
    let options = PlatformOptions {
        key_value_on_redis: true,
        no_worker: true,
        env: vec![("MP3EDGE_MODULE_CACHE".into(), cache.display().to_string())],
        ..Default::default()
    };
    let _ = Command::new(e2e_tests::mp3edge_bin()).env("MP3EDGE_MODULE_CACHE", &cache).args(["convert", "-y"]).arg(input).arg(std::env::temp_dir().join("mp3edge-bench-warm.mp3")).output();
    let p = Platform::start_with(options).unwrap();
    let worker = p.start_worker(&["--concurrency", "1"]);
    let pid = worker.pid().unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bench@example.com").await;
    let (mut walls, mut cpus, mut ratios_check) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss = 0.0;
    for _ in 0..runs {
        // Each run's own peak (`clear_refs` 5 resets VmHWM): the first start's compilation of
        // the components into the module cache is not a conversion's; the last run's is kept.
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting the peak RSS");
        let cpu_before = process_cpu_secs(pid);
        let id = c.upload_file(&token, input, "video/mp4", "format=mp3&bitrate=192").await;
        let job = c.follow_job(&token, &id, Duration::from_secs(1800)).await;
        assert_eq!(job["status"], "done", "{job}");
        cpus.push(process_cpu_secs(pid) - cpu_before);
        let elapsed_ms: f64 = worker
            .log()
            .lines()
            .filter(|l| l.contains("converter finished") && l.contains(&id))
            .find_map(|l| l.split("elapsed_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
            .expect("the worker logs each conversion's time");
        walls.push(elapsed_ms / 1000.0);
        ratios_check.push(job["output"]["duration_secs"].as_f64().unwrap());
        rss = peak_rss_mib(pid);
    }
    let media_peak = media_process_peak_mib(worker.admin_url.as_deref().expect("the harness chose the admin address")).await;
    (Figures { wall: median(walls), cpu: median(cpus) }, rss, media_peak, ratios_check)
}

/// One start of `mp3edge up` as `make up` runs it (private Redis, worker inside) with `env`:
/// seconds from its spawn to its first served request (`GET /`), and its peak RSS by then.
async fn start_until_served(env: Vec<(String, String)>) -> (f64, f64) {
    let started = Instant::now();
    let mut p = Platform::start_with(PlatformOptions { private_redis: true, env, ..Default::default() }).unwrap();
    let res = reqwest::get(format!("{}/", p.base_url)).await.unwrap();
    assert_eq!(res.status(), 200);
    let ready = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib(p.pid().unwrap());
    assert!(p.log().contains("codec plugins loaded"), "the worker had loaded its plugins before serving");
    p.stop();
    (ready, rss)
}

/// The first start's figure (see the module doc): `runs` of each kind, interleaved; medians.
async fn run_first_start(runs: usize) {
    let root = e2e_tests::workspace_root().join("target");
    let warm_cache = root.join(format!("bench-warm-module-cache-{}", std::process::id()));
    let cache_env = |dir: &Path| ("MP3EDGE_MODULE_CACHE".to_string(), dir.display().to_string());
    let off = || ("MP3EDGE_PRECOMPILED".to_string(), "off".to_string());
    // The warm start's cache, filled by one start that compiles.
    start_until_served(vec![cache_env(&warm_cache), off()]).await;
    let (mut precompiled, mut compiling, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let empty = root.join(format!("bench-empty-module-cache-{}-{run}", std::process::id()));
        precompiled.push(start_until_served(vec![cache_env(&empty.join("a"))]).await);
        compiling.push(start_until_served(vec![cache_env(&empty.join("b")), off()]).await);
        warm.push(start_until_served(vec![cache_env(&warm_cache), off()]).await);
        let _ = std::fs::remove_dir_all(&empty);
    }
    let _ = std::fs::remove_dir_all(&warm_cache);
    let show = |figures: Vec<(f64, f64)>| {
        let (times, rss): (Vec<f64>, Vec<f64>) = figures.into_iter().unzip();
        format!("{:.2} s to the first served request, peak RSS {:.1} MiB", median(times), median(rss))
    };
    println!("first start of `mp3edge up` (edge + worker, empty module cache), medians of {runs}:");
    println!("        with the build's precompiled components: {}   goal: < 2 s, < 100 MiB", show(precompiled));
    println!("        compiling every component (MP3EDGE_PRECOMPILED=off): {}", show(compiling));
    println!("        warm start (module cache filled, for reference): {}", show(warm));
}

/// Peak RSS of one `mp3edge up` with its worker inside while it takes the upload of `input` and
/// converts it, started as a
/// deployment restarts: with its compiled-module cache already filled (a first start fills it;
/// its peak, compilation included, is returned second; the largest media process's third).
async fn run_up_whole(input: &Path) -> (f64, f64, f64) {
    let cache = e2e_tests::workspace_root().join("target").join(format!("bench-module-cache-{}", std::process::id()));
    // As `mp3edge up` runs by default: its private Redis for jobs, its local key-value store.
    let options = || PlatformOptions {
        private_redis: true,
        env: vec![("MP3EDGE_MODULE_CACHE".into(), cache.display().to_string())],
        ..Default::default()
    };
    let mut first = Platform::start_with(options()).unwrap();
    let cold_start_rss = peak_rss_mib(first.pid().unwrap());
    first.stop();
    let p = Platform::start_with(options()).unwrap();
    let pid = p.pid().unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bench-rss@example.com").await;
    // The log-ins' argon2id hashing (tens of MiB in the auth component, for a moment) is not
    // the conversion's: the peak is counted from here (`clear_refs` 5 resets VmHWM).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting the peak RSS");
    let id = c.upload_file(&token, input, "video/mp4", "format=mp3&bitrate=192").await;
    let job = c.follow_job(&token, &id, Duration::from_secs(1800)).await;
    assert_eq!(job["status"], "done", "{job}");
    let rss = peak_rss_mib(pid);
    let media_peak = media_process_peak_mib(&p.admin_url).await;
    let _ = std::fs::remove_dir_all(&cache);
    (rss, cold_start_rss, media_peak)
}

/// Seconds to send `bytes` as a tus upload: the creation, then appends of `part` bytes each.
async fn tus_upload_secs(c: &Client, token: &str, bytes: &bytes::Bytes, part: usize) -> f64 {
    let started = std::time::Instant::now();
    let created = c
        .http
        .post(c.url("/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", edge_http::tus::format_metadata([("filename", "bench.mp4")]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + part).min(bytes.len());
        let res = c
            .http
            .patch(c.url(&location))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes.slice(offset..end))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
        offset = end;
    }
    started.elapsed().as_secs_f64()
}

/// Upload throughput on loopback into `up`'s own store (no worker, so nothing converts
/// meanwhile): `POST /upload` against tus in one append and in 8 MiB parts (as the page sends),
/// medians of `runs`, alternating. Goal: tus within 10% of the plain upload.
async fn run_upload_throughput(input: &Path, runs: usize) {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bench-upload@example.com").await;
    let bytes = bytes::Bytes::from(std::fs::read(input).unwrap());
    let mb = bytes.len() as f64 / 1e6;
    let (mut plain, mut whole, mut parts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let res = c.http.post(c.url("/upload?filename=bench.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body(bytes.clone()).send().await.unwrap();
        assert_eq!(res.status(), 202);
        plain.push(mb / started.elapsed().as_secs_f64());
        whole.push(mb / tus_upload_secs(&c, &token, &bytes, usize::MAX).await);
        parts.push(mb / tus_upload_secs(&c, &token, &bytes, 8 << 20).await);
        // The uploads go again, so the store does not grow over the runs.
        let jobs: serde_json::Value = c.http.get(c.url("/jobs?limit=200")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        for job in jobs.as_array().into_iter().flatten() {
            let id = job["id"].as_str().unwrap();
            c.http.delete(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap();
        }
    }
    let (plain, whole, parts) = (median(plain), median(whole), median(parts));
    println!(
        "upload of {mb:.0} MB on loopback: POST /upload {plain:.0} MB/s; tus in one append {whole:.0} MB/s ({:.2}), in 8 MiB parts {parts:.0} MB/s ({:.2})   goal: tus within 10% (>= 0.90)",
        whole / plain,
        parts / plain
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args.iter().position(|a| a == "--runs").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(3usize);
    let short_only = args.iter().any(|a| a == "--short-only");
    let up_only = args.iter().any(|a| a == "--up-only");
    if args.iter().any(|a| a == "--edge-only") {
        edge::run(&long_video("bench-3600s-640x360.mp4", 3600, "640x360"), runs).await;
        return;
    }
    if args.iter().any(|a| a == "--first-start-only") {
        run_first_start(runs).await;
        return;
    }
    let mut lengths = vec![("5 min", 300u32)];
    if !short_only {
        lengths.push(("60 min", 3600));
    }
    println!("mp3edge benchmark: {runs} runs each, medians; machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if !up_only {
        run_first_start(runs).await;
    }
    println!("{:<8} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>14} {:>14}", "input", "ffmpeg wall", "worker wall", "ffmpeg cpu", "worker cpu", "wall b/a", "cpu b/a", "ffmpeg rss", "worker rss");
    let mut per_minute = Vec::new();
    let mut plugin_alone = None;
    let mut shortest = None;
    let mut longest = None;
    for (label, seconds) in lengths {
        eprintln!("generating the {label} input (cached under target/test-fixtures)...");
        let input = long_video(&format!("bench-{seconds}s-640x360.mp4"), seconds, "640x360");
        if up_only {
            longest = Some((label, input));
            continue;
        }
        let (ffmpeg, ffmpeg_rss) = run_ffmpeg(&input, runs);
        let (worker, worker_rss, media_peak, durations) = run_worker(&input, runs).await;
        assert!(durations.iter().all(|d| (d - f64::from(seconds)).abs() < 1.0), "output durations {durations:?}");
        println!(
            "{:<8} {:>11.2}s {:>11.2}s {:>11.2}s {:>11.2}s {:>10.2} {:>10.2} {:>10.1} MiB {:>10.1} MiB",
            label,
            ffmpeg.wall,
            worker.wall,
            ffmpeg.cpu,
            worker.cpu,
            worker.wall / ffmpeg.wall,
            worker.cpu / ffmpeg.cpu,
            ffmpeg_rss,
            worker_rss
        );
        println!("{:<8} (worker cpu includes its media processes, FFmpeg's; the largest of them peaked at {media_peak:.1} MiB resident, shared program pages included)", "");
        let minutes = f64::from(seconds) / 60.0;
        per_minute.push((label, ffmpeg.cpu / minutes, worker.cpu / minutes));
        if plugin_alone.is_none() {
            plugin_alone = Some((label, minutes, run_plugin_alone(&input, runs.max(3))));
            shortest = Some((label, input.clone()));
        }
        longest = Some((label, input));
    }
    println!("goals: wall b/a <= 0.8 for 5 min and <= 0.75 for 60 min (issue 13); worker peak RSS < 100 MiB for both lengths");
    for (label, ffmpeg, worker) in per_minute {
        println!(
            "{label}: CPU-s per minute of audio, the whole worker (decode, segments, storage): {worker:.3}, ffmpeg {ffmpeg:.3}, ratio {:.2}",
            worker / ffmpeg
        );
    }
    if let Some((label, input)) = &shortest {
        let (ffmpeg, mp3edge) = run_flac(input, runs.max(3));
        println!(
            "{label}: flac, `mp3edge convert` of the video {mp3edge:.2} s, `ffmpeg -c:a flac` {ffmpeg:.2} s, wall ratio {:.2}   goal: <= 1.0 (issue 31)",
            mp3edge / ffmpeg
        );
    }
    if let Some((label, minutes, (ffmpeg, plugin))) = plugin_alone {
        println!(
            "{label}: the mp3 plugin alone, CPU-s per minute of audio (its WAV, serial): {:.3}, native LAME (ffmpeg) {:.3}, ratio {:.2}   goal: <= 1.4",
            plugin / minutes,
            ffmpeg / minutes,
            plugin / ffmpeg
        );
    }
    if let Some((label, input)) = &longest {
        let (rss, cold_start_rss, media_peak) = run_up_whole(input).await;
        println!("{label}: peak RSS of the whole `mp3edge up` (edge + worker) converting it: {rss:.1} MiB   goal: < 100 MiB");
        println!("        (beside it, its largest media process peaked at {media_peak:.1} MiB, shared program pages included)");
        println!("        (a first start with an empty module cache, from the build's precompiled components, peaks at {cold_start_rss:.1} MiB)");
    }
    if let Some((_, input)) = &longest {
        run_upload_throughput(input, runs).await;
        edge::run(input, runs).await;
    }
}
