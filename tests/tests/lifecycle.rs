//! Storage as a managed resource, through the real host, components, worker and Redis: sources
//! freed when done, `DELETE` (also of a job being converted), retry, retention with several
//! workers, the per-user quota and jobs-in-flight limit, a full store (507), abandoned uploads,
//! and the SQLite key-value file giving its space back. After every path the store holds no
//! `job:` key that no job owns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_tests::fixtures::{good_inputs, long_video};
use e2e_tests::*;
use job_model::lifecycle;
use redis::AsyncCommands;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Every `job:` key in a Redis key-value store.
async fn redis_job_keys(p: &Platform) -> Vec<String> {
    let mut conn = p.redis().connect().await;
    let mut keys: Vec<String> = conn.keys("job:*").await.unwrap();
    // A segmented encode's plan (its segments are `job:` keys).
    let plans: Vec<String> = conn.keys("mp3edge:segments:*").await.unwrap();
    keys.extend(plans);
    keys.sort();
    keys
}

/// Every `job:` key in the SQLite key-value store of `mp3edge up`'s data dir.
fn sqlite_job_keys(p: &Platform) -> Vec<String> {
    let db = rusqlite::Connection::open(sqlite_kv_path(p)).unwrap();
    let mut stmt = db.prepare("SELECT key FROM spin_key_value WHERE key LIKE 'job:%' ORDER BY key").unwrap();
    stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

fn sqlite_kv_path(p: &Platform) -> std::path::PathBuf {
    p.data_dir.path().join("state/sqlite_key_value.db")
}

/// The key-value file with its write-ahead log.
fn sqlite_kv_bytes(p: &Platform) -> u64 {
    let path = sqlite_kv_path(p);
    let wal = path.with_file_name("sqlite_key_value.db-wal");
    std::fs::metadata(&path).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
}

async fn upload_raw(c: &Client, token: &str, data: Vec<u8>, query: &str) -> reqwest::Response {
    let url = c.url(&format!("/upload?filename=clip.mp4{query}"));
    c.http.post(url).bearer_auth(token).header("content-type", "video/mp4").body(data).send().await.unwrap()
}

/// A raw upload without `Content-Length` (chunked), so only the stream tells its size.
async fn upload_streamed(c: &Client, token: &str, data: Vec<u8>) -> reqwest::Response {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let url = c.url("/upload?filename=clip.mp4");
    c.http.post(url).bearer_auth(token).header("content-type", "video/mp4").body(body).send().await.unwrap()
}

async fn job_id(res: reqwest::Response) -> String {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 202, "upload refused: {text}");
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["job_id"].as_str().unwrap().to_string()
}

