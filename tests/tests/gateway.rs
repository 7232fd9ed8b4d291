//! The gateway component through the real host: uploads (multipart and raw, streamed into the
//! key-value store in chunks), job records and the durable queue, ownership, listing and
//! downloads, and every kind of bad upload.

use std::time::Duration;

use e2e_tests::*;
use futures::StreamExt;
use job_model::layout;
use redis::AsyncCommands;
use reqwest::multipart::{Form, Part};

/// No worker: these tests look at jobs before any conversion touches them.
fn kv_on_redis() -> PlatformOptions {
    PlatformOptions { key_value_on_redis: true, no_worker: true, ..Default::default() }
}

/// Sends raw bytes and returns what the server answers before closing or within 10 s.
async fn raw_request(p: &Platform, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = p.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn upload_multipart(c: &Client, token: &str, name: &str, data: Vec<u8>, query: &str) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(data).file_name(name.to_string()).mime_str("video/mp4").unwrap());
    c.http.post(c.url(&format!("/upload{query}"))).bearer_auth(token).multipart(form).send().await.unwrap()
}

async fn accepted(res: reqwest::Response) -> serde_json::Value {
    let status = res.status();
    let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    assert_eq!(status, 202, "upload refused: {text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = body["job_id"].as_str().unwrap();
    assert!(layout::is_valid_job_id(id));
    assert_eq!(body["status_url"], format!("/jobs/{id}"));
    assert_eq!(body["download_url"], format!("/jobs/{id}/audio"));
    assert_eq!(location.as_deref(), Some(format!("/jobs/{id}").as_str()));
    body
}

/// Reads back a stored file from its chunks, as a second process would.
async fn read_chunks(conn: &mut redis::aio::MultiplexedConnection, id: &str, chunks: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for n in 0..chunks {
        let chunk: Vec<u8> = conn.get(layout::source_chunk_key(id, n)).await.unwrap();
        assert!(chunk.len() <= layout::CHUNK_SIZE);
        out.extend(chunk);
    }
    out
}

#[tokio::test]
async fn multipart_upload_is_chunked_recorded_and_queued_for_a_second_process() {
    let p = Platform::start_with(kv_on_redis()).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("ann@example.com").await;
    let data = sample_bytes(2 * layout::CHUNK_SIZE + 12345);
    let body = accepted(upload_multipart(&c, &token, "holiday clip.mp4", data.clone(), "?format=wav&bitrate=128").await).await;
    let id = body["job_id"].as_str().unwrap().to_string();

    let mut redis = p.redis().connect().await;
    let record: Vec<u8> = redis.get(layout::job_key(&id)).await.unwrap();
    let job = job_model::Job::from_json(&record).unwrap();
    assert_eq!(job.owner, "ann@example.com");
    assert_eq!(job.source_name, "holiday clip.mp4");
    assert_eq!(job.source.size, data.len() as u64);
    assert_eq!(job.source.chunks, 3);
    assert_eq!(job.source.content_type, "video/mp4");
    assert_eq!(job.options.format, "wav");
    assert_eq!(job.options.bitrate_kbps, Some(128));
    assert_eq!(job.status, job_model::JobStatus::Queued);
    assert_eq!(read_chunks(&mut redis, &id, 3).await, data);

    // Durable queue entry with the job message.
    let entries: redis::Value = redis::cmd("XRANGE").arg(layout::JOB_STREAM).arg("-").arg("+").query_async(&mut redis).await.unwrap();
    let text = format!("{entries:?}");
    assert!(text.contains(&id), "stream entry names the job: {text}");

    // The API shows the same job.
    let job: serde_json::Value = c.http.get(c.url(&format!("/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(job["status"], "queued");
    assert_eq!(job["id"], id);
}

#[tokio::test]
async fn raw_body_upload_with_filename() {
    let p = Platform::start_with(kv_on_redis()).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("raw@example.com").await;
    let data = sample_bytes(1000);
    let res = c
        .http
        .post(c.url("/upload?filename=../../etc/talk.webm"))
        .bearer_auth(&token)
        .header("content-type", "video/webm")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let id = accepted(res).await["job_id"].as_str().unwrap().to_string();
    let mut redis = p.redis().connect().await;
    let job = job_model::Job::from_json(&redis.get::<_, Vec<u8>>(layout::job_key(&id)).await.unwrap()).unwrap();
    assert_eq!(job.source_name, "talk.webm", "path components are stripped");
    assert_eq!(job.options.format, "mp3", "mp3 is the default format");
    assert_eq!(read_chunks(&mut redis, &id, 1).await, data);
}

#[tokio::test]
async fn bad_uploads_get_precise_errors_and_leave_nothing_behind() {
    let mut options = kv_on_redis();
    options.variables.insert("max_upload_bytes".into(), (3 * layout::CHUNK_SIZE).to_string());
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("bad@example.com").await;
    let good = accepted(upload_multipart(&c, &token, "keep.mp4", sample_bytes(5000), "").await).await;
    let url = c.url("/upload");

    // Unauthorized.
    error_body(c.http.post(&url).body("x").send().await.unwrap(), 401).await;
    error_body(c.http.post(&url).bearer_auth("not-a-token").body("x").send().await.unwrap(), 401).await;
    // Empty file, empty raw body.
    error_body(upload_multipart(&c, &token, "empty.mp4", vec![], "").await, 400).await;
    let res = c.http.post(c.url("/upload?filename=a.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body("").send().await.unwrap();
    error_body(res, 400).await;
    // Over the limit: announced by Content-Length, and streamed without one.
    let big = sample_bytes(4 * layout::CHUNK_SIZE);
    // Refused from the headers alone: the body is never sent, the answer comes anyway.
    let head = raw_request(
        &p,
        &format!(
            "POST /upload?filename=a.mp4 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
            big.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let stream = futures::stream::iter(big.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let res = c
        .http
        .post(c.url("/upload?filename=a.mp4"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // The server may answer 413 before the client finished sending; either way, nothing stays.
    if let Ok(res) = res {
        error_body(res, 413).await;
    }
    error_body(upload_multipart(&c, &token, "big.mp4", big, "").await, 413).await;
    // Two files.
    let form = Form::new()
        .part("a", Part::bytes(sample_bytes(100)).file_name("a.mp4"))
        .part("b", Part::bytes(sample_bytes(100)).file_name("b.mp4"));
    error_body(c.http.post(&url).bearer_auth(&token).multipart(form).send().await.unwrap(), 400).await;
    // No file part, only a text field.
    let form = Form::new().text("note", "hello");
    error_body(c.http.post(&url).bearer_auth(&token).multipart(form).send().await.unwrap(), 400).await;
    // Malformed multipart: wrong boundary, missing boundary, truncated body.
    let res = c.http.post(&url).bearer_auth(&token).header("content-type", "multipart/form-data; boundary=XYZ").body("--ABC\r\ngarbage").send().await.unwrap();
    error_body(res, 400).await;
    let res = c.http.post(&url).bearer_auth(&token).header("content-type", "multipart/form-data").body("whatever").send().await.unwrap();
    error_body(res, 400).await;
    let truncated = "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.mp4\"\r\nContent-Type: video/mp4\r\n\r\nsome bytes but no closing boundary";
    let res = c.http.post(&url).bearer_auth(&token).header("content-type", "multipart/form-data; boundary=XYZ").body(truncated).send().await.unwrap();
    error_body(res, 400).await;
    // Raw body problems: no filename, no or wrong content type.
    let res = c.http.post(&url).bearer_auth(&token).header("content-type", "video/mp4").body("abc").send().await.unwrap();
    error_body(res, 400).await;
    let res = c.http.post(c.url("/upload?filename=a.mp4")).bearer_auth(&token).body("abc").send().await.unwrap();
    error_body(res, 415).await;
    let res = c.http.post(c.url("/upload?filename=a.txt")).bearer_auth(&token).header("content-type", "text/html").body("<p>").send().await.unwrap();
    error_body(res, 415).await;
    // Bad options.
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?format=exe").await, 400).await;
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?format=../x").await, 400).await;
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?bitrate=9999").await, 400).await;
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?bitrate=fast").await, 400).await;
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?vbr=10").await, 400).await;
    error_body(upload_multipart(&c, &token, "a.mp4", sample_bytes(10), "?vbr=2&bitrate=128").await, 400).await;
    // Wrong method.
    error_body(c.http.get(&url).bearer_auth(&token).send().await.unwrap(), 405).await;

    // Nothing else was stored or queued; the good job is intact.
    let mut redis = p.redis().connect().await;
    let keys: Vec<String> = redis.keys("job:*").await.unwrap();
    let good_id = good["job_id"].as_str().unwrap();
    assert!(keys.iter().all(|k| k.starts_with(&format!("job:{good_id}"))), "leftovers: {keys:?}");
    assert_eq!(keys.len(), 2, "record and one chunk of the good job: {keys:?}");
    let queued: u64 = redis.xlen(layout::JOB_STREAM).await.unwrap();
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn jobs_are_private_listed_newest_first_and_not_downloadable_before_done() {
    let p = Platform::start_with(kv_on_redis()).unwrap();
    let c = Client::new(&p);
    let ann = c.new_user("ann@example.com").await;
    let bob = c.new_user("bob@example.com").await;
    let admin = c.admin_token().await;
    let mut ids = Vec::new();
    for name in ["first.mp4", "second.mp4", "third.mp4"] {
        ids.push(accepted(upload_multipart(&c, &ann, name, sample_bytes(100), "").await).await["job_id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let get = |path: String, token: &str| c.http.get(c.url(&path)).bearer_auth(token.to_string()).send();

    let list: Vec<serde_json::Value> = get("/jobs".into(), &ann).await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = list.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids.iter().rev().map(String::as_str).collect::<Vec<_>>());
    let bobs: Vec<serde_json::Value> = get("/jobs".into(), &bob).await.unwrap().json().await.unwrap();
    assert!(bobs.is_empty());
    error_body(get("/jobs?limit=abc".into(), &ann).await.unwrap(), 400).await;
    // Page by page, as the web app goes through a long list.
    let (get, ann) = (&get, &ann);
    let page = |query: &'static str| async move {
        let list: Vec<serde_json::Value> = get(format!("/jobs{query}"), ann).await.unwrap().json().await.unwrap();
        list.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(page("?limit=2").await, newest_first[..2]);
    assert_eq!(page("?limit=2&offset=2").await, newest_first[2..]);
    assert_eq!(page("?limit=2&offset=3").await, Vec::<String>::new());

    // Another user gets 404 (not 403); the admin may look.
    error_body(get(format!("/jobs/{}", ids[0]), &bob).await.unwrap(), 404).await;
    assert_eq!(get(format!("/jobs/{}", ids[0]), &admin).await.unwrap().status(), 200);
    error_body(get("/jobs/0123".into(), &ann).await.unwrap(), 404).await;
    error_body(get(format!("/jobs/{}", "f".repeat(32)), &ann).await.unwrap(), 404).await;
    error_body(get(format!("/jobs/{}/nothing", ids[0]), &ann).await.unwrap(), 404).await;
    error_body(c.http.get(c.url("/jobs")).send().await.unwrap(), 401).await;

    // Not converted yet: 409 with the status, on both download routes.
    for path in [format!("/jobs/{}/audio", ids[0]), format!("/download?fid={}", ids[0])] {
        let body = error_body(get(path.clone(), &ann).await.unwrap(), 409).await;
        assert_eq!(body["status"], "queued", "{path}");
        error_body(get(path, &bob).await.unwrap(), 404).await;
    }
    error_body(get("/download".into(), &ann).await.unwrap(), 400).await;
}

#[tokio::test]
async fn finished_jobs_download_with_range_etag_and_a_proper_name() {
    let p = Platform::start_with(kv_on_redis()).unwrap();
    let c = Client::new(&p);
    let ann = c.new_user("ann@example.com").await;
    let id = accepted(upload_multipart(&c, &ann, "Été talk.mp4", sample_bytes(100), "").await).await["job_id"].as_str().unwrap().to_string();

    // Store an output the way the worker does: chunks, then the record marked done.
    let output = sample_bytes(layout::CHUNK_SIZE + 5000);
    let mut redis = p.redis().connect().await;
    for (n, chunk) in output.chunks(layout::CHUNK_SIZE).enumerate() {
        let _: () = redis.set(layout::output_chunk_key(&id, n as u32), chunk).await.unwrap();
    }
    let mut job = job_model::Job::from_json(&redis.get::<_, Vec<u8>>(layout::job_key(&id)).await.unwrap()).unwrap();
    job.status = job_model::JobStatus::Done;
    job.progress = 100;
    job.output = Some(job_model::OutputFile {
        file: job_model::StoredFile { size: output.len() as u64, chunks: 2, chunk_size: layout::CHUNK_SIZE as u32, content_type: "audio/mpeg".into() },
        etag: "abc123".into(),
        duration_secs: Some(1.5),
        extension: Some("mp3".into()),
    });
    let _: () = redis.set(layout::job_key(&id), job.to_json()).await.unwrap();

    let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&ann).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "audio/mpeg");
    assert_eq!(h["content-length"], output.len().to_string().as_str());
    assert_eq!(h["etag"], "\"abc123\"");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(disposition.contains("filename*=UTF-8''%C3%89t%C3%A9%20talk.mp3"), "{disposition}");
    assert_eq!(res.bytes().await.unwrap().as_ref(), output.as_slice());

    // The original service's route gives the same bytes.
    let res = c.http.get(c.url(&format!("/download?fid={id}"))).bearer_auth(&ann).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), output.len());

    // A range across the chunk boundary.
    let (start, end) = (layout::CHUNK_SIZE - 10, layout::CHUNK_SIZE + 9);
    let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&ann).header("range", format!("bytes={start}-{end}")).send().await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["content-range"], format!("bytes {start}-{end}/{}", output.len()).as_str());
    assert_eq!(res.bytes().await.unwrap().as_ref(), &output[start..=end]);
    let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&ann).header("range", "bytes=-100").send().await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &output[output.len() - 100..]);
    let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&ann).header("range", "bytes=999999999-").send().await.unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], format!("bytes */{}", output.len()).as_str());
    // Conditional request.
    let res = c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&ann).header("if-none-match", "\"abc123\"").send().await.unwrap();
    assert_eq!(res.status(), 304);
    // Others still get 404.
    let bob = c.new_user("bob@example.com").await;
    error_body(c.http.get(c.url(&format!("/jobs/{id}/audio"))).bearer_auth(&bob).send().await.unwrap(), 404).await;
}

/// A gateway instance's end, with its peak memory.
fn is_gateway_finish(line: &str) -> bool {
    line.contains("instance finished") && line.contains("component=gateway")
}

/// Peak linear memory the host logged for gateway instances.
fn gateway_peak_memory(log: &str) -> usize {
    log.lines()
        .filter(|l| is_gateway_finish(l))
        .filter_map(|l| l.split("peak_memory_bytes=").nth(1)?.split_whitespace().next()?.parse().ok())
        .max()
        .expect("the host logs the peak memory of each gateway instance")
}

#[tokio::test]
async fn a_200_mib_streamed_upload_keeps_component_memory_bounded() {
    const MIB: usize = 1 << 20;
    const SIZE_MIB: usize = 200;
    // Each instance's peak memory is logged at debug level.
    let env = vec![("MP3EDGE_LOG".to_string(), "info,spin_host::http_trigger=debug".to_string())];
    let p = Platform::start_with(PlatformOptions { env, ..kv_on_redis() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("big@example.com").await;
    // Generated on the fly, never held whole by the test either.
    let stream = futures::stream::iter(0..SIZE_MIB).map(|i| Ok::<_, std::io::Error>(vec![(i % 251) as u8; MIB]));
    let res = c
        .http
        .post(c.url("/upload?filename=big.mp4"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let id = accepted(res).await["job_id"].as_str().unwrap().to_string();
    let mut redis = p.redis().connect().await;
    let job = job_model::Job::from_json(&redis.get::<_, Vec<u8>>(layout::job_key(&id)).await.unwrap()).unwrap();
    assert_eq!(job.source.size, (SIZE_MIB * MIB) as u64);
    assert_eq!(job.source.chunks, SIZE_MIB as u32);
    for n in [0u32, 117, 199] {
        let chunk: Vec<u8> = redis.get(layout::source_chunk_key(&id, n)).await.unwrap();
        assert_eq!(chunk, vec![(n as usize % 251) as u8; MIB], "chunk {n}");
    }
    let log = p.log_when(|log| log.lines().any(is_gateway_finish)).await;
    let peak = gateway_peak_memory(&log);
    assert!(peak < 24 * MIB, "gateway peak memory {peak} bytes for a {SIZE_MIB} MiB upload");
}
