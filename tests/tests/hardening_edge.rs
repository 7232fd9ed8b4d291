//! Issue 27's findings against the edge and the notifications, each as the attack it was,
//! through the real host, components, worker and Redis, now refused with a clear error and
//! nothing lost or left behind: a webhook host that IDNA turns into a loopback name, parallel
//! retries of one failed job and an attempt gone stale, a deactivated owner's links and open
//! event streams, parallel uploads near the quota, tags with controls and bidi overrides, a
//! `DELETE` that fails half-way and dead letters that outlived their job. (Log-in failures from
//! many addresses and password-change guessing extend `hardening_auth`.)

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use futures::future::join_all;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use job_model::{layout, lifecycle};
use redis::AsyncCommands;
use serde_json::json;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const WEBHOOK_SECRET: &str = "edge-webhook-secret";

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn short_clip() -> (std::path::PathBuf, &'static str) {
    let (_, fixture) = good_inputs().into_iter().find(|(name, _)| name.starts_with("mp4")).expect("an mp4 fixture");
    (fixture.path, fixture.content_type)
}

/// Waits until the job record lists `count` notification attempts; returns them.
async fn notifications(c: &Client, token: &str, id: &str, count: usize) -> Vec<serde_json::Value> {
    let mut list = Vec::new();
    wait_until(&format!("{count} notification attempts of {id}"), JOB_TIMEOUT, async || {
        list = c.job(token, id).await["notifications"].as_array().cloned().unwrap_or_default();
        list.len() >= count
    })
    .await;
    list
}

/// What a webhook receiver saw: (signature valid, event body).
type Seen = Arc<Mutex<Vec<(bool, serde_json::Value)>>>;

/// A real HTTP receiver on 127.0.0.1 that checks signatures and answers 200.
async fn start_receiver() -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let (timestamp, signature) = (header("mp3edge-timestamp"), header("mp3edge-signature"));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
                        mac.update(format!("{timestamp}.").as_bytes());
                        mac.update(&body);
                        let valid = signature == format!("v1={}", hex::encode(mac.finalize().into_bytes()));
                        record.lock().unwrap().push((valid, serde_json::from_slice(&body).unwrap_or_default()));
                        Ok::<_, Infallible>(hyper::Response::builder().status(200).body(Full::new(Bytes::new())).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    (port, seen)
}

