//! Issue 9's findings against the auth component, through the real host and components:
//! parallel log-ins cannot pass the throttling limits, an attacker's failures do not lock the
//! owner out from another client, administrators manage and unlock accounts, tokens follow the
//! user's current state, a forged `spin-client-addr` or `x-forwarded-for` does not move a client
//! out of its throttling, weak accounts are refused, IPv6 forms of internal addresses are
//! refused as callbacks, and expired throttling rows are purged. And issue 27's: failures from
//! many addresses do not lock the owner out (their known address and their devices are not
//! held to the account's ceiling), and password changes are throttled like log-ins.
//!
//! Different clients are different loopback source addresses (127.0.0.2, 127.0.0.3, ...).

use e2e_tests::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// A platform without a worker (nothing here converts), with extra variables.
fn platform(variables: &[(&str, &str)]) -> Platform {
    let mut options = PlatformOptions { no_worker: true, ..Default::default() };
    for (name, value) in variables {
        options.variables.insert(name.to_string(), value.to_string());
    }
    Platform::start_with(options).expect("platform starts")
}

/// An HTTP client whose connections come from `source` (a loopback address).
fn client_from(p: &Platform, source: &str) -> Client {
    let http = reqwest::Client::builder().local_address(source.parse::<IpAddr>().unwrap()).build().unwrap();
    Client { http, base: p.base_url.clone() }
}

async fn login(c: &Client, email: &str, password: &str) -> reqwest::Response {
    c.http.post(c.url("/login")).basic_auth(email, Some(password)).send().await.unwrap()
}

async fn login_status(c: &Client, email: &str, password: &str) -> u16 {
    login(c, email, password).await.status().as_u16()
}

