//! A user's own password and the administrators' paged user list, through the real host and
//! the auth component.

use e2e_tests::*;

#[tokio::test]
async fn a_user_changes_their_password_proving_the_current_one() {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("pw@example.com").await;
    let put = |body: serde_json::Value, content_type: &'static str, token: Option<String>| {
        let mut req = c.http.put(c.url("/users/me/password")).header("content-type", content_type).body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let change = |current: &str, new: &str| serde_json::json!({ "current_password": current, "new_password": new });
    error_body(put(change("user-password-1", "new-password-22"), "application/json", None).await.unwrap(), 401).await;
    let wrong = error_body(put(change("not-it-at-all", "new-password-22"), "application/json", Some(token.clone())).await.unwrap(), 403).await;
    assert_eq!(wrong["error"], "wrong password");
    for weak in ["password", "        x", "short"] {
        let body = error_body(put(change("user-password-1", weak), "application/json", Some(token.clone())).await.unwrap(), 400).await;
        assert_eq!(body["error"], "invalid password", "{weak}");
    }
    error_body(put(serde_json::json!({"new_password": "x"}), "application/json", Some(token.clone())).await.unwrap(), 400).await;
    error_body(put(change("user-password-1", "new-password-22"), "text/plain", Some(token.clone())).await.unwrap(), 415).await;
    error_body(c.http.post(c.url("/users/me/password")).bearer_auth(&token).send().await.unwrap(), 405).await;
    let res = put(change("user-password-1", "new-password-22"), "application/json", Some(token.clone())).await.unwrap();
    assert_eq!(res.status(), 200);
    // A new session for the page that made the change; the one it used has ended.
    let renewed = res.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    error_body(c.http.get(c.url("/users/me")).bearer_auth(&token).send().await.unwrap(), 401).await;
    assert_eq!(c.http.get(c.url("/users/me")).bearer_auth(&renewed).send().await.unwrap().status(), 200);
    let old = c.http.post(c.url("/login")).basic_auth("pw@example.com", Some("user-password-1")).send().await.unwrap();
    assert_eq!(old.status(), 401);
    c.login("pw@example.com", "new-password-22").await;
}

#[tokio::test]
async fn administrators_page_through_the_users() {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    for n in 0..4 {
        c.new_user(&format!("page{n}@example.com")).await;
    }
    let admin = c.admin_token().await;
    let page = |query: &'static str| c.http.get(c.url(&format!("/users{query}"))).bearer_auth(&admin).send();
    let all: Vec<serde_json::Value> = page("").await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), 5);
    let first: Vec<serde_json::Value> = page("?limit=2").await.unwrap().json().await.unwrap();
    let second: Vec<serde_json::Value> = page("?limit=2&offset=2").await.unwrap().json().await.unwrap();
    let last: Vec<serde_json::Value> = page("?limit=2&offset=4").await.unwrap().json().await.unwrap();
    assert_eq!([first.len(), second.len(), last.len()], [2, 2, 1]);
    let emails: Vec<&serde_json::Value> = first.iter().chain(&second).chain(&last).map(|u| &u["email"]).collect();
    assert_eq!(emails, all.iter().map(|u| &u["email"]).collect::<Vec<_>>());
    for bad in ["?limit=0", "?limit=201", "?offset=-1", "?limit=x"] {
        error_body(c.http.get(c.url(&format!("/users{bad}"))).bearer_auth(&admin).send().await.unwrap(), 400).await;
    }
    let user = c.login("page0@example.com", "user-password-1").await;
    error_body(c.http.get(c.url("/users")).bearer_auth(&user).send().await.unwrap(), 403).await;
}

