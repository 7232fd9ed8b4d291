//! Issue 9's findings against the auth component, through the real host and components:
//! parallel log-ins cannot pass the throttling limits, an attacker's failures do not lock the
//! owner out from another client, administrators manage and unlock accounts, tokens follow the
//! user's current state, a forged `spin-client-addr` or `x-forwarded-for` does not move a client
//! out of its throttling, weak accounts are refused, IPv6 forms of internal addresses are
//! refused as callbacks, and expired throttling rows are purged.
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