/// The Retry-After of a 429 (checking the JSON error too).
async fn throttled(res: reqwest::Response) -> u64 {
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .expect("a 429 has Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    error_body(res, 429).await;
    retry
}

async fn create_user(c: &Client, admin: &str, email: &str, password: &str, is_admin: bool) -> reqwest::Response {
    c.http
        .post(c.url("/users"))
        .bearer_auth(admin)
        .json(&json!({ "email": email, "password": password, "admin": is_admin }))
        .send()
        .await
        .unwrap()
}

async fn patch_user(c: &Client, token: &str, email: &str, body: serde_json::Value) -> reqwest::Response {
    c.http.patch(c.url(&format!("/users/{email}"))).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn validate(c: &Client, token: &str) -> reqwest::Response {
    c.http.post(c.url("/validate")).bearer_auth(token).send().await.unwrap()
}

fn login_failure_rows(p: &Platform) -> Vec<(String, i64, i64)> {
    let db = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_db.db")).unwrap();
    let mut stmt = db.prepare("SELECT subject, failures, window_start FROM login_failures ORDER BY subject").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test]
async fn parallel_wrong_logins_do_not_pass_the_limits() {
    let p = platform(&[]);
    let c = client_from(&p, "127.0.0.2");
    // One account from one client: 5 failures before the delays start.
    let statuses = join_all((0..45).map(|_| login_status(&c, ADMIN_EMAIL, "wrong-password"))).await;
    let evaluated = statuses.iter().filter(|s| **s != 429).count();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(evaluated <= 5, "{evaluated} of 45 parallel wrong logins were evaluated (limit 5): {statuses:?}");
    assert!(evaluated >= 1);
    // Many accounts from the same client: 20 failures in all for the client.
    let statuses = join_all((0..45).map(|i| {
        let c = &c;
        async move { login_status(c, &format!("ghost{i}@example.com"), "wrong-password").await }
    }))
    .await;
    let evaluated_too = statuses.iter().filter(|s| **s != 429).count();
    assert!(evaluated + evaluated_too <= 20, "{} wrong logins from one client were evaluated (limit 20): {statuses:?}", evaluated + evaluated_too);
    // What was refused was not counted: exactly the evaluated attempts are recorded.
    let rows = login_failure_rows(&p);
    let client_row = rows.iter().find(|(s, ..)| s == "client:127.0.0.2").expect("the client's row");
    assert_eq!(client_row.1 as usize, evaluated + evaluated_too, "{rows:?}");
}

#[tokio::test]
async fn an_attackers_failures_do_not_lock_the_owner_out_from_another_client() {
    let p = platform(&[]);
    let attacker = client_from(&p, "127.0.0.2");
    let owner = client_from(&p, "127.0.0.1");
    for _ in 0..5 {
        error_body(login(&attacker, ADMIN_EMAIL, "wrong-password").await, 401).await;
    }
    // The attacker's pair is slowed down (even with the right password)...
    let retry = throttled(login(&attacker, ADMIN_EMAIL, "wrong-password").await).await;
    assert!((1..=30).contains(&retry), "first delay is login_delay_secs (30): {retry}");
    throttled(login(&attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await).await;
    // ...the owner, from another client, is not.
    let res = login(&owner, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // And the owner's own failures from there start from zero.
    for _ in 0..4 {
        error_body(login(&owner, ADMIN_EMAIL, "typo").await, 401).await;
    }
    assert_eq!(login_status(&owner, ADMIN_EMAIL, ADMIN_PASSWORD).await, 200);
}

#[tokio::test]
async fn delays_grow_with_each_failure() {
    let p = platform(&[("login_delay_secs", "3"), ("login_max_failures_per_pair", "2")]);
    let c = client_from(&p, "127.0.0.2");
    for _ in 0..2 {
        error_body(login(&c, ADMIN_EMAIL, "wrong-password").await, 401).await;
    }
    // Times are whole seconds and a log-in takes a while (argon2): a wait of d seconds counted
    // from the last failure shows as d, d - 1 or, on a busy machine, d - 2.
    for delay in [3, 6] {
        let retry = throttled(login(&c, ADMIN_EMAIL, "wrong-password").await).await;
        assert!((delay - 2..=delay).contains(&retry), "expected a wait of {delay} s, got {retry}");
        tokio::time::sleep(Duration::from_millis(delay * 1000 + 1100)).await;
        // Once the delay has passed the attempt is evaluated (and fails, doubling the delay).
        error_body(login(&c, ADMIN_EMAIL, "wrong-password").await, 401).await;
    }
    let retry = throttled(login(&c, ADMIN_EMAIL, "wrong-password").await).await;
    assert!((10..=12).contains(&retry), "the third delay is 12 s: {retry}");
    // The owner from another client is not slowed down.
    assert_eq!(login_status(&client_from(&p, "127.0.0.3"), ADMIN_EMAIL, ADMIN_PASSWORD).await, 200);
}

#[tokio::test]
async fn the_account_ceiling_holds_across_clients_and_an_admin_unlocks_it() {
    let p = platform(&[("login_max_failures_per_account", "6")]);
    let admin_client = client_from(&p, "127.0.0.1");
    let admin = admin_client.admin_token().await;
    let res = create_user(&admin_client, &admin, "victim@example.com", "victim-password-1", false).await;
    assert_eq!(res.status(), 201);
    // Three attackers, two failures each: the account's ceiling of 6 is reached.
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let c = client_from(&p, source);
        for _ in 0..2 {
            error_body(login(&c, "victim@example.com", "wrong-password").await, 401).await;
        }
    }
    let owner = client_from(&p, "127.0.0.5");
    let retry = throttled(login(&owner, "victim@example.com", "victim-password-1").await).await;
    assert!(retry > 30 && retry <= 900, "the account's window: {retry}");
    // Only administrators unlock.
    let victim_unlocks = patch_user(&owner, "not-a-token", "victim@example.com", json!({"unlock": true})).await;
    error_body(victim_unlocks, 401).await;
    let res = patch_user(&admin_client, &admin, "victim@example.com", json!({"unlock": true})).await;
    assert_eq!(res.status(), 200);
    let user: serde_json::Value = res.json().await.unwrap();
    assert_eq!((user["email"].as_str(), user["active"].as_bool()), (Some("victim@example.com"), Some(true)));
    assert_eq!(login_status(&owner, "victim@example.com", "victim-password-1").await, 200);
    let rows = login_failure_rows(&p);
    let counted = |(s, f, _): &&(String, i64, i64)| (s.starts_with("pair:victim@example.com|") || s == "account:victim@example.com") && *f > 0;
    assert!(!rows.iter().any(|r| counted(&r)), "unlocked, yet failures remain: {rows:?}");
}

#[tokio::test]
async fn admins_deactivate_promote_and_demote_users_with_immediate_effect() {
    let p = platform(&[]);
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    assert_eq!(create_user(&c, &admin, "a+b@example.com", "plus-password-1", false).await.status(), 201);
    let user = c.login("a+b@example.com", "plus-password-1").await;
    assert_eq!(c.http.get(c.url("/jobs")).bearer_auth(&user).send().await.unwrap().status(), 200);

    // Deactivated: every token stops working at once, in auth and in the gateway.
    let res = patch_user(&c, &admin, "a%2Bb%40example.com", json!({"active": false})).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!((body["email"].as_str(), body["active"].as_bool()), (Some("a+b@example.com"), Some(false)));
    error_body(validate(&c, &user).await, 401).await;
    error_body(c.http.get(c.url("/users/me")).bearer_auth(&user).send().await.unwrap(), 401).await;
    error_body(c.http.get(c.url("/jobs")).bearer_auth(&user).send().await.unwrap(), 401).await;
    error_body(login(&c, "a+b@example.com", "plus-password-1").await, 401).await;
    // Activated again: the sessions from before stay ended; a new log-in works.
    assert_eq!(patch_user(&c, &admin, "a+b@example.com", json!({"active": true})).await.status(), 200);
    let ended = error_body(validate(&c, &user).await, 401).await;
    assert!(ended["detail"].as_str().unwrap().starts_with("this session has ended"), "{ended}");
    let user = c.login("a+b@example.com", "plus-password-1").await;
    assert_eq!(validate(&c, &user).await.status(), 200);

    // Promoted, then demoted: the demoted admin's token is no longer an admin's.
    assert_eq!(patch_user(&c, &admin, "a+b@example.com", json!({"admin": true})).await.status(), 200);
    let second_admin = c.login("a+b@example.com", "plus-password-1").await;
    let claims: serde_json::Value = validate(&c, &second_admin).await.json().await.unwrap();
    assert_eq!(claims["admin"], true);
    assert_eq!(c.http.get(c.url("/users")).bearer_auth(&second_admin).send().await.unwrap().status(), 200);
    assert_eq!(patch_user(&c, &admin, "a+b@example.com", json!({"admin": false})).await.status(), 200);
    let claims: serde_json::Value = validate(&c, &second_admin).await.json().await.unwrap();
    assert_eq!(claims["admin"], false, "a demoted admin's token: {claims}");
    error_body(c.http.get(c.url("/users")).bearer_auth(&second_admin).send().await.unwrap(), 403).await;
    error_body(patch_user(&c, &second_admin, ADMIN_EMAIL, json!({"active": false})).await, 403).await;

    // The last active administrator cannot be deactivated or demoted.
    error_body(patch_user(&c, &admin, ADMIN_EMAIL, json!({"active": false})).await, 409).await;
    error_body(patch_user(&c, &admin, ADMIN_EMAIL, json!({"admin": false})).await, 409).await;
    assert_eq!(validate(&c, &admin).await.status(), 200);

    // Bad requests.
    error_body(patch_user(&c, &admin, "nobody@example.com", json!({"active": false})).await, 404).await;
    error_body(patch_user(&c, &admin, "a+b@example.com", json!({})).await, 400).await;
    error_body(patch_user(&c, &admin, "a+b@example.com", json!({"password": "x"})).await, 400).await;
    error_body(patch_user(&c, &admin, "a+b@example.com", json!({"active": "no"})).await, 400).await;
    error_body(patch_user(&c, &admin, "a+b@example.com", json!({"unlock": false})).await, 400).await;
    let res = c.http.patch(c.url("/users/a+b@example.com")).bearer_auth(&admin).header("content-type", "text/plain").body("{}").send().await.unwrap();
    error_body(res, 415).await;
    let res = c.http.get(c.url("/users/a+b@example.com")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.headers().get("allow").and_then(|v| v.to_str().ok()), Some("PATCH, DELETE"));
    error_body(res, 405).await;
    error_body(c.http.patch(c.url("/users/a+b@example.com")).json(&json!({"active": false})).send().await.unwrap(), 401).await;
    // `/users` and `/users/me` still answer as before.
    assert_eq!(c.http.get(c.url("/users")).bearer_auth(&admin).send().await.unwrap().status(), 200);
    assert_eq!(c.http.get(c.url("/users/me")).bearer_auth(&admin).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn validate_follows_the_users_current_row() {
    let p = platform(&[]);
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    assert_eq!(create_user(&c, &admin, "gone@example.com", "gone-password-1", true).await.status(), 201);
    let gone = c.login("gone@example.com", "gone-password-1").await;
    assert_eq!(validate(&c, &gone).await.status(), 200);
    // Demoted and deleted directly in the database (there is no delete route).
    let db = rusqlite::Connection::open(p.data_dir.path().join("state/sqlite_db.db")).unwrap();
    db.execute("UPDATE users SET admin = 0 WHERE email = 'gone@example.com'", []).unwrap();
    let claims: serde_json::Value = validate(&c, &gone).await.json().await.unwrap();
    assert_eq!(claims["admin"], false);
    db.execute("UPDATE users SET active = 0 WHERE email = 'gone@example.com'", []).unwrap();
    error_body(validate(&c, &gone).await, 401).await;
    db.execute("DELETE FROM users WHERE email = 'gone@example.com'", []).unwrap();
    let body = error_body(validate(&c, &gone).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("unknown or deactivated"), "{body}");
}

#[tokio::test]
async fn a_forged_spin_client_addr_does_not_escape_throttling() {
    let p = platform(&[]);
    let attacker = client_from(&p, "127.0.0.2");
    // Every attempt claims another address, the 6th the owner's own: the runtime's (last)
    // value is the one that counts.
    for i in 0..5 {
        let res = attacker
            .http
            .post(attacker.url("/login"))
            .header("spin-client-addr", format!("198.51.100.{i}:4000"))
            .basic_auth(ADMIN_EMAIL, Some("wrong-password"))
            .send()
            .await
            .unwrap();
        error_body(res, 401).await;
    }
    for forged in ["198.51.100.77:4000", "127.0.0.1:5000"] {
        let res = attacker
            .http
            .post(attacker.url("/login"))
            .header("spin-client-addr", forged)
            .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        throttled(res).await;
    }
    let rows = login_failure_rows(&p);
    assert!(rows.iter().any(|(s, f, _)| s == "pair:admin@example.com|127.0.0.2" && *f == 5), "{rows:?}");
    assert!(!rows.iter().any(|(s, ..)| s.contains("198.51.100.")), "a forged address was counted: {rows:?}");
    // The owner, whose address the attacker claimed, is not affected.
    assert_eq!(login_status(&client_from(&p, "127.0.0.1"), ADMIN_EMAIL, ADMIN_PASSWORD).await, 200);
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let p = platform(&[("trusted_proxies", "127.0.0.1, 127.0.0.64/26")]);
    let proxy = client_from(&p, "127.0.0.1");
    let via = |forwarded: &'static str, password: &'static str| {
        proxy
            .http
            .post(proxy.url("/login"))
            .header("x-forwarded-for", forwarded)
            .basic_auth(ADMIN_EMAIL, Some(password))
            .send()
    };
    for _ in 0..5 {
        error_body(via("203.0.113.7", "wrong-password").await.unwrap(), 401).await;
    }
    throttled(via("203.0.113.7", ADMIN_PASSWORD).await.unwrap()).await;
    // What the client writes in front of its address does not help: the rightmost address that
    // is not a trusted proxy counts (127.0.0.70 is one).
    throttled(via("198.51.100.1, 203.0.113.7", ADMIN_PASSWORD).await.unwrap()).await;
    throttled(via("198.51.100.1, 203.0.113.7, 127.0.0.70", ADMIN_PASSWORD).await.unwrap()).await;
    // Another client behind the same proxy logs in.
    assert_eq!(via("203.0.113.8", ADMIN_PASSWORD).await.unwrap().status(), 200);
    // An untrusted peer's x-forwarded-for is ignored: it is throttled as itself.
    let direct = client_from(&p, "127.0.0.2");
    let res = direct.http.post(direct.url("/login")).header("x-forwarded-for", "203.0.113.7").basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), 200, "127.0.0.2 is not the throttled 203.0.113.7");
    let rows = login_failure_rows(&p);
    assert!(rows.iter().any(|(s, ..)| s == "pair:admin@example.com|203.0.113.7"), "{rows:?}");
    assert!(!rows.iter().any(|(s, ..)| s.contains("198.51.100.1")), "{rows:?}");
}

#[tokio::test]
async fn weak_accounts_are_refused() {
    let p = platform(&[]);
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    for (email, password, what) in [
        ("user:name@example.com", "good-password-1", "':'"),
        ("a b@example.com", "good-password-1", "whitespace"),
        ("a@example.com\r\nBcc: x@example.com", "good-password-1", "whitespace"),
        ("a@b@example.com", "good-password-1", "exactly one '@'"),
        ("a@example", "good-password-1", "two parts"),
        ("a@-bad-.example.com", "good-password-1", "invalid"),
        ("a@10.0.0.1", "good-password-1", "IP address"),
        ("ok@example.com", "short-1", "8 characters"),
        ("ok@example.com", "password", "commonly used"),
        ("ok@example.com", "Password1", "commonly used"),
        ("ok@example.com", "          ", "other than spaces"),
        ("ok@example.com", "  a  b  c  d  e  ", "other than spaces"),
        ("ok@example.com", "ok@example.com", "e-mail address"),
    ] {
        let res = create_user(&c, &admin, email, password, false).await;
        let body = error_body(res, 400).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(what), "{email:?} / {password:?}: {body}");
        assert!(body["error"] == "invalid email" || body["error"] == "invalid password", "{body}");
    }
    assert_eq!(create_user(&c, &admin, "ok@example.com", "a fine passphrase", false).await.status(), 201);
}

#[tokio::test]
async fn a_weak_first_administrator_is_refused_with_a_clear_log() {
    let p = platform(&[("admin_password", "password")]);
    let c = Client::new(&p);
    error_body(login(&c, ADMIN_EMAIL, "password").await, 401).await;
    let log = p.log();
    assert!(log.contains("admin_password is refused") && log.contains("no administrator created"), "{log}");
    assert!(!log.contains("created the first administrator"), "{log}");
    let p = platform(&[("admin_email", "admin:x@example.com")]);
    error_body(login(&Client::new(&p), "admin:x@example.com", ADMIN_PASSWORD).await, 401).await;
    assert!(p.log().contains("is refused"), "{}", p.log());
}

#[tokio::test]
async fn ipv6_forms_of_internal_addresses_are_refused_as_callbacks() {
    let p = platform(&[]);
    let c = Client::new(&p);
    let token = c.new_user("hooks@example.com").await;
    for host in ["[::127.0.0.1]", "[::ffff:0:7f00:1]", "[2002:7f00:1::1]", "[64:ff9b::7f00:1]", "[2001:0:7f00:1::1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"] {
        let url = format!("http://{host}:9000/hook");
        let res = c.http.put(c.url("/users/me")).bearer_auth(&token).json(&json!({ "default_callback": url })).send().await.unwrap();
        let body = error_body(res, 400).await;
        assert_eq!(body["error"], "invalid callback", "{url}: {body}");
        let upload = c.url(&format!("/upload?filename=a.mp4&callback={}", url.replace('[', "%5B").replace(']', "%5D").replace(':', "%3A")));
        let res = c.http.post(upload).bearer_auth(&token).header("content-type", "video/mp4").body(vec![0u8; 16]).send().await.unwrap();
        let body = error_body(res, 400).await;
        assert_eq!(body["error"], "invalid callback", "{url}: {body}");
    }
    // A public address is still fine.
    let res = c.http.put(c.url("/users/me")).bearer_auth(&token).json(&json!({ "default_callback": "http://[2002:808:808::1]/hook" })).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_throttling_rows_are_purged() {
    let p = platform(&[("login_window_secs", "4")]);
    let c = client_from(&p, "127.0.0.2");
    let statuses = join_all((0..3).map(|i| {
        let c = &c;
        async move { login_status(c, &format!("ghost{i}@example.com"), "wrong-password").await }
    }))
    .await;
    assert_eq!(statuses, [401, 401, 401]);
    // 3 pairs, 3 accounts, 1 client.
    assert_eq!(login_failure_rows(&p).len(), 7, "{:?}", login_failure_rows(&p));
    tokio::time::sleep(Duration::from_secs(5)).await;
    error_body(login(&c, "fresh@example.com", "wrong-password").await, 401).await;
    let rows = login_failure_rows(&p);
    let subjects: Vec<&str> = rows.iter().map(|(s, ..)| s.as_str()).collect();
    assert_eq!(subjects, ["account:fresh@example.com", "client:127.0.0.2", "pair:fresh@example.com|127.0.0.2"], "{rows:?}");
    assert_eq!(rows[1].1, 1, "the client's window started afresh: {rows:?}");
}

#[tokio::test]
async fn oversized_user_names_leave_no_trace() {
    let p = platform(&[]);
    let c = client_from(&p, "127.0.0.2");
    let long = format!("{}@example.com", "x".repeat(8000));
    let wrong = error_body(login(&c, &long, "wrong-password").await, 401).await;
    let usual = error_body(login(&c, "nobody@example.com", "wrong-password").await, 401).await;
    assert_eq!(wrong, usual, "the same answer as any unknown user");
    let rows = login_failure_rows(&p);
    assert!(rows.iter().all(|(s, ..)| s.len() < 300), "a row as long as the header: {} bytes", rows.iter().map(|r| r.0.len()).max().unwrap_or(0));
    assert_eq!(rows.len(), 3, "only the ordinary attempt is counted: {:?}", rows.iter().map(|r| &r.0[..r.0.len().min(60)]).collect::<Vec<_>>());
}

/// A log-in's device token (the `Mp3edge-Device` header; the same as its cookie).
fn device_token(res: &reqwest::Response) -> String {
    let header = res.headers().get("mp3edge-device").expect("a log-in hands out a device token").to_str().unwrap().to_string();
    let cookie = res.headers().get("set-cookie").expect("and keeps it in a cookie").to_str().unwrap();
    assert!(cookie.starts_with(&format!("mp3edge_device={header};")) && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    header
}

/// 22 source addresses × 5 wrong passwords (what locked the owner out before: 429 with
/// `retry-after: 428` for the right password from a fresh address). The attackers fill the
/// account's ceiling (100) and are slowed (429 + Retry-After) from then on; the owner still logs
/// in from their usual address and, with the device token of an earlier log-in, from a new
/// one, by header or cookie. A stranger with the right password from a fresh address is held to
/// the ceiling, as distributed guessing must be, and a forged or another account's device
/// token is no way around it.
#[tokio::test]
async fn failures_from_many_addresses_do_not_lock_the_owner_out() {
    let p = platform(&[]);
    let usual = client_from(&p, "127.0.0.1");
    let admin = usual.admin_token().await;
    assert_eq!(create_user(&usual, &admin, "owner@example.com", "owner-password-1", false).await.status(), 201);
    assert_eq!(create_user(&usual, &admin, "other@example.com", "other-password-1", false).await.status(), 201);
    let owners_login = login(&usual, "owner@example.com", "owner-password-1").await;
    assert_eq!(owners_login.status(), 200);
    let others_login = login(&client_from(&p, "127.0.0.50"), "other@example.com", "other-password-1").await;

    let attackers: Vec<Client> = (2..=23).map(|n| client_from(&p, &format!("127.0.0.{n}"))).collect();
    let rounds = attackers.iter().map(|attacker| async move {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(login_status(attacker, "owner@example.com", "wrong-password").await);
        }
        statuses
    });
    let statuses: Vec<u16> = join_all(rounds).await.into_iter().flatten().collect();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!((evaluated, statuses.len() - evaluated), (100, 10), "the ceiling of 100 counts exactly: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    // Every attacker is slowed now, whatever it tries.
    for attacker in &attackers {
        let retry = throttled(login(attacker, "owner@example.com", "owner-password-1").await).await;
        assert!((1..=900).contains(&retry), "{retry}");
    }

    // The owner: from the usual address, and with the device token from new ones.
    let res = login(&usual, "owner@example.com", "owner-password-1").await;
    assert_eq!(res.status(), 200, "from the usual address: {}", res.text().await.unwrap());
    let (device, others_device) = (device_token(&owners_login), device_token(&others_login));
    let travelling = client_from(&p, "127.0.0.40");
    let res = travelling.http.post(travelling.url("/login")).basic_auth("owner@example.com", Some("owner-password-1")).header("mp3edge-device", &device).send().await.unwrap();
    assert_eq!(res.status(), 200, "with the device token: {}", res.text().await.unwrap());
    let browser = client_from(&p, "127.0.0.41");
    let res = browser.http.post(browser.url("/login")).basic_auth("owner@example.com", Some("owner-password-1")).header("cookie", format!("theme=dark; mp3edge_device={device}")).send().await.unwrap();
    assert_eq!(res.status(), 200, "with the device cookie: {}", res.text().await.unwrap());
    assert_eq!(device_token(&res).split('.').nth(2), device.split('.').nth(2), "renewed for the same device");

    // Strangers are held to the ceiling, forged tokens or not.
    let stranger = client_from(&p, "127.0.0.42");
    throttled(login(&stranger, "owner@example.com", "owner-password-1").await).await;
    let mut forged = device.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    for token in [String::from_utf8(forged).unwrap(), others_device] {
        let res = stranger.http.post(stranger.url("/login")).basic_auth("owner@example.com", Some("owner-password-1")).header("mp3edge-device", token).send().await.unwrap();
        throttled(res).await;
    }
    // The device's attempts count as its own: a device's wrong passwords slow that device.
    for _ in 0..5 {
        let res = travelling.http.post(travelling.url("/login")).basic_auth("owner@example.com", Some("typo")).header("mp3edge-device", &device).send().await.unwrap();
        error_body(res, 401).await;
    }
    let res = travelling.http.post(travelling.url("/login")).basic_auth("owner@example.com", Some("owner-password-1")).header("mp3edge-device", &device).send().await.unwrap();
    throttled(res).await;
    assert_eq!(login_status(&usual, "owner@example.com", "owner-password-1").await, 200, "the usual address is another client");
}

/// `PUT /users/me/password` with a stolen token guessed the current password at 13 a second
/// (40 wrong guesses in 3 s, all 403). It is throttled like a log-in now: five wrong guesses,
/// then 429 with Retry-After, even for the right password; the owner, from their usual address,
/// still changes it.
#[tokio::test]
async fn password_change_guesses_are_throttled_like_log_ins() {
    let p = platform(&[]);
    let usual = client_from(&p, "127.0.0.1");
    let admin = usual.admin_token().await;
    assert_eq!(create_user(&usual, &admin, "pw@example.com", "pw-password-1", false).await.status(), 201);
    let stolen = usual.login("pw@example.com", "pw-password-1").await;
    let thief = client_from(&p, "127.0.0.2");
    let change = |c: &Client, current: &str, new: &str| {
        c.http.put(c.url("/users/me/password")).bearer_auth(&stolen).json(&json!({ "current_password": current, "new_password": new })).send()
    };
    let mut statuses = Vec::new();
    for n in 0..40 {
        let res = change(&thief, &format!("guess-{n}"), "thief-password-1").await.unwrap();
        let status = res.status().as_u16();
        match status {
            403 => assert_eq!(error_body(res, 403).await["error"], "wrong password"),
            429 => assert!(throttled(res).await >= 1),
            other => panic!("unexpected {other}"),
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 5, "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The right password from there is no oracle either.
    throttled(change(&thief, "pw-password-1", "thief-password-1").await.unwrap()).await;
    // Log-ins and password checks share the count: the thief's log-in is slowed too.
    throttled(login(&thief, "pw@example.com", "pw-password-1").await).await;
    // The owner changes it from the usual address, with the password the thief never changed.
    assert_eq!(change(&usual, "pw-password-1", "owner-password-2").await.unwrap().status(), 200);
    assert_eq!(login_status(&usual, "pw@example.com", "owner-password-2").await, 200);
    // And the stolen session ends with the old password.
    error_body(validate(&usual, &stolen).await, 401).await;
}