async fn me(c: &Client, token: &str) -> serde_json::Value {
    let res = c.http.get(c.url("/users/me")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn delete(c: &Client, token: &str, id: &str) -> reqwest::Response {
    c.http.delete(c.url(&format!("/jobs/{id}"))).bearer_auth(token).send().await.unwrap()
}

/// Waits until the worker has finished a final job's bookkeeping (freeing, accounting, the
/// expiry schedule), which follows the converter's `done` or `failed` by a moment.
async fn settled(c: &Client, token: &str, id: &str) {
    wait_until("the worker to finish the job's bookkeeping", Duration::from_secs(10), async || {
        c.job(token, id).await["expires_at"].is_u64()
    })
    .await;
}

fn short_clip() -> (std::path::PathBuf, &'static str) {
    let inputs = good_inputs();
    let (_, fixture) = inputs.into_iter().find(|(name, _)| name.starts_with("mp4")).expect("an mp4 fixture");
    (fixture.path, fixture.content_type)
}

#[tokio::test]
async fn a_done_job_frees_its_source_shows_its_expiry_and_is_swept_after_its_retention() {
    let p = Platform::start_with(PlatformOptions { variables: vars(&[("job_retention_secs", "4")]), ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("keep@example.com").await;
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&token, &clip, content_type, "format=mp3").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    // The source goes once the output is stored (the worker's bookkeeping just after the
    // converter records `done`: `source_freed` and `expires_at` say it is over); the output and
    // record stay until expiry.
    settled(&c, &token, &id).await;
    let keys = sqlite_job_keys(&p);
    assert!(keys.iter().all(|k| !k.contains(":src:")), "source chunks left: {keys:?}");
    assert!(keys.iter().any(|k| k.contains(":out:")), "output stored: {keys:?}");
    let job = c.job(&token, &id).await;
    assert_eq!(job["source_freed"], true);
    let (finished, expires) = (job["finished_at"].as_u64().unwrap(), job["expires_at"].as_u64().unwrap());
    assert_eq!(expires, finished + 4);
    let output_size = job["output"]["size"].as_u64().unwrap();
    assert_eq!(me(&c, &token).await["used_bytes"], output_size, "only the output counts now");

    // Swept: gone from the API, the store and the accounting.
    wait_until("the job expired", Duration::from_secs(20), async || {
        c.http.get(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().status() == 404
    })
    .await;
    wait_until("its keys are gone", Duration::from_secs(10), async || sqlite_job_keys(&p).is_empty()).await;
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
    let list: serde_json::Value = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
    assert!(p.log_has("expired job deleted").await);
}

#[tokio::test]
async fn delete_removes_everything_and_only_for_its_owner() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let owner = c.new_user("owner@example.com").await;
    let other = c.new_user("other@example.com").await;
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&owner, &clip, content_type, "format=wav").await;
    assert_eq!(c.wait_for_job(&owner, &id, JOB_TIMEOUT).await["status"], "done");
    assert!(!redis_job_keys(&p).await.is_empty());

    // Someone else's DELETE is a 404 and deletes nothing.
    error_body(delete(&c, &other, &id).await, 404).await;
    assert_eq!(c.job(&owner, &id).await["status"], "done");
    let res = delete(&c, &owner, &id).await;
    assert_eq!(res.status(), 204);
    error_body(delete(&c, &owner, &id).await, 404).await;
    error_body(c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&owner).send().await.unwrap(), 404).await;
    assert_eq!(redis_job_keys(&p).await, Vec::<String>::new());
    assert_eq!(me(&c, &owner).await["used_bytes"], 0);
    let mut conn = p.redis().connect().await;
    let index: Vec<String> = conn.zrange(lifecycle::index_key("owner@example.com"), 0, -1).await.unwrap();
    assert!(index.is_empty(), "index row left: {index:?}");
    let usage: BTreeMap<String, u64> = conn.hgetall(lifecycle::usage_key("owner@example.com")).await.unwrap();
    assert!(usage.is_empty(), "usage left: {usage:?}");
    let expiry: Vec<String> = conn.zrange(lifecycle::EXPIRY_SET, 0, -1).await.unwrap();
    assert!(expiry.is_empty(), "expiry schedule left: {expiry:?}");
}

#[tokio::test]
async fn delete_while_converting_stops_the_worker_and_leaves_nothing() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("cancel@example.com").await;
    let long = long_video("crash-10min.mp4", 600, "160x120");
    let id = c.upload_file(&token, &long, "video/mp4", "format=mp3").await;
    wait_until("the conversion started", JOB_TIMEOUT, async || {
        let job = c.job(&token, &id).await;
        job["status"] == "converting" && job["progress"].as_u64().unwrap_or(0) >= 5
    })
    .await;
    // Ten minutes encode in segments: the cancel stops every segment task.
    assert!(p.log_has("encoding in segments").await, "{}", p.log());
    assert_eq!(delete(&c, &token, &id).await.status(), 204);
    wait_until("the worker cancelled it", Duration::from_secs(10), async || p.log().contains("cancelled and removed")).await;
    wait_until("nothing is left", Duration::from_secs(10), async || redis_job_keys(&p).await.is_empty()).await;
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
    error_body(delete(&c, &token, &id).await, 404).await;
    // The entry was acknowledged, and the worker goes on converting.
    let mut conn = p.redis().connect().await;
    let pending: redis::streams::StreamPendingReply =
        conn.xpending(job_model::layout::JOB_STREAM, job_model::layout::WORKER_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0);
    let (clip, content_type) = short_clip();
    let next = c.upload_file(&token, &clip, content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &next, JOB_TIMEOUT).await["status"], "done");
}

