//! Import by URL (`POST /upload?url=`) through the real host, gateway, worker and Redis, from a
//! real HTTP server on loopback ([`serve_http`]) that the operator allowed (`url_import_allowed_hosts`): the
//! file converts; every refused form (internal addresses in every spelling, a name that
//! resolves to loopback, a redirect from the allowed host to a refused one, other schemes,
//! credentials) is a 400 at once that leaves nothing behind; a failing source (404, not media)
//! is a failed job with its reason; a source over the upload limit is a 413.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// A media server on `127.0.0.1`: `/clip.mp4` (a real video), `/notes.txt` (text), `/to-clip`
/// (302 to `/clip.mp4`), `/to-internal` (302 to the same server at `127.0.0.2`, which no one
/// allowed); anything else is a 404.
async fn media_server() -> SocketAddr {
    let clip = std::fs::read(good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap().1.path).unwrap();
    let mut routes = HashMap::new();
    routes.insert("/clip.mp4".to_string(), Answer::File { content_type: "video/mp4", body: Bytes::from(clip) });
    routes.insert("/notes.txt".to_string(), Answer::File { content_type: "text/plain", body: Bytes::from_static(b"not a video at all\n") });
    routes.insert("/to-clip".to_string(), Answer::Redirect("/clip.mp4".into()));
    routes.insert("/to-internal".to_string(), Answer::Redirect("http://127.0.0.2:9/clip.mp4".into()));
    serve_http(routes).await
}

async fn import(c: &Client, token: &str, url: &str, query: &str) -> reqwest::Response {
    let url = c.url(&format!("/upload?url={}&{query}", urlencode(url)));
    c.http.post(url).bearer_auth(token).send().await.unwrap()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn job_count(c: &Client, token: &str) -> usize {
    let jobs: serde_json::Value = c.http.get(c.url("/jobs")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    jobs.as_array().map_or_else(|| jobs["jobs"].as_array().map_or(0, Vec::len), Vec::len)
}

fn platform(server: SocketAddr, variables: &[(&str, &str)]) -> Platform {
    let options = PlatformOptions {
        key_value_on_redis: true,
        env: vec![("SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS".into(), format!("http://127.0.0.1:{}", server.port()))],
        variables: variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    Platform::start_with(options).unwrap()
}

#[tokio::test]
async fn an_allowed_source_converts_and_a_failing_one_fails_with_its_reason() {
    let server = media_server().await;
    let p = platform(server, &[]);
    let c = Client::new(&p);
    let token = c.new_user("import@example.com").await;
    let base = format!("http://127.0.0.1:{}", server.port());

    let res = import(&c, &token, &format!("{base}/clip.mp4"), "format=mp3&title=Imported").await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["source_name"], "clip.mp4");
    assert_eq!(job["source_url"], format!("{base}/clip.mp4"));
    assert_eq!(job["source"]["content_type"], "video/mp4");
    let (_, mp3) = c.download(&token, &id).await;
    assert!(e2e_tests::audio::decode_mp3(&mp3).frames > 80_000);

    // A JSON body, and a redirect within the allowed host.
    let res = c
        .http
        .post(c.url("/upload?format=wav"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "url": format!("{base}/to-clip") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(c.wait_for_job(&token, &id, JOB_TIMEOUT).await["status"], "done");

    // A source that answers 404, and one that is not media: failed jobs, readable reasons.
    let res = import(&c, &token, &format!("{base}/missing"), "").await;
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], "the link answered HTTP 404");
    let res = import(&c, &token, &format!("{base}/notes.txt"), "").await;
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("not a media file"), "{job}");
}

#[tokio::test]
async fn every_refused_form_is_a_400_at_once_and_leaves_nothing() {
    let server = media_server().await;
    let p = platform(server, &[]);
    let c = Client::new(&p);
    let token = c.new_user("refused@example.com").await;
    let port = server.port();
    let other_port = free_port();
    for (url, reason) in [
        (format!("http://127.0.0.1:{other_port}/clip.mp4"), "127.0.0.1 is a loopback, private or otherwise internal address"),
        ("http://10.0.0.1/clip.mp4".to_string(), "10.0.0.1 is a loopback, private or otherwise internal address"),
        ("http://192.168.1.1/clip.mp4".to_string(), "192.168.1.1 is a loopback, private or otherwise internal address"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "169.254.169.254 is a loopback, private or otherwise internal address"),
        ("http://100.64.0.1/clip.mp4".to_string(), "100.64.0.1 is a loopback, private or otherwise internal address"),
        ("http://224.0.0.1/clip.mp4".to_string(), "224.0.0.1 is a loopback, private or otherwise internal address"),
        (format!("http://[::1]:{port}/clip.mp4"), "[::1] is a loopback, private or otherwise internal address"),
        ("http://[fd00::1]/clip.mp4".to_string(), "[fd00::1] is a loopback, private or otherwise internal address"),
        (format!("http://[::ffff:127.0.0.1]:{port}/clip.mp4"), "[::ffff:7f00:1] is a loopback, private or otherwise internal address"),
        (format!("http://0x7f.1:{other_port}/clip.mp4"), "127.0.0.1 is a loopback, private or otherwise internal address"),
        (format!("http://127.0.0.1:{port}/to-internal"), "127.0.0.2 is a loopback, private or otherwise internal address"),
        ("ftp://example.com/clip.mp4".to_string(), "only http and https URLs can be imported, not ftp:"),
        ("https://user:secret@example.com/clip.mp4".to_string(), "the URL carries credentials; give a link that works without them (a share link, a signed URL)"),
    ] {
        let started = std::time::Instant::now();
        let res = import(&c, &token, &url, "format=mp3").await;
        let body = error_body(res, 400).await;
        assert_eq!(body["error"], "url not allowed", "{url}: {body}");
        assert_eq!(body["detail"], reason, "{url}");
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: answered after {:?}", started.elapsed());
    }
    // A name that resolves to loopback (127.0.0.1 or ::1, whichever comes first).
    let res = import(&c, &token, &format!("http://localhost:{port}/clip.mp4"), "").await;
    let detail = error_body(res, 400).await["detail"].as_str().unwrap().to_string();
    assert!(
        detail == "localhost resolves to 127.0.0.1, which is a loopback, private or otherwise internal address"
            || detail == "localhost resolves to ::1, which is a loopback, private or otherwise internal address",
        "{detail}"
    );
    // Nothing of them stays: no job, no key, nothing counted.
    assert_eq!(job_count(&c, &token).await, 0);
    let mut redis = p.redis().connect().await;
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut redis, "job:*").await.unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let me: serde_json::Value = c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["used_bytes"], 0);
}