/// The webhook SSRF through IDNA, with real DNS answers. The worker runs in a mount namespace
/// whose `/etc/resolv.conf` names a DNS server of this test, which answers as the attacker's
/// zone did: `bücher.test` (the UTF-8 bytes, as a resolver asked for the Unicode name sends
/// them) with a public address, its ASCII form `xn--bcher-kva.test` (what an HTTP client
/// connects to) with 127.0.0.1. Real DNS rather than a hook in the worker: the lookup, the check
/// and the pinned connection are the production code, unchanged, and the server's log shows
/// which name the worker asked for. A second job to `café.test`, allow-listed in its Unicode
/// spelling, reaches the receiver on 127.0.0.1: the control that shows the test's DNS is the
/// one the worker uses and that the allow-list is read in the same ASCII form.
///
/// The old worker resolved and checked the Unicode name and pinned it, while the HTTP client
/// connected to the ASCII one through the system resolver: where the resolver sends UTF-8
/// labels as they are, the signed event reached 127.0.0.1 and the job recorded "HTTP 200";
/// glibc (this platform's) refuses to look such a name up, so there the lookup failed and was
/// retried with the error text recorded. Either way the name checked was not the name
/// connected to, which the first assertion below catches.
#[tokio::test]
async fn an_idna_webhook_host_is_checked_and_pinned_in_the_form_that_is_connected_to() {
    let (port, seen) = start_receiver().await;
    let public = Ipv4Addr::new(93, 184, 216, 34);
    let dns = TestDns::start(vec![
        ("bücher.test".as_bytes().to_vec(), public),
        (b"xn--bcher-kva.test".to_vec(), Ipv4Addr::LOCALHOST),
        ("café.test".as_bytes().to_vec(), public),
        (b"xn--caf-dma.test".to_vec(), Ipv4Addr::LOCALHOST),
    ])
    .await
    .unwrap();
    let mut options = PlatformOptions {
        key_value_on_redis: true,
        resolv_conf: Some(dns.resolv_conf.path().to_path_buf()),
        variables: vars(&[("webhook_allowed_hosts", &format!("café.test:{port}"))]),
        ..Default::default()
    };
    options.env.push(("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("idna@example.com").await;
    let (clip, content_type) = short_clip();

    // The gateway reads hosts the same way: IPv4 in the forms the URL standard accepts is the
    // address it spells, and is refused at upload.
    for sneaky in ["http://0x7f.1:9000/x", "http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1:9000/x", "http://2130706433:9000/x"] {
        let url = c.url(&format!("/upload?filename=a.mp4&callback={}", sneaky.replace(':', "%3A").replace('/', "%2F")));
        let res = c.http.post(url).bearer_auth(&token).header("content-type", "video/mp4").body(vec![0u8; 16]).send().await.unwrap();
        assert_eq!(error_body(res, 400).await["error"], "invalid callback", "{sneaky}");
    }

    let attack = c.upload_file(&token, &clip, content_type, &format!("callback=http://b%C3%BCcher.test:{port}/hook")).await;
    let control = c.upload_file(&token, &clip, content_type, &format!("callback=http://caf%C3%A9.test:{port}/hook")).await;
    for id in [&attack, &control] {
        assert_eq!(c.wait_for_job(&token, id, JOB_TIMEOUT).await["status"], "done");
    }
    let refused = notifications(&c, &token, &attack, 1).await;
    let delivered = notifications(&c, &token, &control, 1).await;
    // The worker looked up the ASCII names, the ones connected to; the Unicode ones never.
    let asked = dns.asked();
    let names: Vec<String> = asked.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    assert!(names.iter().any(|n| n == "xn--bcher-kva.test"), "the name connected to was never checked: {names:?}\n{refused:?}");
    assert!(names.iter().any(|n| n == "xn--caf-dma.test"), "{names:?}");
    assert!(asked.iter().all(|n| n.is_ascii()), "a Unicode name was looked up: {names:?}");
    // Settle: a refused delivery is not retried, so one attempt stays one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused_now = c.job(&token, &attack).await["notifications"].clone();
    assert_eq!(refused_now.as_array().map(Vec::len), Some(1), "a refusal is final: {refused_now}");
    assert_eq!((refused[0]["channel"].as_str(), refused[0]["ok"].as_bool()), (Some("webhook"), Some(false)), "{refused:?}");
    assert_eq!(refused[0]["detail"], "refused", "a refusal says only that: {refused:?}");
    assert_eq!((delivered[0]["ok"].as_bool(), delivered[0]["detail"].as_str()), (Some(true), Some("HTTP 200")), "{delivered:?}");

    // The loopback receiver got exactly the allow-listed job's event, signed.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].0, "signature verifies");
    assert_eq!(seen[0].1["job_id"], control.as_str());
}

/// Every `job:` key in a Redis key-value store.
async fn redis_job_keys(p: &Platform) -> Vec<String> {
    let mut conn = p.redis().connect().await;
    let mut keys: Vec<String> = conn.keys("job:*").await.unwrap();
    keys.sort();
    keys
}

/// Tags with a C1 control (`U+0085`, which `trim` used to take for a space) or a bidi override
/// (`U+202E`, which makes a file name read backwards in a player) are refused at upload with a
/// 400 that names the character and where it stands; nothing is stored or counted.
#[tokio::test]
async fn tags_with_controls_or_bidi_overrides_are_refused_at_upload() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("tags@example.com").await;
    for (query, error, detail) in [
        ("title=%C2%85Talk", "invalid title", "title must not contain control or bidirectional formatting characters: U+0085 (next line) at character 1"),
        ("artist=Talk%C2%85", "invalid artist", "artist must not contain control or bidirectional formatting characters: U+0085 (next line) at character 5"),
        ("album=abc%E2%80%AEfdp.exe", "invalid album", "album must not contain control or bidirectional formatting characters: U+202E (right-to-left override) at character 4"),
        ("title=a%E2%81%A6b", "invalid title", "title must not contain control or bidirectional formatting characters: U+2066 (bidirectional isolate) at character 2"),
        ("title=a%C2%9Bb", "invalid title", "title must not contain control or bidirectional formatting characters: U+009B at character 2"),
    ] {
        let url = c.url(&format!("/upload?filename=a.mp4&{query}"));
        let res = c.http.post(url).bearer_auth(&token).header("content-type", "video/mp4").body(vec![0u8; 1000]).send().await.unwrap();
        let body = error_body(res, 400).await;
        assert_eq!((body["error"].as_str(), body["detail"].as_str()), (Some(error), Some(detail)), "{query}");
    }
    // What people write still goes through: accents, other scripts, emoji with a joiner.
    let url = c.url("/upload?filename=a.mp4&title=Caf%C3%A9%20M%C3%BCller&artist=%F0%9F%91%A9%E2%80%8D%F0%9F%92%BB");
    let res = c.http.post(url).bearer_auth(&token).header("content-type", "video/mp4").body(vec![0u8; 1000]).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let jobs: Vec<serde_json::Value> = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(jobs.len(), 1, "only the good upload is a job: {jobs:?}");
    assert_eq!((jobs[0]["options"]["title"].as_str(), jobs[0]["options"]["artist"].as_str()), (Some("Café Müller"), Some("👩\u{200d}💻")));
    let id = jobs[0]["id"].as_str().unwrap();
    assert_eq!(redis_job_keys(&p).await, [format!("job:{id}"), format!("job:{id}:src:000000")], "only the good upload's keys");
}

/// A platform that signs webhooks and may call `127.0.0.1:port`, with extra variables.
fn webhook_options(port: u16, variables: &[(&str, &str)]) -> PlatformOptions {
    let mut options = PlatformOptions { key_value_on_redis: true, variables: vars(variables), ..Default::default() };
    // As a variable for the edge, and in the environment of workers started beside `up`.
    options.variables.insert("webhook_allowed_hosts".into(), format!("127.0.0.1:{port}"));
    options.env.push(("SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS".into(), format!("127.0.0.1:{port}")));
    options.env.push(("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    options
}

/// The events a receiver saw once `count` arrived and nothing more came for two seconds
/// (webhooks are sent in the background after the job's record is final).
async fn settled_events(seen: &Seen, count: usize) -> Vec<serde_json::Value> {
    wait_until(&format!("{count} webhook events"), JOB_TIMEOUT, async || seen.lock().unwrap().len() >= count).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(valid, _)| *valid), "every event is signed: {seen:?}");
    seen.into_iter().map(|(_, event)| event).collect()
}

/// Ten parallel `POST /jobs/{id}/retry` of one failed job: the run they would start is claimed
/// in one Redis script, so exactly one is accepted and nine are 409 `{error, detail}`; one
/// conversion runs, the job ends `done` with its whole output downloadable, and the receiver
/// gets one terminal event per run: the upload's `job.failed`, the retry's `job.done`. Before,
/// up to 5 of 8–12 were accepted, two conversions overlapped, the loser's clean-up deleted
/// the winner's output (`done` with an empty download) and both events went out.
#[tokio::test]
async fn parallel_retries_of_a_failed_job_start_exactly_one_run() {
    let (port, seen) = start_receiver().await;
    // A 320 kbps mp3 of the clip is over the per-job output cap; 32 kbps is not.
    let p = Platform::start_with(webhook_options(port, &[("max_output_bytes", "40000")])).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("retry@example.com").await;
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&token, &clip, content_type, &format!("format=mp3&bitrate=320&callback=http://127.0.0.1:{port}/hook")).await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "failed");
    wait_until("the failure's event", JOB_TIMEOUT, async || seen.lock().unwrap().len() == 1).await;

    let retries = (0..10).map(|_| c.http.post(c.url(&format!("/jobs/{id}/retry?bitrate=32"))).bearer_auth(&token).send());
    let mut accepted = 0;
    for res in join_all(retries).await {
        let res = res.unwrap();
        if res.status() == 202 {
            accepted += 1;
            continue;
        }
        let body = error_body(res, 409).await;
        assert_eq!(body["error"], "cannot retry", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("another retry of this job was accepted") || detail.contains("only failed jobs can be retried"), "{body}");
    }
    assert_eq!(accepted, 1, "exactly one retry is accepted");

    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!((job["run"].as_u64(), job["attempts"].as_u64(), job["options"]["bitrate_kbps"].as_u64()), (Some(1), Some(1), Some(32)), "{job}");
    let (_, audio) = c.download(&token, &id).await;
    assert_eq!(audio.len() as u64, job["output"]["size"].as_u64().unwrap(), "the whole output is served");
    assert!(audio.len() > 1000);
    let events = settled_events(&seen, 2).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["job.failed", "job.done"], "one terminal event per run: {events:?}");
    assert!(events.iter().all(|e| e["job_id"] == id.as_str()));
    // One conversion ran: the log of `up` has one finished conversion of the retry.
    let log = p.log();
    assert_eq!(log.lines().filter(|l| l.contains("conversion done") && l.contains(id.as_str())).count(), 1, "{log}");
    // Nothing of the upload is left: the record and the output, counted once.
    let keys = redis_job_keys(&p).await;
    assert!(keys.iter().all(|k| k == &format!("job:{id}") || k.starts_with(&format!("job:{id}:out:"))), "{keys:?}");
    let me: serde_json::Value = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["used_bytes"], job["output"]["size"]);
}