#[tokio::test]
async fn presets_are_saved_on_the_user_checked_as_uploads_are_and_bounded() {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let token = c.new_user("presets@example.com").await;
    let other = c.new_user("other-presets@example.com").await;
    let url = |name: &str| c.url(&format!("/users/me/presets/{name}"));
    let put = |name: &str, body: serde_json::Value| c.http.put(url(name)).bearer_auth(&token).json(&body).send();
    let c = &c;
    let list = |token: String| async move {
        let res = c.http.get(c.url("/users/me/presets")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Vec<serde_json::Value>>().await.unwrap()
    };

    let res = put("Podcast%20mono", serde_json::json!({"params": {"format": "mp3", "bitrate": 64, "channels": "1", "artist": "Me"}})).await.unwrap();
    assert_eq!(res.status(), 200);
    let saved: serde_json::Value = res.json().await.unwrap();
    assert_eq!(saved["name"], "Podcast mono");
    assert_eq!(saved["params"], serde_json::json!({"artist": "Me", "bitrate": "64", "channels": "1", "format": "mp3"}));
    // Replaced as a whole under the same name; listed by name; the other user sees none.
    assert_eq!(put("Podcast%20mono", serde_json::json!({"params": {"format": "flac", "level": "8"}})).await.unwrap().status(), 200);
    assert_eq!(put("Archive", serde_json::json!({"params": {"format": "wav", "rate": "48000"}})).await.unwrap().status(), 200);
    let presets = list(token.clone()).await;
    let names: Vec<&str> = presets.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Archive", "Podcast mono"]);
    assert_eq!(presets[1]["params"], serde_json::json!({"format": "flac", "level": "8"}));
    assert!(list(other.clone()).await.is_empty());

    // Refused with the reason an upload would give, nothing stored.
    let refusals = [
        ("x", serde_json::json!({"params": {"colour": "blue"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"bitrate": "abc"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"bitrate": "192", "vbr": "2"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"true_peak": "-1"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"start": "20", "end": "10"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"title": "a\u{202e}b"}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"format": {"nested": 1}}}), "invalid preset"),
        ("x", serde_json::json!({"params": {}}), "invalid preset"),
        ("x", serde_json::json!({"params": {"format": "mp3"}, "extra": 1}), "invalid body"),
        ("x", serde_json::json!(["format", "mp3"]), "invalid body"),
        (&"n".repeat(65), serde_json::json!({"params": {"format": "mp3"}}), "invalid preset name"),
        ("%20lead", serde_json::json!({"params": {"format": "mp3"}}), "invalid preset name"),
        ("a%0Ab", serde_json::json!({"params": {"format": "mp3"}}), "invalid preset name"),
        ("a%2Fb", serde_json::json!({"params": {"format": "mp3"}}), "invalid preset name"),
    ];
    for (name, body, error) in refusals {
        let refused = error_body(put(name, body.clone()).await.unwrap(), 400).await;
        assert_eq!(refused["error"], error, "{name} {body}: {refused}");
    }
    let detail = error_body(put("x", serde_json::json!({"params": {"colour": "blue"}})).await.unwrap(), 400).await;
    assert!(detail["detail"].as_str().unwrap().starts_with("unknown option \"colour\"; the options are format, bitrate,"), "{detail}");
    let text = c.http.put(url("x")).bearer_auth(&token).header("content-type", "text/plain").body("{}").send().await.unwrap();
    error_body(text, 415).await;
    let huge = serde_json::json!({"params": {"title": "t".repeat(20_000)}});
    error_body(put("x", huge).await.unwrap(), 413).await;
    error_body(c.http.put(url("x")).json(&serde_json::json!({"params": {"format": "mp3"}})).send().await.unwrap(), 401).await;
    error_body(c.http.get(c.url("/users/me/presets")).send().await.unwrap(), 401).await;
    error_body(c.http.post(url("x")).bearer_auth(&token).send().await.unwrap(), 405).await;
    assert_eq!(list(token.clone()).await.len(), 2);

    // Deleted once; another user's preset of the same name is not theirs to delete.
    error_body(c.http.delete(url("Archive")).bearer_auth(&other).send().await.unwrap(), 404).await;
    assert_eq!(c.http.delete(url("Archive")).bearer_auth(&token).send().await.unwrap().status(), 204);
    let gone = error_body(c.http.delete(url("Archive")).bearer_auth(&token).send().await.unwrap(), 404).await;
    assert_eq!(gone["detail"], "no preset named \"Archive\"");

    // Sixty saved at once: exactly fifty are kept (one existed), and a kept one can still change.
    let saves = (0..60).map(|n| put(&format!("p{n:02}"), serde_json::json!({"params": {"format": "mp3"}})));
    let statuses: Vec<u16> = futures::future::join_all(saves).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 49, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), 11, "{statuses:?}");
    assert_eq!(list(token.clone()).await.len(), 50);
    let full = error_body(put("one-more", serde_json::json!({"params": {"format": "mp3"}})).await.unwrap(), 409).await;
    assert_eq!(full["detail"], "a user keeps at most 50 presets; delete one first");
    assert_eq!(put("Podcast%20mono", serde_json::json!({"params": {"format": "opus"}})).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_users_list_says_truthfully_who_is_locked_and_what_they_hold() {
    let p = Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    c.new_user("locked@example.com").await;
    c.new_user("free@example.com").await;
    let admin = c.admin_token().await;
    let users = || async {
        let res = c.http.get(c.url("/users")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Vec<serde_json::Value>>().await.unwrap()
    };
    let user = |list: &[serde_json::Value], email: &str| list.iter().find(|u| u["email"] == email).cloned().unwrap();
    let before = users().await;
    for u in &before {
        assert_eq!(u["locked"], false, "{u}");
        assert_eq!(u["locked_until"], serde_json::Value::Null, "{u}");
        assert_eq!(u["used_bytes"], 0, "{u}");
        assert!(u["quota_bytes"].is_u64(), "{u}");
    }
    // Wrong passwords until the log-in is throttled.
    let mut throttled = false;
    for _ in 0..30 {
        let res = c.http.post(c.url("/login")).basic_auth("locked@example.com", Some("not-the-password")).send().await.unwrap();
        if res.status() == 429 {
            throttled = true;
            break;
        }
        assert_eq!(res.status(), 401);
    }
    assert!(throttled, "30 wrong passwords were never throttled");
    let after = users().await;
    let locked = user(&after, "locked@example.com");
    assert_eq!(locked["locked"], true, "{locked}");
    assert!(locked["locked_until"].as_u64().unwrap() > locked["created_at"].as_u64().unwrap(), "{locked}");
    assert_eq!(user(&after, "free@example.com")["locked"], false);
    // Unlocking says so at once, in its answer and in the list.
    let res = c
        .http
        .patch(c.url("/users/locked%40example.com"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"unlock": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let unlocked: serde_json::Value = res.json().await.unwrap();
    assert_eq!(unlocked["locked"], false, "{unlocked}");
    assert_eq!(user(&users().await, "locked@example.com")["locked"], false);
}
