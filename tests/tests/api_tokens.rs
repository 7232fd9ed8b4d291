//! Personal API tokens and the end of sessions, through the real host, the auth and gateway
//! components and Redis: tokens created, listed, used on every kind of route, revoked, expired,
//! refused where only a password session may act, killed by deactivation (for good), capped
//! under parallel creation and unforgeable by altering a real one; session tokens ended by a
//! password change (the answer's new one works), by reactivation and by `POST /logout`.

use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use serde_json::{Value, json};
use sha2::Digest;

const PASSWORD: &str = "user-password-1";

fn no_worker() -> Platform {
    Platform::start_with(PlatformOptions { no_worker: true, ..Default::default() }).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn create_token(c: &Client, bearer: &str, body: Value) -> reqwest::Response {
    c.http.post(c.url("/users/me/tokens")).bearer_auth(bearer).json(&body).send().await.unwrap()
}

/// Creates a token (201 asserted) and returns its answer.
async fn new_token(c: &Client, bearer: &str, name: &str) -> Value {
    let res = create_token(c, bearer, json!({ "name": name })).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn list(c: &Client, bearer: &str) -> Vec<Value> {
    let res = c.http.get(c.url("/users/me/tokens")).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The status of `GET path` with `bearer`.
async fn get_status(c: &Client, path: &str, bearer: &str) -> u16 {
    c.http.get(c.url(path)).bearer_auth(bearer).send().await.unwrap().status().as_u16()
}

async fn me(c: &Client, bearer: &str) -> reqwest::Response {
    c.http.get(c.url("/users/me")).bearer_auth(bearer).send().await.unwrap()
}

async fn validate(c: &Client, bearer: &str) -> reqwest::Response {
    c.http.post(c.url("/validate")).bearer_auth(bearer).send().await.unwrap()
}

/// A 401 for `bearer` on an auth route and on a gateway route; the auth route's error body.
async fn refused_everywhere(c: &Client, bearer: &str) -> Value {
    assert_eq!(get_status(c, "/jobs", bearer).await, 401, "the gateway still takes it");
    error_body(me(c, bearer).await, 401).await
}

fn sqlite(p: &Platform) -> rusqlite::Connection {
    rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_db.db")).unwrap()
}

fn users_cli(p: &Platform, args: &[&str], stdin: &str) {
    let out = p.users_command(args, stdin);
    assert!(out.status.success(), "mp3edge users {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn tokens_are_created_shown_once_listed_used_and_revoked_at_once() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("tok@example.com").await;
    assert!(list(&c, &session).await.is_empty());

    let before = now();
    let res = create_token(&c, &session, json!({ "name": "  nightly backup ", "expires_in_days": 30 })).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "expires_at", "id", "name", "token"]);
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mp3e_") && secret.len() == 5 + 43, "{secret}");
    assert!(secret[5..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
    assert!(id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(created["name"], "nightly backup");
    let created_at = created["created_at"].as_u64().unwrap();
    assert!((before..=now()).contains(&created_at));
    assert_eq!(created["expires_at"].as_u64().unwrap(), created_at + 30 * 86400);

    // Only the secret's SHA-256 is kept; the secret is in no column and in no log line.
    let db = sqlite(&p);
    let (hash, email): (String, String) =
        db.query_row("SELECT secret_hash, email FROM api_tokens WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(hash, hex::encode(sha2::Sha256::digest(secret.as_bytes())));
    assert_eq!(email, "tok@example.com");
    let dump: i64 = db
        .query_row("SELECT COUNT(*) FROM api_tokens WHERE instr(id || name || secret_hash, ?1) > 0", [&secret[5..]], |r| r.get(0))
        .unwrap();
    assert_eq!(dump, 0);

    // Listed without the secret, never used yet.
    let listed = list(&c, &session).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], json!({ "id": id, "name": "nightly backup", "created_at": created_at, "expires_at": created_at + 30 * 86400, "last_used_at": null }));

    // It works where a session token does: the auth component and the gateway.
    let mine: Value = me(&c, &secret).await.json().await.unwrap();
    assert_eq!(mine["email"], "tok@example.com");
    assert_eq!(get_status(&c, "/jobs", &secret).await, 200);
    assert_eq!(get_status(&c, "/users/me/presets", &secret).await, 200);
    let claims: Value = validate(&c, &secret).await.json().await.unwrap();
    assert_eq!(claims, json!({ "email": "tok@example.com", "admin": false, "iat": created_at, "exp": created_at + 30 * 86400, "kind": "api_token", "token_id": id }));
    let session_claims: Value = validate(&c, &session).await.json().await.unwrap();
    assert_eq!(session_claims["kind"], "session");

    // last_used_at follows its use (to the second).
    let first_use = list(&c, &session).await[0]["last_used_at"].as_u64().expect("set by the use");
    assert!(first_use >= created_at && first_use <= now(), "{first_use}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_status(&c, "/jobs", &secret).await, 200);
    let second_use = list(&c, &session).await[0]["last_used_at"].as_u64().unwrap();
    assert!(second_use > first_use, "{second_use} after {first_use}");

    // A token without an expiry does not expire.
    let forever = new_token(&c, &session, "forever").await;
    assert_eq!(forever["expires_at"], Value::Null);
    assert_eq!(me(&c, forever["token"].as_str().unwrap()).await.status(), 200);

    // Revoked: refused at once, on both components; a second revocation is a 404.
    let res = c.http.delete(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&session).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let refused = refused_everywhere(&c, &secret).await;
    assert_eq!(refused["error"], "invalid token");
    assert_eq!(refused["detail"], "unknown or revoked API token");
    let again = c.http.delete(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&session).send().await.unwrap();
    assert_eq!(error_body(again, 404).await["error"], "not found");
    let left: Vec<Value> = list(&c, &session).await;
    assert_eq!(left.iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(), ["forever"]);

    // Methods and credentials.
    error_body(c.http.put(c.url("/users/me/tokens")).bearer_auth(&session).send().await.unwrap(), 405).await;
    error_body(c.http.get(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&session).send().await.unwrap(), 405).await;
    error_body(c.http.get(c.url("/users/me/tokens")).send().await.unwrap(), 401).await;
    error_body(c.http.delete(c.url(&format!("/users/me/tokens/{}", forever["id"].as_str().unwrap()))).send().await.unwrap(), 401).await;
    assert!(!p.log().contains(&secret[5..]), "the secret never reaches the log");
}

#[tokio::test]
async fn a_token_uploads_follows_downloads_lists_and_deletes_a_job() {
    let p = Platform::start();
    let c = Client::new(&p);
    let session = c.new_user("script@example.com").await;
    let token = new_token(&c, &session, "ci").await["token"].as_str().unwrap().to_string();
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let job = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    let done = c.wait_for_job(&token, &job, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "done", "{done}");
    let (headers, audio) = c.download(&token, &job).await;
    assert!(headers["content-type"].to_str().unwrap().starts_with("audio/mpeg"));
    assert!(audio.len() > 1000);
    // The same job is the user's, whichever credential made it.
    let listed: Vec<Value> = c.http.get(c.url("/jobs")).bearer_auth(&session).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.iter().map(|j| j["id"].as_str().unwrap()).collect::<Vec<_>>(), [job.as_str()]);
    let by_token: Vec<Value> = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(by_token.len(), 1);
    let link = c.http.post(c.url(&format!("/jobs/{job}/link"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(link.status(), 200);
    let res = c.http.delete(c.url(&format!("/jobs/{job}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get_status(&c, &format!("/jobs/{job}"), &session).await, 404);
}

#[tokio::test]
async fn a_token_cannot_make_tokens_change_the_password_or_sign_out_but_can_revoke_itself() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("limits@example.com").await;
    let created = new_token(&c, &session, "ci").await;
    let token = created["token"].as_str().unwrap();

    let res = create_token(&c, token, json!({ "name": "another" })).await;
    let refused = error_body(res, 403).await;
    assert_eq!(refused["error"], "forbidden");
    assert_eq!(refused["detail"], "an API token cannot create API tokens; sign in with your password (POST /login) and use that session");
    let change = json!({ "current_password": PASSWORD, "new_password": "stolen-password-9" });
    let res = c.http.put(c.url("/users/me/password")).bearer_auth(token).json(&change).send().await.unwrap();
    let refused = error_body(res, 403).await;
    assert_eq!(refused["detail"], "an API token cannot change the password; sign in with your password (POST /login) and use that session");
    // The password is unchanged.
    c.login("limits@example.com", PASSWORD).await;
    let refused = error_body(c.http.post(c.url("/logout")).bearer_auth(token).send().await.unwrap(), 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("DELETE /users/me/tokens/{id}"), "{refused}");
    assert_eq!(list(&c, &session).await.len(), 1, "nothing was created");

    // It may list the tokens and revoke itself.
    assert_eq!(list(&c, token).await.len(), 1);
    let res = c.http.delete(c.url(&format!("/users/me/tokens/{}", created["id"].as_str().unwrap()))).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    refused_everywhere(&c, token).await;
}

#[tokio::test]
async fn an_expired_token_is_refused_and_cleared_by_the_next_creation() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("expiry@example.com").await;
    let created = create_token(&c, &session, json!({ "name": "one day", "expires_in_days": 1 })).await.json::<Value>().await.unwrap();
    let token = created["token"].as_str().unwrap();
    assert_eq!(me(&c, token).await.status(), 200);
    // A day cannot pass in a test: the row is given the expiry a day from now would reach.
    let moved = sqlite(&p)
        .execute("UPDATE api_tokens SET expires_at = ?2 WHERE id = ?1", rusqlite::params![created["id"].as_str().unwrap(), now() as i64 - 1])
        .unwrap();
    assert_eq!(moved, 1);
    let refused = refused_everywhere(&c, token).await;
    assert_eq!(refused["detail"], "this API token has expired; create another one");
    // Still listed (with its past expiry) until the user creates another.
    assert_eq!(list(&c, &session).await.len(), 1);
    new_token(&c, &session, "next").await;
    let names: Vec<String> = list(&c, &session).await.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["next"]);
}

#[tokio::test]
async fn deactivation_ends_tokens_and_sessions_and_reactivation_revives_neither() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("gone@example.com").await;
    let token = new_token(&c, &session, "ci").await["token"].as_str().unwrap().to_string();
    let admin = c.admin_token().await;
    let patch = |active: bool| {
        c.http.patch(c.url("/users/gone%40example.com")).bearer_auth(&admin).json(&json!({ "active": active })).send()
    };
    assert_eq!(patch(false).await.unwrap().status(), 200);
    refused_everywhere(&c, &token).await;
    refused_everywhere(&c, &session).await;
    assert_eq!(patch(true).await.unwrap().status(), 200);
    let token_refused = refused_everywhere(&c, &token).await;
    assert_eq!(token_refused["detail"], "unknown or revoked API token");
    let session_refused = refused_everywhere(&c, &session).await;
    assert!(session_refused["detail"].as_str().unwrap().starts_with("this session has ended"), "{session_refused}");
    let fresh = c.login("gone@example.com", PASSWORD).await;
    assert!(list(&c, &fresh).await.is_empty(), "deactivation deleted the tokens");

    // The same through `mp3edge users disable|enable` at the console, on the running server.
    let token = new_token(&c, &fresh, "ci again").await["token"].as_str().unwrap().to_string();
    assert_eq!(me(&c, &token).await.status(), 200);
    users_cli(&p, &["disable", "gone@example.com"], "");
    refused_everywhere(&c, &token).await;
    users_cli(&p, &["enable", "gone@example.com"], "");
    refused_everywhere(&c, &token).await;
    refused_everywhere(&c, &fresh).await;
    let again = c.login("gone@example.com", PASSWORD).await;
    assert!(list(&c, &again).await.is_empty());
}

#[tokio::test]
async fn a_password_change_ends_every_earlier_session_and_answers_a_new_one() {
    let p = no_worker();
    let c = Client::new(&p);
    let here = c.new_user("pw@example.com").await;
    let elsewhere = c.login("pw@example.com", PASSWORD).await;
    let token = new_token(&c, &here, "ci").await["token"].as_str().unwrap().to_string();
    let change = json!({ "current_password": PASSWORD, "new_password": "new-password-22" });
    let res = c.http.put(c.url("/users/me/password")).bearer_auth(&here).json(&change).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let renewed = body["token"].as_str().unwrap().to_string();
    for old in [&here, &elsewhere] {
        let refused = refused_everywhere(&c, old).await;
        assert_eq!(refused["detail"], "this session has ended: the password was changed or the account deactivated since; sign in again");
    }
    // The answer's token is a session like a log-in's, on both components.
    assert_eq!(me(&c, &renewed).await.status(), 200);
    assert_eq!(get_status(&c, "/jobs", &renewed).await, 200);
    let claims: Value = validate(&c, &renewed).await.json().await.unwrap();
    assert_eq!((claims["email"].as_str(), claims["kind"].as_str()), (Some("pw@example.com"), Some("session")));
    // API tokens are not sessions: they stay until revoked (the page lists them).
    assert_eq!(me(&c, &token).await.status(), 200);

    // A password set at the console (`mp3edge users passwd`) ends the sessions too.
    users_cli(&p, &["passwd", "pw@example.com"], "console-password-3\n");
    refused_everywhere(&c, &renewed).await;
    c.login("pw@example.com", "console-password-3").await;
}

#[tokio::test]
async fn logout_ends_the_session_it_is_sent_with_and_no_other() {
    let p = no_worker();
    let c = Client::new(&p);
    let first = c.new_user("out@example.com").await;
    let second = c.login("out@example.com", PASSWORD).await;
    assert_ne!(first, second);
    error_body(c.http.post(c.url("/logout")).send().await.unwrap(), 401).await;
    error_body(c.http.get(c.url("/logout")).bearer_auth(&first).send().await.unwrap(), 405).await;
    let res = c.http.post(c.url("/logout")).bearer_auth(&first).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let refused = refused_everywhere(&c, &first).await;
    assert_eq!(refused["detail"], "this session has ended: it was signed out; sign in again");
    error_body(validate(&c, &first).await, 401).await;
    error_body(c.http.post(c.url("/logout")).bearer_auth(&first).send().await.unwrap(), 401).await;
    assert_eq!(me(&c, &second).await.status(), 200, "the other session goes on");
    assert_eq!(get_status(&c, "/jobs", &second).await, 200);
    // Kept until the token would have expired anyway.
    let (count, expires_at): (i64, i64) =
        sqlite(&p).query_row("SELECT COUNT(*), MAX(expires_at) FROM ended_sessions", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(count, 1);
    assert!((expires_at as u64).abs_diff(now() + 86400) < 60, "{expires_at}");
}

#[tokio::test]
async fn other_users_tokens_are_404_and_administrators_list_and_revoke_any() {
    let p = no_worker();
    let c = Client::new(&p);
    let owner = c.new_user("owner@example.com").await;
    let other = c.new_user("other@example.com").await;
    let created = new_token(&c, &owner, "owner's").await;
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let theirs = c.http.delete(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&other).send().await.unwrap();
    assert_eq!(error_body(theirs, 404).await["detail"], format!("no API token {id}"));
    assert!(list(&c, &other).await.is_empty());
    assert_eq!(me(&c, token).await.status(), 200, "untouched");
    for bad in ["0".repeat(24), "0F".repeat(12), "xyz".into()] {
        error_body(c.http.delete(c.url(&format!("/users/me/tokens/{bad}"))).bearer_auth(&owner).send().await.unwrap(), 404).await;
    }

    let admin = c.admin_token().await;
    let tokens_of = |email: &str, bearer: &str| c.http.get(c.url(&format!("/users/{email}/tokens"))).bearer_auth(bearer.to_string()).send();
    let listed: Vec<Value> = tokens_of("owner%40example.com", &admin).await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0].get("token"), None, "no secret: {}", listed[0]);
    error_body(tokens_of("owner%40example.com", &other).await.unwrap(), 403).await;
    error_body(tokens_of("owner%40example.com", token).await.unwrap(), 403).await;
    error_body(tokens_of("nobody%40example.com", &admin).await.unwrap(), 404).await;
    error_body(c.http.post(c.url("/users/owner%40example.com/tokens")).bearer_auth(&admin).send().await.unwrap(), 405).await;
    // An administrator's own API token acts as the administrator.
    let admin_token = new_token(&c, &admin, "admin script").await["token"].as_str().unwrap().to_string();
    assert_eq!(tokens_of("owner%40example.com", &admin_token).await.unwrap().status(), 200);

    let revoke = |email: &str, id: &str, bearer: &str| c.http.delete(c.url(&format!("/users/{email}/tokens/{id}"))).bearer_auth(bearer.to_string()).send();
    error_body(revoke("owner%40example.com", id, &other).await.unwrap(), 403).await;
    error_body(revoke("other%40example.com", id, &admin).await.unwrap(), 404).await;
    assert_eq!(revoke("owner%40example.com", id, &admin).await.unwrap().status(), 204);
    refused_everywhere(&c, token).await;
    error_body(revoke("owner%40example.com", id, &admin).await.unwrap(), 404).await;
    assert!(list(&c, &owner).await.is_empty());
}

#[tokio::test]
async fn malformed_creations_are_refused_precisely_and_store_nothing() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("bad@example.com").await;
    let raw = |content_type: &'static str, body: String| {
        c.http.post(c.url("/users/me/tokens")).bearer_auth(&session).header("content-type", content_type).body(body).send()
    };
    let cases: Vec<(String, &str, &str)> = vec![
        ("{\"name\": ".into(), "invalid body", "expected {\"name\": \"…\", \"expires_in_days\"?: 1–3650}: "),
        ("[]".into(), "invalid body", "expected "),
        ("{}".into(), "invalid body", "expected {\"name\": \"…\", \"expires_in_days\"?: 1–3650}: missing field `name`"),
        (json!({"name": 5}).to_string(), "invalid body", "expected "),
        (json!({"name": "x", "scope": "all"}).to_string(), "invalid body", "expected "),
        (json!({"name": ""}).to_string(), "invalid name", "the name is empty"),
        (json!({"name": "   "}).to_string(), "invalid name", "the name is empty"),
        (json!({"name": "x".repeat(101)}).to_string(), "invalid name", "the name has 101 characters; at most 100 are allowed"),
        (json!({"name": "a\nb"}).to_string(), "invalid name", "the name contains the control or formatting character U+000A"),
        (json!({"name": "a\u{0}b"}).to_string(), "invalid name", "the name contains the control or formatting character U+0000"),
        (json!({"name": "evil\u{202e}txt"}).to_string(), "invalid name", "the name contains the control or formatting character U+202E"),
        (json!({"name": "x", "expires_in_days": 0}).to_string(), "invalid expiry", "expires_in_days must be a whole number of days from 1 to 3650"),
        (json!({"name": "x", "expires_in_days": 3651}).to_string(), "invalid expiry", "expires_in_days must be"),
        (json!({"name": "x", "expires_in_days": -1}).to_string(), "invalid expiry", "expires_in_days must be"),
        (json!({"name": "x", "expires_in_days": 1.5}).to_string(), "invalid expiry", "expires_in_days must be"),
        (json!({"name": "x", "expires_in_days": "30"}).to_string(), "invalid expiry", "expires_in_days must be"),
    ];
    for (body, error, detail) in cases {
        let refused = error_body(raw("application/json", body.clone()).await.unwrap(), 400).await;
        assert_eq!(refused["error"], error, "{body}: {refused}");
        assert!(refused["detail"].as_str().unwrap().starts_with(detail), "{body}: {refused}");
    }
    error_body(raw("text/plain", json!({"name": "x"}).to_string()).await.unwrap(), 415).await;
    error_body(raw("application/json", json!({"name": "x".repeat(10_000)}).to_string()).await.unwrap(), 413).await;
    assert!(list(&c, &session).await.is_empty(), "nothing stored");
    // The limits themselves are fine.
    let longest = create_token(&c, &session, json!({ "name": "é".repeat(100), "expires_in_days": 3650 })).await;
    assert_eq!(longest.status(), 201);
    let shortest = create_token(&c, &session, json!({ "name": "x", "expires_in_days": null })).await;
    assert_eq!(shortest.json::<Value>().await.unwrap()["expires_at"], Value::Null);
}

#[tokio::test]
async fn parallel_creations_at_the_cap_keep_exactly_fifty() {
    // All ten in the auth component at once (it takes 4 by default).
    let args = vec!["--component-concurrency".into(), "auth=10".into()];
    let p = Platform::start_with(PlatformOptions { no_worker: true, args, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let session = c.new_user("cap@example.com").await;
    for n in 0..45 {
        new_token(&c, &session, &format!("t{n}")).await;
    }
    let statuses = futures::future::join_all((0..10).map(|n| {
        let (c, session) = (&c, &session);
        async move {
            let res = create_token(c, session, json!({ "name": format!("parallel {n}") })).await;
            let status = res.status().as_u16();
            if status == 409 {
                let refused = error_body(res, 409).await;
                assert_eq!(refused["error"], "too many tokens");
                assert_eq!(refused["detail"], "a user holds at most 50 API tokens; revoke one first (DELETE /users/me/tokens/{id})");
            }
            status
        }
    }))
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
    let tokens = list(&c, &session).await;
    assert_eq!(tokens.len(), 50);
    let id = tokens[0]["id"].as_str().unwrap();
    assert_eq!(c.http.delete(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&session).send().await.unwrap().status(), 204);
    new_token(&c, &session, "room again").await;
    error_body(create_token(&c, &session, json!({ "name": "one too many" })).await, 409).await;
}

#[tokio::test]
async fn altered_copies_of_a_real_token_are_refused() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("forge@example.com").await;
    let token = new_token(&c, &session, "real").await["token"].as_str().unwrap().to_string();
    let body = &token[5..];
    let flip = |c: char| if c == 'A' { 'B' } else { 'A' };
    let first_flipped = format!("mp3e_{}{}", flip(body.chars().next().unwrap()), &body[1..]);
    let last_flipped = format!("{}{}", &token[..token.len() - 1], flip(token.chars().last().unwrap()));
    let forgeries = [
        token[..token.len() - 1].to_string(),
        format!("{token}A"),
        format!("A{token}"),
        token[1..].to_string(),
        body.to_string(),
        format!("MP3E_{body}"),
        format!("mp3e-{body}"),
        first_flipped,
        last_flipped,
        format!("mp3e_{}", "A".repeat(43)),
        format!("{token}{token}"),
    ];
    for forged in &forgeries {
        assert_ne!(forged, &token);
        let refused = error_body(me(&c, forged).await, 401).await;
        assert_eq!(refused["error"], "invalid token", "{forged}: {refused}");
        assert_eq!(get_status(&c, "/jobs", forged).await, 401, "{forged}");
    }
    assert_eq!(me(&c, &token).await.status(), 200);
    assert_eq!(list(&c, &session).await[0]["name"], "real");
}

#[tokio::test]
async fn open_event_streams_end_when_their_token_is_revoked_or_their_session_signed_out() {
    let p = no_worker();
    let c = Client::new(&p);
    let session = c.new_user("live@example.com").await;
    let watcher = c.login("live@example.com", PASSWORD).await;
    let created = new_token(&c, &session, "watcher").await;
    let (id, token) = (created["id"].as_str().unwrap().to_string(), created["token"].as_str().unwrap().to_string());
    // No worker: the job stays queued and its streams stay open.
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let job = c.upload_file(&session, &fixture.path, fixture.content_type, "format=mp3").await;
    let follow = |query: String| c.http.get(c.url(&format!("/jobs/{job}/events{query}"))).send();
    // The API token in the query (as EventSource sends it), the session in the header.
    let by_token = follow(format!("?access_token={token}")).await.unwrap();
    let by_session = c.http.get(c.url(&format!("/jobs/{job}/events"))).bearer_auth(&watcher).send().await.unwrap();
    assert_eq!((by_token.status().as_u16(), by_session.status().as_u16()), (200, 200));
    let by_token = tokio::spawn(events_until(by_token, "event: revoked", Duration::from_secs(10)));
    let by_session = tokio::spawn(events_until(by_session, "event: revoked", Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = c.http.delete(c.url(&format!("/users/me/tokens/{id}"))).bearer_auth(&session).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(c.http.post(c.url("/logout")).bearer_auth(&watcher).send().await.unwrap().status(), 204);
    for (who, stream) in [("API token", by_token), ("session", by_session)] {
        let (seen, ended) = stream.await.unwrap();
        let seen = seen.unwrap_or_else(|| panic!("the {who}'s stream went on after it ended"));
        assert!(seen.contains("event: queued"), "{seen}");
        assert!(seen.contains("your session or token ended"), "{seen}");
        assert!(ended, "the {who}'s stream ended: {seen}");
    }
    // The session that revoked and the job are untouched.
    assert_eq!(c.job(&session, &job).await["status"], "queued");
}