/// Two deliveries of one job started together (what a worker taken for dead and the one that
/// reclaims its entry amount to): their attempts are numbered in one Redis script, only the
/// newer owns the job, and the older one neither writes the record, frees the output nor
/// notifies. One `job.done`, a whole output; before, both converted and both notified (or
/// the loser failed on a source the winner had freed and deleted the winner's output).
#[tokio::test]
async fn a_stale_attempt_leaves_the_newer_attempts_work_alone() {
    let (port, seen) = start_receiver().await;
    let mut options = webhook_options(port, &[]);
    options.no_worker = true;
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("stale@example.com").await;
    let clip = e2e_tests::fixtures::long_video("edge-stale-40s.mp4", 40, "160x120");
    let id = c.upload_file(&token, &clip, "video/mp4", &format!("format=mp3&callback=http://127.0.0.1:{port}/hook")).await;
    // The same job queued twice before any worker runs: a worker with two slots takes both.
    let mut conn = p.redis().connect().await;
    let message = serde_json::to_vec(&json!({ "job_id": id })).unwrap();
    let _: String = conn.xadd(layout::JOB_STREAM, "*", &[(layout::JOB_STREAM_FIELD, message.as_slice())]).await.unwrap();
    let worker = p.start_worker(&["--concurrency", "2", "--segment-threads", "1"]);

    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    let events = settled_events(&seen, 1).await;
    assert_eq!(events.len(), 1, "one terminal event: {events:?}");
    assert_eq!(events[0]["type"], "job.done");
    let log = worker.log();
    assert!(log.contains("a newer attempt owns the job"), "the two deliveries did not overlap:\n{log}");
    assert_eq!(log.lines().filter(|l| l.contains("conversion done")).count(), 1, "{log}");
    let job = c.job(&token, &id).await;
    let (_, audio) = c.download(&token, &id).await;
    assert_eq!(audio.len() as u64, job["output"]["size"].as_u64().unwrap());
    let duration = job["output"]["duration_secs"].as_f64().unwrap();
    assert!((duration - 40.0).abs() < 0.1, "the whole audio: {duration}");
    let keys = redis_job_keys(&p).await;
    assert!(keys.iter().all(|k| k == &format!("job:{id}") || k.starts_with(&format!("job:{id}:out:"))), "{keys:?}");
    // Both entries were acknowledged.
    let pending: redis::streams::StreamPendingReply = conn.xpending(layout::JOB_STREAM, layout::WORKER_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0);
}

