//! Issue 27's findings against the edge and the notifications, each as the attack it was,
//! through the real host, components, worker and Redis, now refused with a clear error and
//! nothing lost or left behind: a webhook host that IDNA turns into a loopback name, parallel
//! retries of one failed job, log-in failures from many addresses, a deactivated owner's links
//! and open event streams, parallel uploads near the quota, tags with controls and bidi
//! overrides, a `DELETE` that fails half-way and dead letters that outlived their job.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
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
