//! Signed download links through the real host and components: made by `POST /jobs/{id}/link`
//! for the owner of a finished job, they download (ranges too) without a bearer header until
//! they expire; an altered, expired or other job's link is 403, and a deleted job's is 404.

use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

async fn link(c: &Client, token: &str, id: &str) -> reqwest::Response {
    c.http.post(c.url(&format!("/jobs/{id}/link"))).bearer_auth(token).send().await.unwrap()
}

async fn made(c: &Client, token: &str, id: &str) -> (String, u64) {
    let res = link(c, token, id).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    (body["url"].as_str().unwrap().to_string(), body["expires_at"].as_u64().unwrap())
}

#[tokio::test]
async fn signed_links_download_without_a_token_until_they_expire_and_only_for_their_job() {
    let options = PlatformOptions {
        key_value_on_redis: true,
        variables: [("download_link_secs".to_string(), "3".to_string())].into(),
        ..Default::default()
    };
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let owner = c.new_user("linker@example.com").await;
    let other = c.new_user("stranger@example.com").await;
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let a = c.upload_file(&owner, &fixture.path, fixture.content_type, "format=mp3").await;
    let b = c.upload_file(&owner, &fixture.path, fixture.content_type, "format=wav").await;

    // Only the owner, and only once it is done.
    let not_done = link(&c, &owner, &a).await;
    if not_done.status() != 200 {
        assert_eq!(error_body(not_done, 409).await["error"], "not ready");
    }
    for id in [&a, &b] {
        assert_eq!(c.wait_for_job(&owner, id, JOB_TIMEOUT).await["status"], "done");
    }
    error_body(link(&c, &other, &a).await, 404).await;
    error_body(c.http.post(c.url(&format!("/jobs/{a}/link"))).send().await.unwrap(), 401).await;

    let (url, expires_at) = made(&c, &owner, &a).await;
    assert!(url.starts_with(&format!("/jobs/{a}/audio?expires={expires_at}&sig=")), "{url}");
    let (_, with_token) = c.download(&owner, &a).await;
    let anonymous = reqwest::Client::new();
    let res = anonymous.get(c.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/mpeg");
    assert_eq!(res.bytes().await.unwrap().to_vec(), with_token);
    let res = anonymous.get(c.url(&url)).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().len(), 100);
    assert_eq!(anonymous.head(c.url(&url)).send().await.unwrap().status(), 200);

    // Altered: the signature, the expiry, or another job's path.
    let sig = url.split("sig=").nth(1).unwrap().to_string();
    let flipped = format!("{}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    for bad in [
        url.replace(&sig, &flipped),
        url.replace(&format!("expires={expires_at}"), &format!("expires={}", expires_at + 3600)),
        url.replace(&a, &b),
        format!("/jobs/{a}/audio?expires=soon&sig={sig}"),
        format!("/jobs/{a}/audio?expires={expires_at}&sig=short"),
    ] {
        let body = error_body(anonymous.get(c.url(&bad)).send().await.unwrap(), 403).await;
        assert_eq!(body["error"], "forbidden", "{bad}");
    }

    // Expired after its lifetime (3 s here).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let body = error_body(anonymous.get(c.url(&url)).send().await.unwrap(), 403).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");

    // Replayed after the job is deleted: gone.
    let (fresh, _) = made(&c, &owner, &b).await;
    assert_eq!(anonymous.get(c.url(&fresh)).send().await.unwrap().status(), 200);
    assert_eq!(c.http.delete(c.url(&format!("/jobs/{b}"))).bearer_auth(&owner).send().await.unwrap().status(), 204);
    error_body(anonymous.get(c.url(&fresh)).send().await.unwrap(), 404).await;
}
