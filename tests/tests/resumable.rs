//! Resumable uploads (tus 1.0.0 at `/uploads`) through the real host, gateway, worker and
//! Redis, driven by tuspy, the tus project's Python client (`tests/tus/tus_client.py`,
//! installed by `make setup`), unchanged: an upload whose client dies half-way resumes after a
//! restart of `mp3edge up` and converts; and the protocol's edges by hand: offsets that do not
//! match, another user's upload, termination, expiry, the quota, and what `OPTIONS` says.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use redis::AsyncCommands;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const TUS: &str = "1.0.0";

fn tus_client() -> Command {
    let python = workspace_root().join("tests/tus/.venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `make setup`", python.display());
    let mut command = Command::new(python);
    command.arg(workspace_root().join("tests/tus/tus_client.py"));
    command
}

/// Runs the tus client; its standard output's lines.
fn run(command: &mut Command) -> Vec<String> {
    let out = command.output().unwrap();
    assert!(out.status.success(), "tus client failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn video() -> (PathBuf, u64) {
    let path = good_inputs().into_iter().find(|(name, _)| *name == "mp4 h264+aac").unwrap().1.path;
    let len = std::fs::metadata(&path).unwrap().len();
    (path, len)
}

/// Every key of job `id` in the platform's SQLite key-value store.
fn sqlite_keys(p: &Platform, id: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_key_value.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = db.prepare("SELECT key FROM spin_key_value WHERE key LIKE ?1 ORDER BY key").unwrap();
    stmt.query_map([format!("job:{id}%")], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

async fn create(c: &Client, token: &str, length: u64, metadata: &[(&str, &str)]) -> reqwest::Response {
    c.http
        .post(c.url("/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", TUS)
        .header("upload-length", length.to_string())
        .header("upload-metadata", edge_http::tus::format_metadata(metadata.iter().copied()))
        .send()
        .await
        .unwrap()
}

async fn patch(c: &Client, token: &str, location: &str, offset: u64, body: Vec<u8>) -> reqwest::Response {
    c.http
        .patch(c.url(location))
        .bearer_auth(token)
        .header("tus-resumable", TUS)
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn head_offset(c: &Client, token: &str, location: &str) -> (u16, Option<u64>) {
    let res = c.http.head(c.url(location)).bearer_auth(token).header("tus-resumable", TUS).send().await.unwrap();
    let offset = res.headers().get("upload-offset").and_then(|v| v.to_str().ok()?.parse().ok());
    (res.status().as_u16(), offset)
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn a_tus_upload_survives_its_client_and_a_restart_of_up_then_converts() {
    let mut p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("tus@example.com").await;
    let (path, len) = video();
    let chunk = 16 * 1024;
    // The client sends about half and dies.
    let half = (len / 2 / chunk) * chunk;
    let out = run(tus_client()
        .args(["start", &c.url("/uploads"), &token])
        .arg(&path)
        .args([&chunk.to_string(), &half.to_string(), "filename=clip.mp4", "filetype=video/mp4", "format=flac"]));
    let url = out.last().unwrap().clone();
    let location = url.strip_prefix(&p.base_url).expect("the upload's URL is on the platform").to_string();
    let id = location.strip_prefix("/uploads/").unwrap().to_string();
    // The job exists from the start, uploading, and says how much it has.
    let job = c.job(&token, &id).await;
    assert_eq!(job["status"], "uploading", "{job}");
    assert_eq!(job["received_bytes"], half);
    assert_eq!(job["source"]["size"], len);
    assert_eq!(job["options"]["format"], "flac");
    let listed: serde_json::Value = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(listed.to_string().contains(&id), "listed while uploading: {listed}");

    // The platform restarts; the upload is where it was.
    assert!(p.stop().is_some());
    p.restart().unwrap();
    let c = Client::new(&p);
    assert_eq!(head_offset(&c, &token, &location).await, (200, Some(half)));
    // The client comes back with the URL it stored and finishes from the server's offset.
    let out = run(tus_client().args(["resume", &c.url(&location), &token]).arg(&path).args([&chunk.to_string()]));
    assert_eq!(out[0], half.to_string(), "resumed from the server's offset");
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["source_name"], "clip.mp4");
    assert!(job.get("received_bytes").is_none(), "{job}");
    // The converted audio is the whole file's: two seconds.
    let (_, flac) = c.download(&token, &id).await;
    assert!(flac.starts_with(b"fLaC"));
    let frames = e2e_tests::probe::decoded_frames(&{
        let out = p.data_dir.path().join("out.flac");
        std::fs::write(&out, &flac).unwrap();
        out
    }, 2);
    assert!((frames as f64 / 44100.0 - 2.0).abs() < 0.05, "{frames} frames");
    // A complete upload says so.
    assert_eq!(head_offset(&c, &token, &location).await, (200, Some(len)));
}

#[tokio::test]
async fn the_protocol_edges_answer_as_tus_says_and_leave_nothing_behind() {
    let mut variables = std::collections::BTreeMap::new();
    variables.insert("resumable_upload_expiry_secs".to_string(), "3".to_string());
    variables.insert("user_quota_bytes".to_string(), (1u64 << 20).to_string());
    let p = Platform::start_with(PlatformOptions { variables, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("edges@example.com").await;
    let other = c.new_user("other@example.com").await;

    // Discovery.
    let res = c.http.request(reqwest::Method::OPTIONS, c.url("/uploads")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "tus-version"), TUS);
    assert_eq!(header(&res, "tus-extension"), "creation,creation-with-upload,termination,expiration");
    assert_eq!(header(&res, "tus-max-size"), "2147483648");

    // Without the protocol's header, or with another version: 412.
    let res = c.http.post(c.url("/uploads")).bearer_auth(&token).header("upload-length", "10").send().await.unwrap();
    assert_eq!(header(&res, "tus-version"), TUS);
    assert_eq!(error_body(res, 412).await["error"], "not a tus request");
    // Over the quota from Upload-Length alone, before a byte: 413.
    let res = create(&c, &token, 2 << 20, &[("filename", "big.mp4")]).await;
    assert_eq!(error_body(res, 413).await["error"], "quota_exceeded");
    // A bad option in the metadata: 400, as on /upload.
    let res = create(&c, &token, 1000, &[("format", "exe")]).await;
    assert_eq!(error_body(res, 400).await["error"], "unsupported format");
    let res = c.http.post(c.url("/uploads")).bearer_auth(&token).header("tus-resumable", TUS).header("upload-length", "10").header("upload-metadata", "filename !!").send().await.unwrap();
    assert_eq!(error_body(res, 400).await["error"], "invalid Upload-Metadata");

    let res = create(&c, &token, 300_000, &[("filename", "a.mp4")]).await;
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "tus-resumable"), TUS);
    assert!(!header(&res, "upload-expires").is_empty());
    let location = header(&res, "location");
    let id = location.strip_prefix("/uploads/").unwrap().to_string();
    // An append at another offset than the upload's: 409, saying the right one.
    let res = patch(&c, &token, &location, 7, vec![1; 10]).await;
    assert_eq!(header(&res, "upload-offset"), "0");
    assert_eq!(error_body(res, 409).await["error"], "offset mismatch");
    let res = patch(&c, &token, &location, 0, vec![1; 100_000]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "upload-offset"), "100000");
    let res = patch(&c, &token, &location, 0, vec![1; 10]).await;
    assert_eq!(header(&res, "upload-offset"), "100000");
    assert_eq!(error_body(res, 409).await["error"], "offset mismatch");
    // Past the announced length: 413, and nothing of it is kept.
    let res = patch(&c, &token, &location, 100_000, vec![1; 250_000]).await;
    assert_eq!(error_body(res, 413).await["error"], "more than Upload-Length");
    assert_eq!(head_offset(&c, &token, &location).await.1, Some(100_000));
    // Another user sees nothing, can append nothing and end nothing.
    assert_eq!(head_offset(&c, &other, &location).await.0, 404);
    error_body(patch(&c, &other, &location, 100_000, vec![1; 10]).await, 404).await;
    let res = c.http.delete(c.url(&location)).bearer_auth(&other).header("tus-resumable", TUS).send().await.unwrap();
    error_body(res, 404).await;
    // The owner ends it: everything goes at once, the quota too.
    let me = || async { c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap().json::<serde_json::Value>().await.unwrap() };
    assert_eq!(me().await["used_bytes"], 300_000, "the whole announced size is reserved");
    let res = c.http.delete(c.url(&location)).bearer_auth(&token).header("tus-resumable", TUS).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(head_offset(&c, &token, &location).await.0, 404);
    assert_eq!(sqlite_keys(&p, &id), Vec::<String>::new());
    assert_eq!(me().await["used_bytes"], 0);

    // An upload left half-way expires (here after 3 s) and the sweeper removes all of it.
    let res = create(&c, &token, 300_000, &[("filename", "left.mp4")]).await;
    let location = header(&res, "location");
    let id = location.strip_prefix("/uploads/").unwrap().to_string();
    assert_eq!(patch(&c, &token, &location, 0, vec![2; 150_000]).await.status(), 204);
    assert!(!sqlite_keys(&p, &id).is_empty());
    wait_until("the expired upload is removed", Duration::from_secs(30), async || sqlite_keys(&p, &id).is_empty()).await;
    assert_eq!(head_offset(&c, &token, &location).await.0, 404);
    assert_eq!(me().await["used_bytes"], 0);
    let mut redis = p.redis().connect().await;
    let pending: bool = redis.hexists(job_model::lifecycle::PENDING_UPLOADS, &id).await.unwrap();
    assert!(!pending);
}

#[tokio::test]
async fn creation_with_upload_and_an_interrupted_append_keep_what_arrived() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("partial@example.com").await;
    let path = e2e_tests::fixtures::long_video("crash-10min.mp4", 600, "160x120");
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len() as u64;
    assert!(len > 1_000_000, "{len} bytes");
    // The first 100,000 bytes come with the creation request.
    let res = c
        .http
        .post(c.url("/uploads"))
        .bearer_auth(&token)
        .header("tus-resumable", TUS)
        .header("upload-length", len.to_string())
        .header("upload-metadata", edge_http::tus::format_metadata([("filename", "clip.mp4"), ("format", "mp3")]))
        .header("content-type", "application/offset+octet-stream")
        .body(bytes[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "upload-offset"), "100000");
    let location = header(&res, "location");
    // An append whose client stops half-way through its body: what arrived is kept.
    let addr = p.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ntus-resumable: {TUS}\r\nupload-offset: 100000\r\n\
         content-type: application/offset+octet-stream\r\ncontent-length: {}\r\n\r\n",
        len - 100_000
    );
    use tokio::io::AsyncWriteExt;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bytes[100_000..150_000]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);
    wait_until("the interrupted append is kept", Duration::from_secs(10), async || {
        head_offset(&c, &token, &location).await.1 == Some(150_000)
    })
    .await;
    // The rest, from there.
    let res = patch(&c, &token, &location, 150_000, bytes[150_000..].to_vec()).await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    let id = location.strip_prefix("/uploads/").unwrap();
    let job = c.wait_for_job(&token, id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["source"]["size"], len);
}

#[tokio::test]
async fn tus_js_client_uploads_a_file_that_converts() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.new_user("tus-js@example.com").await;
    let (path, len) = video();
    let browser_tests = workspace_root().join("tests/browser");
    assert!(browser_tests.join("node_modules/tus-js-client").is_dir(), "run `make setup`");
    let out = Command::new("node")
        .current_dir(&browser_tests)
        .arg("tus-node.mjs")
        .args([&c.url("/uploads"), &token])
        .arg(&path)
        .args(["format=opus", "title=From tus-js-client"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let id = url.rsplit('/').next().unwrap().to_string();
    let job = c.wait_for_job(&token, &id, JOB_TIMEOUT).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["source"]["size"], len);
    assert_eq!(job["options"]["format"], "opus");
    assert_eq!(job["options"]["title"], "From tus-js-client");
}