#[tokio::test]
async fn a_source_over_the_upload_limit_is_a_413_at_once() {
    let server = media_server().await;
    let p = platform(server, &[("max_upload_bytes", "10000")]);
    let c = Client::new(&p);
    let token = c.new_user("big-import@example.com").await;
    let res = import(&c, &token, &format!("http://127.0.0.1:{}/clip.mp4", server.port()), "").await;
    let body = error_body(res, 413).await;
    assert_eq!(body["error"], "too large");
    assert!(body["detail"].as_str().unwrap().ends_with("over the upload limit of 9.8 KiB"), "{body}");
    assert_eq!(job_count(&c, &token).await, 0);
}

#[tokio::test]
async fn mp3edge_convert_takes_a_url_under_the_same_rules() {
    let server = media_server().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/clip.mp4", server.port());
    // Not allowed: a command-line error, and nothing is written.
    let out = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || mp3edge_command().current_dir(dir).args(["convert", &url]).env_remove("SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS").output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("url not allowed: 127.0.0.1 is a loopback, private or otherwise internal address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Allowed: the mp3 lands in the current directory, named after the link.
    let out = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        let allowed = format!("http://127.0.0.1:{}", server.port());
        move || mp3edge_command().current_dir(dir).args(["convert", &url, "--url-import-allowed-hosts", &allowed]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mp3 = std::fs::read(dir.path().join("clip.mp3")).unwrap();
    assert!(e2e_tests::audio::decode_mp3(&mp3).frames > 80_000);
}
