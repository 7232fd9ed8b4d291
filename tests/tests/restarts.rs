//! A conversion survives restarts of `mp3edge up` at any moment: SIGTERM (the worker interrupts
//! what it converts after its grace period and puts it back on the queue) and SIGKILL (the
//! entry is reclaimed after the visibility timeout), ten times at random points of a long
//! conversion. No job is lost or dead-lettered, interrupted attempts do not count as failed
//! ones, and the output is whole.

use std::time::{Duration, Instant};

use e2e_tests::fixtures::long_video;
use e2e_tests::*;

/// A small xorshift generator: the test prints its seed, so a failing order can be replayed
/// (`RESTART_SEED=…`).
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = std::env::var("RESTART_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("RESTART_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
async fn a_long_conversion_survives_ten_restarts_at_random_moments() {
    let options = PlatformOptions {
        // Reclaimed 5 s after a SIGKILL instead of a minute; interrupted 1 s after a SIGTERM.
        args: ["--visibility-timeout-secs", "5", "--shutdown-grace-secs", "1"].iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("restarts@example.com").await;
    // Twenty minutes of video: a conversion of several seconds, long enough to be cut.
    let video = long_video("restarts-20min.mp4", 1200, "160x120");
    let id = c.upload_file(&token, &video, "video/mp4", "format=mp3").await;
    let mut random = Random::seeded();
    let mut interrupted_while_converting = 0;
    for restart in 0..10 {
        // A random moment: up to 4 s into this start (the job may still be queued, loading or
        // well into its encode).
        tokio::time::sleep(Duration::from_millis(200 + random.below(3800))).await;
        let job = Client::new(&p).job(&token, &id).await;
        if job["status"] == "converting" {
            interrupted_while_converting += 1;
        }
        let hard = random.below(2) == 0;
        eprintln!("restart {restart}: {} while the job is {} at {}%", if hard { "SIGKILL" } else { "SIGTERM" }, job["status"], job["progress"]);
        if hard {
            p.kill_hard();
        } else {
            assert!(p.stop().is_some_and(|status| status.success()), "up stopped within its grace period:\n{}", p.log());
        }
        p.restart().unwrap();
    }
    let c = Client::new(&p);
    let started = Instant::now();
    let job = c.wait_for_job(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "done", "{job}\n{}", p.log());
    eprintln!("done {:?} after the last restart; attempts {}, interrupted {}", started.elapsed(), job["attempts"], job["interrupted"]);
    assert!(interrupted_while_converting > 0, "no restart landed while the job converted: the test proved nothing");
    // Every attempt but the last was interrupted: none counted as a failure.
    let attempts = job["attempts"].as_u64().unwrap();
    let interrupted = job["interrupted"].as_u64().unwrap_or(0);
    assert_eq!(attempts - interrupted, 1, "{job}");
    // The output is whole: twenty minutes (to within the source's last AAC frame of 1024), as
    // its info frame says.
    let (_, mp3) = c.download(&token, &id).await;
    let decoded = e2e_tests::audio::decode_mp3(&mp3);
    let exact = decoded.exact_frames.expect("an info frame") as i64;
    assert!((exact - 1200 * 44100).abs() <= 1024, "{decoded:?}");
    // Nothing was dead-lettered.
    let mut redis = p.redis().connect().await;
    let dead: u64 = redis::AsyncCommands::xlen(&mut redis, job_model::layout::DEAD_LETTER_STREAM).await.unwrap();
    assert_eq!(dead, 0);
}