/// Every `job:` key in the SQLite key-value store of `mp3edge up`'s data dir.
fn sqlite_job_keys(p: &Platform) -> Vec<String> {
    let db = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_key_value.db")).unwrap();
    let mut stmt = db.prepare("SELECT key FROM spin_key_value WHERE key LIKE 'job:%' ORDER BY key").unwrap();
    stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

/// What Redis still counts for a job: its usage fields, index entry, expiry entry, run,
/// attempt and dead-letter keys.
async fn redis_traces(p: &Platform, owner: &str, id: &str) -> Vec<String> {
    let mut conn = p.redis().connect().await;
    let mut traces = Vec::new();
    let usage: BTreeMap<String, u64> = conn.hgetall(lifecycle::usage_key(owner)).await.unwrap();
    traces.extend(usage.keys().filter(|f| f.starts_with(id)).map(|f| format!("usage {f}")));
    if conn.zscore::<_, _, Option<f64>>(lifecycle::index_key(owner), id).await.unwrap().is_some() {
        traces.push("index".into());
    }
    if conn.zscore::<_, _, Option<f64>>(lifecycle::EXPIRY_SET, id).await.unwrap().is_some() {
        traces.push("expiry".into());
    }
    for key in [lifecycle::run_key(id), lifecycle::attempt_key(id), lifecycle::dead_letters_key(id)] {
        if conn.exists(&key).await.unwrap() {
            traces.push(key);
        }
    }
    traces
}

/// A `DELETE` whose record delete fails: the store refuses it (an SQLite trigger in the real
/// key-value file, standing for a disk error), the answer is a 500 `{error, detail}`, and once
/// the store works again the sweeper finishes the deletion within seconds: the record, the
/// chunks and everything Redis counted go. Before, the expiry entry was forgotten before the
/// record delete, and the failed job stayed forever, listed with its output gone.
#[tokio::test]
async fn a_delete_that_fails_half_way_is_finished_by_the_sweeper() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("half@example.com").await;
    let (clip, content_type) = short_clip();
    let id = c.upload_file(&token, &clip, content_type, "format=wav").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    let kv = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_key_value.db")).unwrap();
    kv.busy_timeout(Duration::from_secs(10)).unwrap();
    kv.execute_batch(&format!(
        "CREATE TRIGGER refuse_record_delete BEFORE DELETE ON spin_key_value WHEN old.key = 'job:{id}' \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END;"
    ))
    .unwrap();

    let res = c.http.delete(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap();
    let body = error_body(res, 500).await;
    let detail = format!("job {id} could not be deleted completely; what is left of it is removed within seconds");
    assert_eq!((body["error"].as_str(), body["detail"].as_str()), (Some("delete incomplete"), Some(detail.as_str())));
    // The chunks went, the record stayed: the state a failed step leaves.
    assert_eq!(sqlite_job_keys(&p), [format!("job:{id}")]);
    kv.execute_batch("DROP TRIGGER refuse_record_delete").unwrap();

    wait_until("the sweeper finished the deletion", Duration::from_secs(20), async || {
        c.http.get(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().status() == 404
    })
    .await;
    assert_eq!(sqlite_job_keys(&p), Vec::<String>::new());
    wait_until("its accounting is gone", Duration::from_secs(5), async || redis_traces(&p, "half@example.com", &id).await.is_empty()).await;
    let jobs: serde_json::Value = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(jobs, json!([]));
    assert!(p.log_has("deleted job's removal finished").await, "{}", p.log());
    // A DELETE that completes leaves nothing for the sweeper: the schedule is empty at once.
    let id = c.upload_file(&token, &clip, content_type, "format=wav").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    assert_eq!(c.http.delete(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().status(), 204);
    assert_eq!(redis_traces(&p, "half@example.com", &id).await, Vec::<String>::new());
    assert_eq!(sqlite_job_keys(&p), Vec::<String>::new());
}

/// The dead letters (job id, entry, reason) of each job in `mp3edge:jobs:dead`.
async fn dead_letters(p: &Platform) -> Vec<String> {
    let mut conn = p.redis().connect().await;
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(layout::DEAD_LETTER_STREAM).await.unwrap();
    reply.ids.iter().map(|e| e.get::<String>("job_id").unwrap_or_default()).collect()
}

/// Dead letters go with their job: one when the job is deleted, one when it expires; a dead
/// letter that names no job (a malformed queue entry) stays for people to look at. Before,
/// they outlived the job they named.
#[tokio::test]
async fn dead_letters_go_with_their_job_when_it_is_deleted_or_expires() {
    let options = PlatformOptions { key_value_on_redis: true, no_worker: true, variables: vars(&[("job_retention_secs", "4")]), ..Default::default() };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("dead@example.com").await;
    let (clip, content_type) = short_clip();
    let mut conn = p.redis().connect().await;
    // Two jobs whose source lost a chunk (every attempt fails), and a malformed entry.
    let deleted = c.upload_file(&token, &clip, content_type, "").await;
    let expiring = c.upload_file(&token, &clip, content_type, "").await;
    for id in [&deleted, &expiring] {
        let _: () = conn.del(layout::source_chunk_key(id, 0)).await.unwrap();
    }
    let _: String = conn.xadd(layout::JOB_STREAM, "*", &[(layout::JOB_STREAM_FIELD, "not json")]).await.unwrap();
    let _worker = p.start_worker(&["--max-attempts", "1", "--concurrency", "1"]);
    for id in [&deleted, &expiring] {
        assert_eq!(c.wait_for_job(&token, id, JOB_TIMEOUT).await["status"], "failed");
    }
    wait_until("three dead letters", Duration::from_secs(10), async || dead_letters(&p).await.len() == 3).await;
    let mut letters = dead_letters(&p).await;
    letters.sort();
    let mut expected = vec![String::new(), deleted.clone(), expiring.clone()];
    expected.sort();
    assert_eq!(letters, expected);

    assert_eq!(c.http.delete(c.url(&format!("/jobs/{deleted}"))).bearer_auth(&token).send().await.unwrap().status(), 204);
    let mut left = dead_letters(&p).await;
    left.sort();
    let mut expected = vec![String::new(), expiring.clone()];
    expected.sort();
    assert_eq!(left, expected, "the deleted job's dead letter went with it");
    wait_until("the failed job expired", Duration::from_secs(20), async || redis_job_keys(&p).await.is_empty()).await;
    wait_until("its dead letter went with it", Duration::from_secs(5), async || dead_letters(&p).await == [String::new()]).await;
    for id in [&deleted, &expiring] {
        assert_eq!(redis_traces(&p, "dead@example.com", id).await, Vec::<String>::new());
    }
}

fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// How an upload's body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Raw, with `Content-Length`.
    Raw,
    /// `multipart/form-data` with `Content-Length` (the file is the body less its framing).
    Multipart,
    /// Raw and chunked, without `Content-Length`: only the stream tells its size.
    Streamed,
}

async fn upload_bytes(c: &Client, token: &str, data: Vec<u8>, body: Body) -> reqwest::Response {
    let request = c.http.post(c.url("/upload?filename=clip.mp4")).bearer_auth(token);
    let request = match body {
        Body::Raw => request.header("content-type", "video/mp4").body(data),
        Body::Multipart => {
            let part = reqwest::multipart::Part::bytes(data).file_name("clip.mp4").mime_str("video/mp4").unwrap();
            request.multipart(reqwest::multipart::Form::new().part("file", part))
        }
        Body::Streamed => {
            let pieces: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
            request.header("content-type", "video/mp4").body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        }
    };
    request.send().await.unwrap()
}

/// Eight parallel uploads of 6.6 MB against a 30 MB quota, raw and multipart with
/// `Content-Length` and streamed without: exactly the four that fit are accepted, the other
/// four are 413 `quota_exceeded` and leave nothing in the store or the accounting. Before,
/// multipart ones gave 1×202 (each had reserved its size less a megabyte of framing allowance,
/// then grew into the others), and the streamed ones, growing side by side, were all refused
/// at the quota together: 8×413.
#[tokio::test]
async fn parallel_uploads_near_the_quota_get_as_many_through_as_fit() {
    const QUOTA: u64 = 30_000_000;
    const SIZE: usize = 6_600_000;
    let options = PlatformOptions {
        key_value_on_redis: true,
        no_worker: true,
        variables: vars(&[("user_quota_bytes", &QUOTA.to_string())]),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let owner = "parallel@example.com";
    let token = c.new_user(owner).await;
    let mut conn = p.redis().connect().await;
    for body in [Body::Raw, Body::Multipart, Body::Streamed] {
        let uploads = (0..8).map(|_| upload_bytes(&c, &token, sample_bytes(SIZE), body));
        let mut accepted = Vec::new();
        for res in join_all(uploads).await {
            if res.status() == 202 {
                accepted.push(res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string());
                continue;
            }
            let body = error_body(res, 413).await;
            assert_eq!(body["error"], "quota_exceeded", "{body}");
            assert!(body["detail"].as_str().unwrap().contains("(30000000 bytes)"), "{body}");
        }
        assert_eq!(accepted.len(), 4, "{body:?}: the four that fit");
        let me: serde_json::Value = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["used_bytes"], 4 * SIZE as u64, "{body:?}");
        // Each accepted upload is its record and 7 chunks of 1 MiB; nothing of the others.
        let mut expected: Vec<String> = Vec::new();
        for id in &accepted {
            expected.push(format!("job:{id}"));
            expected.extend((0..7).map(|n| layout::source_chunk_key(id, n)));
        }
        expected.sort();
        assert_eq!(redis_job_keys(&p).await, expected, "{body:?}");
        let uploading: Vec<String> = conn.zrange(lifecycle::uploading_key(owner), 0, -1).await.unwrap();
        assert_eq!(uploading, Vec::<String>::new());
        let pending: BTreeMap<String, String> = conn.hgetall(lifecycle::PENDING_UPLOADS).await.unwrap();
        assert_eq!(pending, BTreeMap::new());
        for id in &accepted {
            assert_eq!(c.http.delete(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().status(), 204);
        }
        assert_eq!(redis_job_keys(&p).await, Vec::<String>::new());
    }
}

async fn patch_user(c: &Client, admin: &str, email: &str, body: serde_json::Value) {
    let res = c.http.patch(c.url(&format!("/users/{email}"))).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// Deactivation reaches everything the owner handed out or holds open, at once: their signed
/// download links stop serving (403 with the reason; again 200 once they are active again) and
/// their open event stream ends with `event: revoked`; a demoted administrator's stream on
/// someone else's job ends the same way. Before, the links kept serving and the stream kept
/// streaming until its own time limit.
#[tokio::test]
async fn deactivation_reaches_signed_links_and_open_event_streams() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    let token = c.new_user("leaver@example.com").await;
    c.new_user("helper@example.com").await;
    patch_user(&c, &admin, "helper@example.com", json!({"admin": true})).await;
    // A token of the promoted user carries the administrator's rights.
    let helper = c.login("helper@example.com", "user-password-1").await;
    let (clip, content_type) = short_clip();
    // One job converted by a worker that then stops, one that stays queued (its stream stays open).
    let done = c.upload_file(&token, &clip, content_type, "format=mp3").await;
    let worker = p.start_worker(&[]);
    assert_eq!(c.wait_for_job(&token, &done, JOB_TIMEOUT).await["status"], "done");
    drop(worker);
    let queued = c.upload_file(&token, &clip, content_type, "format=mp3").await;

    let link: serde_json::Value =
        c.http.post(c.url(&format!("/jobs/{done}/link"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let url = c.url(link["url"].as_str().unwrap());
    let anonymous = reqwest::Client::new();
    assert_eq!(anonymous.get(&url).send().await.unwrap().status(), 200);
    let follow = |bearer: String| {
        let request = c.http.get(c.url(&format!("/jobs/{queued}/events"))).bearer_auth(bearer);
        async move { request.send().await.unwrap() }
    };
    let own = follow(token.clone()).await;
    let admins = follow(helper.clone()).await;
    assert_eq!((own.status(), admins.status()), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    let (own, admins) = (
        tokio::spawn(events_until(own, "event: revoked", Duration::from_secs(10))),
        tokio::spawn(events_until(admins, "event: revoked", Duration::from_secs(10))),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = std::time::Instant::now();
    patch_user(&c, &admin, "leaver@example.com", json!({"active": false})).await;
    patch_user(&c, &admin, "helper@example.com", json!({"admin": false})).await;
    let body = error_body(anonymous.get(&url).send().await.unwrap(), 403).await;
    assert_eq!(body["detail"], "the link no longer works: the account that shared it is deactivated", "{body}");
    for (who, stream) in [("owner", own), ("demoted admin", admins)] {
        let (seen, ended) = stream.await.unwrap();
        let seen = seen.unwrap_or_else(|| panic!("the {who}'s stream went on after the change"));
        assert!(seen.contains("event: queued"), "{seen}");
        assert!(seen.contains("may no longer follow this job"), "{seen}");
        assert!(ended, "the {who}'s stream ended: {seen}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "at once: {:?}", started.elapsed());
    // Active again, the link works again: it was the deactivation, not the link.
    patch_user(&c, &admin, "leaver@example.com", json!({"active": true})).await;
    assert_eq!(anonymous.get(&url).send().await.unwrap().status(), 200);
}
