//! Notifications from the worker: e-mail through a real SMTP server process, signed webhooks to
//! a real HTTP receiver on loopback with retries, and failures that never touch the conversion.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const WEBHOOK_SECRET: &str = "test-webhook-secret";

fn smtp_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("MP3EDGE_SMTP_HOST".into(), "127.0.0.1".into()),
        ("MP3EDGE_SMTP_PORT".into(), port.to_string()),
        ("MP3EDGE_SMTP_SECURITY".into(), "none".into()),
        ("MP3EDGE_PUBLIC_URL".into(), "https://mp3edge.example".into()),
    ]
}

/// Waits until the job record lists `count` notification attempts.
async fn notifications(c: &Client, token: &str, id: &str, count: usize) -> Vec<serde_json::Value> {
    let started = std::time::Instant::now();
    loop {
        let job = c.job(token, id).await;
        let list = job["notifications"].as_array().cloned().unwrap_or_default();
        if list.len() >= count {
            return list;
        }
        assert!(started.elapsed() < JOB_TIMEOUT, "expected {count} notification attempts: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_owner_gets_an_email_with_the_download_link() {
    let smtp = SmtpServer::start().unwrap();
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, env: smtp_env(smtp.port), ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("listener@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    let attempts = notifications(&c, &token, &id, 1).await;
    assert_eq!(attempts[0]["channel"], "email");
    assert_eq!(attempts[0]["ok"], true, "{attempts:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert!(mail.contains("To: listener@example.com"), "{mail}");
    assert!(mail.contains("Subject: Your audio is ready: clip.mp3"), "{mail}");
    assert!(mail.contains(&format!("https://mp3edge.example/jobs/{id}/audio")), "{mail}");

    // A failed job is reported too, with its reason.
    let (_, bad, content_type) = e2e_tests::fixtures::bad_inputs().into_iter().next().unwrap();
    let failed = c.upload_file(&token, &bad, content_type, "").await;
    assert_eq!(c.wait_for_job(&token, &failed, JOB_TIMEOUT).await["status"], "failed");
    notifications(&c, &token, &failed, 1).await;
    let mail = smtp.messages().into_iter().find(|m| m.contains("Subject: Conversion failed")).expect("failure mail");
    assert!(mail.contains("could not be converted"), "{mail}");
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_recorded_and_the_job_still_completes() {
    let closed_port = free_port();
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, env: smtp_env(closed_port), ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("nomail@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, "").await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");
    let attempts = notifications(&c, &token, &id, 1).await;
    assert_eq!(attempts[0]["channel"], "email");
    assert_eq!(attempts[0]["ok"], false);
    assert!(attempts[0]["detail"].as_str().unwrap().contains("SMTP"), "{attempts:?}");
    assert_eq!(c.download(&token, &id).await.1.len() as u64, c.job(&token, &id).await["output"]["size"].as_u64().unwrap());
}

/// What the receiver saw: (signature valid, event body).
type Seen = Arc<Mutex<Vec<(bool, serde_json::Value)>>>;

/// A real HTTP server on loopback that verifies signatures and fails its first `failures` calls.
async fn start_receiver(failures: usize) -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let timestamp = req.headers()["mp3edge-timestamp"].to_str().unwrap().to_string();
                        let signature = req.headers()["mp3edge-signature"].to_str().unwrap().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
                        mac.update(format!("{timestamp}.").as_bytes());
                        mac.update(&body);
                        let valid = signature == format!("v1={}", hex::encode(mac.finalize().into_bytes()));
                        let mut seen = record.lock().unwrap();
                        seen.push((valid, serde_json::from_slice(&body).unwrap()));
                        let status = if seen.len() <= failures { 500 } else { 200 };
                        Ok::<_, Infallible>(hyper::Response::builder().status(status).body(Full::new(Bytes::new())).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_until_the_receiver_accepts() {
    let (port, seen) = start_receiver(2).await;
    let mut options = PlatformOptions { key_value_on_redis: true, ..Default::default() };
    options.variables.insert("webhook_allowed_hosts".into(), format!("127.0.0.1:{port}"));
    options.env.push(("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    options.args = vec!["--webhook-backoff-ms".into(), "200".into()];
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("hook@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let callback = format!("http://127.0.0.1:{port}/hook");
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, &format!("callback={callback}")).await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");

    let attempts = notifications(&c, &token, &id, 3).await;
    let webhook: Vec<_> = attempts.iter().filter(|a| a["channel"] == "webhook").collect();
    assert_eq!(webhook.len(), 3, "{attempts:?}");
    assert_eq!(webhook.iter().map(|a| a["ok"].as_bool().unwrap()).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(webhook.iter().map(|a| a["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(webhook[0]["detail"], "HTTP 500");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (valid, event) in &seen {
        assert!(valid, "signature verifies: {event}");
        assert_eq!(event["type"], "job.done");
        assert_eq!(event["job_id"], id);
        assert!(event["download_url"].as_str().unwrap().ends_with(&format!("/jobs/{id}/audio")));
        assert!(event["size"].as_u64().unwrap() > 0);
        assert!(event["duration_secs"].as_f64().unwrap() > 1.9);
    }
}

#[tokio::test]
async fn a_receiver_that_never_accepts_stops_after_the_attempt_limit() {
    let (port, seen) = start_receiver(usize::MAX).await;
    let mut options = PlatformOptions { key_value_on_redis: true, ..Default::default() };
    options.variables.insert("webhook_allowed_hosts".into(), "127.0.0.1".into());
    options.env.push(("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    options.args = vec!["--webhook-backoff-ms".into(), "50".into(), "--webhook-max-attempts".into(), "4".into()];
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("deaf@example.com").await;
    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    let id = c.upload_file(&token, &fixture.path, fixture.content_type, &format!("callback=http://127.0.0.1:{port}/x")).await;
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done", "a failing receiver never fails the job");
    notifications(&c, &token, &id, 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.lock().unwrap().len(), 4, "exactly the attempt limit");
}

#[tokio::test]
async fn a_user_sends_a_signed_test_event_to_their_webhook_and_sees_how_it_went() {
    // The receiver refuses the first event and accepts the next.
    let (port, seen) = start_receiver(1).await;
    let mut options = PlatformOptions { key_value_on_redis: true, ..Default::default() };
    options.variables.insert("webhook_allowed_hosts".into(), format!("127.0.0.1:{port}"));
    options.env.push(("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("tester@example.com").await;
    let test = || c.http.post(c.url("/users/me/callback/test")).bearer_auth(&token).send();
    error_body(c.http.post(c.url("/users/me/callback/test")).send().await.unwrap(), 401).await;
    let none = error_body(test().await.unwrap(), 409).await;
    assert_eq!(none["error"], "no webhook");
    error_body(c.http.get(c.url("/users/me/callback/test")).bearer_auth(&token).send().await.unwrap(), 405).await;

    let hook = format!("http://127.0.0.1:{port}/hook");
    let res = c.http.put(c.url("/users/me")).bearer_auth(&token).json(&serde_json::json!({"default_callback": hook})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let me = || async { c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json::<serde_json::Value>().await.unwrap() };
    assert_eq!(me().await["callback_test"], serde_json::Value::Null);
    let outcome = async |requested_at: &serde_json::Value| {
        let mut last = serde_json::Value::Null;
        wait_until("the test event's outcome", Duration::from_secs(30), async || {
            last = me().await["callback_test"].clone();
            last["requested_at"] == *requested_at && last["at"].is_u64()
        })
        .await;
        last
    };

    for (expect_ok, expect_detail) in [(false, "HTTP 500"), (true, "HTTP 200")] {
        let res = test().await.unwrap();
        assert_eq!(res.status(), 202);
        let pending: serde_json::Value = res.json().await.unwrap();
        assert_eq!(pending["target"], hook);
        assert!(pending.get("at").is_none(), "{pending}");
        let result = outcome(&pending["requested_at"]).await;
        assert_eq!(result["ok"], expect_ok, "{result}");
        assert_eq!(result["detail"], expect_detail, "{result}");
        assert_eq!(result["target"], hook);
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one event per test, no retries: {seen:?}");
    for (valid, event) in &seen {
        assert!(valid, "the signature verifies: {event}");
        assert_eq!(event["type"], "ping");
    }
}

#[tokio::test]
async fn a_test_event_waits_for_a_worker_and_is_not_queued_twice() {
    // No worker: the request waits, and asking again meanwhile is refused.
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("waiting@example.com").await;
    let res = c
        .http
        .put(c.url("/users/me"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"default_callback": "https://hooks.example.com/in"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let test = || c.http.post(c.url("/users/me/callback/test")).bearer_auth(&token).send();
    assert_eq!(test().await.unwrap().status(), 202);
    let again = test().await.unwrap();
    let retry_after: u64 = again.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(error_body(again, 409).await["error"], "test pending");
    let mut conn = p.redis().connect().await;
    let waiting: Vec<String> = redis::AsyncCommands::lrange(&mut conn, job_model::callback_test::REQUESTS, 0, -1).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let me: serde_json::Value = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["callback_test"]["target"], "https://hooks.example.com/in");
    assert!(me["callback_test"].get("at").is_none(), "{me}");
}