/// Output chunks of job `id` in the platform's SQLite key-value store.
fn sqlite_output_chunks(p: &Platform, id: &str) -> usize {
    let db = rusqlite::Connection::open(sqlite_kv_path(p)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let count: i64 = db.query_row("SELECT count(*) FROM spin_key_value WHERE key LIKE ?1", [format!("job:{id}:out:%")], |row| row.get(0)).unwrap();
    count as usize
}

#[tokio::test]
async fn deleting_a_large_conversion_stops_its_writing_at_once() {
    // `up` on its own store, as `make up` runs: 30 minutes of video as 192 kHz WAV are 691 MB.
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("big-cancel@example.com").await;
    let long = long_video("cancel-30min.mp4", 1800, "160x120");
    let id = c.upload_file(&token, &long, "video/mp4", "format=wav&rate=192000&channels=2").await;
    wait_until("300 MB are written", JOB_TIMEOUT, async || sqlite_output_chunks(&p, &id) >= 300).await;
    let deleted = Instant::now();
    assert_eq!(delete(&c, &token, &id).await.status(), 204);
    // Writing stops within a second (it took ~30 s), and what it wrote goes.
    let mut most = sqlite_output_chunks(&p, &id);
    let mut grew_at = deleted.elapsed();
    while deleted.elapsed() < Duration::from_secs(10) {
        let now = sqlite_output_chunks(&p, &id);
        if now > most {
            (most, grew_at) = (now, deleted.elapsed());
        }
        if now == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(grew_at < Duration::from_secs(1), "output chunks were still added {grew_at:?} after the DELETE");
    assert!(sqlite_job_keys(&p).is_empty(), "left: {:?}", sqlite_job_keys(&p));
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
}

#[tokio::test]
async fn a_delete_racing_a_redelivery_after_a_worker_crash_leaves_nothing() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("race@example.com").await;
    let mut first = p.start_worker(&["--visibility-timeout-secs", "2"]);
    let long = long_video("crash-10min.mp4", 600, "160x120");
    let id = c.upload_file(&token, &long, "video/mp4", "format=mp3").await;
    wait_until("the conversion started", JOB_TIMEOUT, async || c.job(&token, &id).await["progress"].as_u64().unwrap_or(0) >= 5).await;
    first.kill_hard();
    assert_eq!(delete(&c, &token, &id).await.status(), 204);
    // The crashed worker's partial output is still there until someone cleans up.
    let second = p.start_worker(&["--visibility-timeout-secs", "2"]);
    // What is left, with both workers' logs, if something is (a partial output chunk of the
    // crashed worker was, before the redelivery of a deleted job purged it).
    let started = std::time::Instant::now();
    while let left = redis_job_keys(&p).await
        && !left.is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "left after 20 s: {left:?}\nsecond worker's log:\n{}\nfirst's:\n{}",
            second.log(),
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
    let (clip, content_type) = short_clip();
    let next = c.upload_file(&token, &clip, content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &next, JOB_TIMEOUT).await["status"], "done");
    drop(second);
}

