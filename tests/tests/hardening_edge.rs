//! Issue 27's findings against the edge and the notifications, each as the attack it was,
//! through the real host, components, worker and Redis, now refused with a clear error and
//! nothing lost or left behind: a webhook host that IDNA turns into a loopback name, parallel
//! retries of one failed job, log-in failures from many addresses, a deactivated owner's links
//! and open event streams, parallel uploads near the quota, tags with controls and bidi
//! overrides, a `DELETE` that fails half-way and dead letters that outlived their job.

use e2e_tests::*;
use redis::AsyncCommands;

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