#[tokio::test]
async fn the_quota_is_exact_for_announced_and_streamed_uploads_and_parallel_ones() {
    const QUOTA: usize = 300_000;
    let options = PlatformOptions {
        key_value_on_redis: true,
        no_worker: true,
        variables: vars(&[("user_quota_bytes", &QUOTA.to_string()), ("chunk_size_bytes", "65536")]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("quota@example.com").await;
    assert_eq!(me(&c, &token).await["quota_bytes"], QUOTA);

    // Exactly the quota fits; one byte more does not, from the headers or from the stream.
    let fits = job_id(upload_raw(&c, &token, sample_bytes(QUOTA), "").await).await;
    assert_eq!(me(&c, &token).await["used_bytes"], QUOTA);
    let over = error_body(upload_raw(&c, &token, sample_bytes(1), "").await, 413).await;
    assert_eq!(over["error"], "quota_exceeded", "{over}");
    assert!(over["detail"].as_str().unwrap().contains("KiB"), "human units: {over}");
    error_body(upload_streamed(&c, &token, sample_bytes(1)).await, 413).await;
    let keys = redis_job_keys(&p).await;
    assert_eq!(keys.len(), 1 + QUOTA.div_ceil(65536), "only the accepted job's keys: {keys:?}");

    assert_eq!(delete(&c, &token, &fits).await.status(), 204);
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
    for body in [upload_raw(&c, &token, sample_bytes(QUOTA + 1), "").await, upload_streamed(&c, &token, sample_bytes(QUOTA + 1)).await] {
        assert_eq!(error_body(body, 413).await["error"], "quota_exceeded");
    }
    assert_eq!(redis_job_keys(&p).await, Vec::<String>::new());
    let streamed = job_id(upload_streamed(&c, &token, sample_bytes(QUOTA)).await).await;
    assert_eq!(delete(&c, &token, &streamed).await.status(), 204);

    // Parallel uploads cannot exceed it together, and do not starve each other: of four uploads
    // of 40 % each, announced or streamed (sizes unknown until they end), the two that fit are
    // accepted (streamed ones that fill the quota side by side: the last started gives way).
    let part = QUOTA * 2 / 5;
    for streamed in [false, true] {
        let uploads = (0..4).map(|_| async {
            if streamed { upload_streamed(&c, &token, sample_bytes(part)).await } else { upload_raw(&c, &token, sample_bytes(part), "").await }
        });
        let mut accepted = Vec::new();
        for res in futures::future::join_all(uploads).await {
            match res.status().as_u16() {
                202 => accepted.push(job_id(res).await),
                413 => assert_eq!(error_body(res, 413).await["error"], "quota_exceeded"),
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(accepted.len(), 2, "streamed: {streamed}");
        assert_eq!(me(&c, &token).await["used_bytes"], (accepted.len() * part) as u64);
        for id in accepted {
            assert_eq!(delete(&c, &token, &id).await.status(), 204);
        }
        assert_eq!(redis_job_keys(&p).await, Vec::<String>::new());
    }
}

#[tokio::test]
async fn jobs_in_flight_are_limited_per_user() {
    let options = PlatformOptions { key_value_on_redis: true, no_worker: true, variables: vars(&[("user_max_active_jobs", "2")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("busy@example.com").await;
    let other = c.new_user("calm@example.com").await;
    let first = job_id(upload_raw(&c, &token, sample_bytes(1000), "").await).await;
    job_id(upload_raw(&c, &token, sample_bytes(1000), "").await).await;
    let res = upload_raw(&c, &token, sample_bytes(1000), "").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(error_body(res, 429).await["error"], "too many jobs");
    // Another user is not affected; a deleted job frees a place.
    job_id(upload_raw(&c, &other, sample_bytes(1000), "").await).await;
    assert_eq!(delete(&c, &token, &first).await.status(), 204);
    job_id(upload_raw(&c, &token, sample_bytes(1000), "").await).await;
}

#[tokio::test]
async fn a_failed_job_keeps_its_source_for_a_retry_with_other_options() {
    // A 320 kbps mp3 of the clip is over the per-job output cap; 32 kbps is not.
    let options = PlatformOptions { key_value_on_redis: true, variables: vars(&[("max_output_bytes", "40000")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("retry@example.com").await;
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&token, &clip, content_type, "format=mp3&bitrate=320").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["retryable"], true, "other options can help: {job}");
    let error = job["error"].as_str().unwrap();
    // Known before a byte is written: two seconds at a constant 320 kbps are 80,000 bytes.
    assert_eq!(error, "the output would take at least 78.1 KiB (2 s of mp3 at 44100 Hz, 2 channels), more than the limit of 39.1 KiB per job");
    // The source is kept (and counted); the partial output is gone.
    settled(&c, &token, &id).await;
    let keys = redis_job_keys(&p).await;
    assert!(keys.iter().any(|k| k.contains(":src:")) && !keys.iter().any(|k| k.contains(":out:")), "{keys:?}");
    let source_size = job["source"]["size"].as_u64().unwrap();
    assert_eq!(me(&c, &token).await["used_bytes"], source_size);

    let res = c.http.post(c.url(&format!("/jobs/{id}/retry?bitrate=32"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["options"]["bitrate_kbps"], 32);
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["retryable"], false, "a done job: {job}");
    settled(&c, &token, &id).await;
    // Done: the source is freed, and a done job cannot be retried.
    let res = c.http.post(c.url(&format!("/jobs/{id}/retry"))).bearer_auth(&token).send().await.unwrap();
    error_body(res, 409).await;
    let keys = redis_job_keys(&p).await;
    assert!(!keys.iter().any(|k| k.contains(":src:")), "{keys:?}");
    assert_eq!(me(&c, &token).await["used_bytes"], job["output"]["size"]);
}

#[tokio::test]
async fn an_output_that_would_pass_the_quota_fails_the_job_and_is_removed() {
    // Ten seconds of 48 kHz stereo WAV are ~1.9 MB; the quota leaves room for the source only.
    let options = PlatformOptions { key_value_on_redis: true, variables: vars(&[("user_quota_bytes", "600000")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("amplify@example.com").await;
    let clip = long_video("lifecycle-amplify.mp4", 10, "160x120");
    let id = c.upload_file(&token, &clip, "video/mp4", "format=wav").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("storage quota"), "{job}");
    settled(&c, &token, &id).await;
    let keys = redis_job_keys(&p).await;
    assert!(!keys.iter().any(|k| k.contains(":out:")), "partial output left: {keys:?}");
    assert_eq!(me(&c, &token).await["used_bytes"], job["source"]["size"]);
}

#[tokio::test]
async fn audio_longer_than_the_per_job_limit_fails_with_a_reason() {
    let options = PlatformOptions { key_value_on_redis: true, variables: vars(&[("max_duration_secs", "3")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("long@example.com").await;
    let clip = long_video("lifecycle-amplify.mp4", 10, "160x120");
    let id = c.upload_file(&token, &clip, "video/mp4", "format=wav").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("longer than the limit of 3 seconds"), "{job}");
    assert_eq!(job["attempts"], 1, "a permanent failure");
    settled(&c, &token, &id).await;
    let keys = redis_job_keys(&p).await;
    assert!(!keys.iter().any(|k| k.contains(":out:")), "{keys:?}");
}

#[tokio::test]
async fn a_full_store_answers_507_and_keeps_nothing_of_the_upload() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("full@example.com").await;
    let mut conn = p.redis().connect().await;
    let used: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap();
    let used: u64 = used.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used + (4 << 20)).query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").query_async(&mut conn).await.unwrap();
    for res in [upload_raw(&c, &token, sample_bytes(12 << 20), "").await, upload_streamed(&c, &token, sample_bytes(12 << 20)).await] {
        let body = error_body(res, 507).await;
        assert_eq!(body["error"], "storage full");
    }
    assert_eq!(redis_job_keys(&p).await, Vec::<String>::new());
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query_async(&mut conn).await.unwrap();
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
    job_id(upload_raw(&c, &token, sample_bytes(12 << 20), "").await).await;
}

/// Starts a raw upload of `total` bytes, sends `sent` of them and returns the open connection.
async fn partial_upload(p: &Platform, token: &str, total: usize, sent: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = p.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /upload?filename=a.mp4 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: video/mp4\r\ncontent-length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&sample_bytes(sent)).await.unwrap();
    stream
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("gone@example.com").await;
    let stream = partial_upload(&p, &token, 10 << 20, 3 << 20).await;
    wait_until("chunks were stored", Duration::from_secs(10), async || redis_job_keys(&p).await.len() >= 2).await;
    drop(stream);
    wait_until("the upload's chunks are gone", Duration::from_secs(10), async || redis_job_keys(&p).await.is_empty()).await;
    wait_until("its accounting is gone", Duration::from_secs(10), async || me(&c, &token).await["used_bytes"] == 0).await;
}

#[tokio::test]
async fn a_stalled_upload_is_removed_by_the_sweeper() {
    let options = PlatformOptions { key_value_on_redis: true, variables: vars(&[("upload_stale_secs", "2")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("stall@example.com").await;
    // Three chunks' worth sent, then nothing: the connection stays open.
    let stream = partial_upload(&p, &token, 10 << 20, 3 << 20).await;
    wait_until("chunks were stored", Duration::from_secs(10), async || redis_job_keys(&p).await.len() >= 2).await;
    wait_until("the sweeper removed them", Duration::from_secs(20), async || redis_job_keys(&p).await.is_empty()).await;
    wait_until("its accounting is gone", Duration::from_secs(10), async || me(&c, &token).await["used_bytes"] == 0).await;
    assert!(p.log_has("abandoned upload removed").await);
    drop(stream);
}

#[tokio::test]
async fn expiry_with_two_workers_sweeps_each_job_once_across_a_restart() {
    let options = PlatformOptions { key_value_on_redis: true, no_worker: true, variables: vars(&[("job_retention_secs", "3")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("sweep@example.com").await;
    let a = p.start_worker(&[]);
    let mut b = p.start_worker(&[]);
    let (clip, content_type) = short_clip();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(c.upload_file(&token, &clip, content_type, "format=wav").await);
    }
    for id in &ids {
        assert_eq!(c.wait_for_job(&token, id, JOB_TIMEOUT).await["status"], "done");
    }
    // One worker restarts while the jobs wait for their expiry.
    b.stop(Duration::from_secs(20));
    let b2 = p.start_worker(&[]);
    wait_until("every job swept", Duration::from_secs(30), async || redis_job_keys(&p).await.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = [a.log(), b.log(), b2.log()].concat();
    for id in &ids {
        let sweeps = logs.lines().filter(|l| l.contains("expired job deleted") && l.contains(id.as_str())).count();
        assert_eq!(sweeps, 1, "job {id} swept {sweeps} times");
    }
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
}

#[tokio::test]
async fn the_sqlite_key_value_file_shrinks_back_after_20_mixed_uploads() {
    let options = PlatformOptions { variables: vars(&[("job_retention_secs", "2"), ("max_upload_bytes", "3000000")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("mixed@example.com").await;
    let (clip, content_type) = short_clip();
    wait_until("the store exists", Duration::from_secs(10), async || sqlite_kv_path(&p).exists()).await;
    let start = sqlite_kv_bytes(&p);
    let mut peak = start;
    let mut done = Vec::new();
    for n in 0..20 {
        match n % 4 {
            // Converted, then expired.
            0 => done.push(c.upload_file(&token, &clip, content_type, "format=wav").await),
            // Refused: over the size limit, streamed.
            1 => {
                error_body(upload_streamed(&c, &token, sample_bytes(4_000_000)).await, 413).await;
            }
            // Failed (not a media file), then deleted.
            2 => {
                let id = job_id(upload_raw(&c, &token, sample_bytes(2_500_000), "").await).await;
                assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "failed");
                peak = peak.max(sqlite_kv_bytes(&p));
                assert_eq!(delete(&c, &token, &id).await.status(), 204);
            }
            // Deleted right away, whatever it was doing.
            _ => {
                let id = job_id(upload_raw(&c, &token, sample_bytes(2_000_000), "").await).await;
                assert_eq!(delete(&c, &token, &id).await.status(), 204);
            }
        }
        peak = peak.max(sqlite_kv_bytes(&p));
    }
    wait_until("everything expired or was removed", Duration::from_secs(30), async || sqlite_job_keys(&p).is_empty()).await;
    let shrank = async || sqlite_kv_bytes(&p) < start + (1 << 20);
    let started = Instant::now();
    while !shrank().await && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wal = sqlite_kv_path(&p).with_file_name("sqlite_key_value.db-wal");
    assert!(
        shrank().await,
        "the file did not shrink: {start} bytes at start, {peak} at peak, now {} + {} (wal)",
        std::fs::metadata(sqlite_kv_path(&p)).map_or(0, |m| m.len()),
        std::fs::metadata(wal).map_or(0, |m| m.len())
    );
    let end = sqlite_kv_bytes(&p);
    println!("key-value file: {start} bytes at start, {peak} at peak, {end} at the end");
    assert!(peak > start + (2 << 20), "the run stored something ({peak} vs {start})");
    assert_eq!(me(&c, &token).await["used_bytes"], 0);
}

#[tokio::test]
async fn a_file_that_is_not_media_fails_for_good_and_is_not_offered_for_retry() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("unusable@example.com").await;
    let id = job_id(upload_raw(&c, &token, sample_bytes(5000), "").await).await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["source_unusable"], true, "{job}");
    assert_eq!(job["retryable"], false, "{job}");
    let listed: Vec<serde_json::Value> =
        c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["retryable"], false, "{listed:?}");
    // Neither as it was nor with other options.
    for query in ["", "?format=wav"] {
        let res = c.http.post(c.url(&format!("/jobs/{id}/retry{query}"))).bearer_auth(&token).send().await.unwrap();
        let body = error_body(res, 409).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with("the file itself cannot be converted ("), "{body}");
        assert!(detail.ends_with("); no retry can change that"), "{body}");
    }
    // A track that does not exist is the options' fault: a retry with another one converts.
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&token, &clip, content_type, "track=5").await;
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["retryable"], true, "{job}");
    assert!(job.get("source_unusable").is_none(), "{job}");
    let res = c.http.post(c.url(&format!("/jobs/{id}/retry?track=0"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
}

/// Every key of the job queue's Redis that names `owner` or one of `jobs`.
async fn keys_of(p: &Platform, owner: &str, jobs: &[String]) -> Vec<String> {
    let mut conn = p.redis().connect().await;
    let all: Vec<String> = conn.keys("*").await.unwrap();
    all.into_iter().filter(|k| k.contains(owner) || jobs.iter().any(|id| k.contains(id.as_str()))).collect()
}

#[tokio::test]
async fn an_administrator_deletes_a_user_with_everything_they_hold() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    let email = "leaving@example.com";
    let token = c.new_user(email).await;
    let (clip, content_type) = short_clip();
    let done = c.upload_file(&token, &clip, content_type, "").await;
    assert_eq!(c.wait_for_job(&token, &done, JOB_TIMEOUT).await["status"], "done");
    // A failed job keeps its source; an unfinished resumable upload holds its first bytes.
    let failed = c.upload_file(&token, &clip, content_type, "track=5").await;
    assert_eq!(c.wait_for_job(&token, &failed, JOB_TIMEOUT).await["status"], "failed");
    settled(&c, &token, &done).await;
    settled(&c, &token, &failed).await;
    let res = c
        .http
        .post(c.url("/uploads"))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "100000")
        .header("upload-metadata", "filename Y2xpcC5tcDQ=")
        .header("content-type", "application/offset+octet-stream")
        .body(sample_bytes(40000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let uploading = res.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let preset = c.http.put(c.url("/users/me/presets/talks")).bearer_auth(&token).json(&serde_json::json!({"params": {"format": "flac"}}));
    assert_eq!(preset.send().await.unwrap().status(), 200);
    let jobs = vec![done.clone(), failed.clone(), uploading.clone()];

    let users: Vec<serde_json::Value> = c.http.get(c.url("/users")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let listed = users.iter().find(|u| u["email"] == email).unwrap();
    assert_eq!(listed["used_bytes"], me(&c, &token).await["used_bytes"]);
    assert!(listed["used_bytes"].as_u64().unwrap() > 40000, "{listed}");
    assert_eq!(listed["locked"], false);
    assert!(!redis_job_keys(&p).await.is_empty());

    // Not without administrator rights, not oneself, not someone unknown.
    let user_url = |who: &str| c.url(&format!("/users/{}", who.replace('@', "%40")));
    error_body(c.http.delete(user_url(email)).send().await.unwrap(), 401).await;
    error_body(c.http.delete(user_url(email)).bearer_auth(&token).send().await.unwrap(), 403).await;
    let own = error_body(c.http.delete(user_url(ADMIN_EMAIL)).bearer_auth(&admin).send().await.unwrap(), 409).await;
    assert_eq!(own["detail"], "you cannot delete your own account; another administrator can");
    let unknown = error_body(c.http.delete(user_url("nobody@example.com")).bearer_auth(&admin).send().await.unwrap(), 404).await;
    assert_eq!(unknown["detail"], "no user nobody@example.com");

    // Ten at once: one deletes, the others find no such user.
    let deletes = (0..10).map(|_| c.http.delete(user_url(email)).bearer_auth(&admin).send());
    let mut statuses: Vec<u16> = futures::future::join_all(deletes).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [204, 404, 404, 404, 404, 404, 404, 404, 404, 404]);

    // Their sessions end at once; everything they held is gone within seconds.
    error_body(c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap(), 401).await;
    let users: Vec<serde_json::Value> = c.http.get(c.url("/users")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(users.iter().all(|u| u["email"] != email), "{users:?}");
    wait_until("the deleted user's jobs and accounting to be gone", Duration::from_secs(30), async || {
        redis_job_keys(&p).await.is_empty() && keys_of(&p, email, &jobs).await.iter().all(|k| k.starts_with("mp3edge:cancelled:"))
    })
    .await;

    // The address registered again is a new account: the old token opens nothing, and nothing
    // of the old one (jobs, presets) comes back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = c.new_user(email).await;
    error_body(c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap(), 401).await;
    let listed: Vec<serde_json::Value> = c.http.get(c.url("/jobs")).bearer_auth(&fresh).send().await.unwrap().json().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let presets: Vec<serde_json::Value> =
        c.http.get(c.url("/users/me/presets")).bearer_auth(&fresh).send().await.unwrap().json().await.unwrap();
    assert!(presets.is_empty(), "{presets:?}");
    assert_eq!(me(&c, &fresh).await["used_bytes"], 0);
}
