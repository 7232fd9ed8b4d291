//! The auth component through the real host: login, token validation, user management and
//! failed-login throttling.

use base64::Engine;
use e2e_tests::*;
use jwt_simple::prelude::*;
use serde_json::json;

fn b64url(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[derive(Serialize, Deserialize)]
struct Custom {
    email: String,
    admin: bool,
}

fn token_with(secret: &str, iat: u64, exp: u64) -> String {
    let mut claims = Claims::with_custom_claims(Custom { email: ADMIN_EMAIL.into(), admin: true }, Duration::from_secs(60));
    claims.issued_at = Some(Duration::from_secs(iat));
    claims.expires_at = Some(Duration::from_secs(exp));
    claims.invalid_before = None;
    HS256Key::from_bytes(secret.as_bytes()).authenticate(claims).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn validate(c: &Client, auth: Option<&str>) -> reqwest::Response {
    let mut req = c.http.post(c.url("/validate"));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn login_gives_a_token_that_validates_with_the_users_claims() {
    let p = Platform::start();
    let c = Client::new(&p);
    let token = c.admin_token().await;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let res = validate(&c, Some(&format!("Bearer {token}"))).await;
    assert_eq!(res.status(), 200);
    let claims: serde_json::Value = res.json().await.unwrap();
    assert_eq!(claims["email"], ADMIN_EMAIL);
    assert_eq!(claims["admin"], true);
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 24 * 3600, "default lifetime is 24 h");
    assert!(!p.log().contains(ADMIN_PASSWORD), "the password never reaches the log");
}

#[tokio::test]
async fn bad_logins_are_401_with_json() {
    let p = Platform::start();
    let c = Client::new(&p);
    let res = c.http.post(c.url("/login")).basic_auth(ADMIN_EMAIL, Some("wrong")).send().await.unwrap();
    let wrong = error_body(res, 401).await;
    let res = c.http.post(c.url("/login")).basic_auth("nobody@example.com", Some("whatever")).send().await.unwrap();
    let unknown = error_body(res, 401).await;
    assert_eq!(wrong, unknown, "wrong password and unknown user are indistinguishable");
    error_body(c.http.post(c.url("/login")).send().await.unwrap(), 401).await;
    for header in ["Basic !!!notbase64", "Basic", "Bearer abc", &format!("Basic {}", b64url("no-colon"))] {
        let res = c.http.post(c.url("/login")).header("authorization", header).send().await.unwrap();
        error_body(res, 401).await;
    }
    let res = c.http.get(c.url("/login")).basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD)).send().await.unwrap();
    error_body(res, 405).await;
}

#[tokio::test]
async fn validate_rejects_every_kind_of_bad_token() {
    let p = Platform::start();
    let c = Client::new(&p);
    let good = c.admin_token().await;
    let expired = token_with(JWT_SECRET, now() - 7200, now() - 3600);
    let wrong_key = token_with("another-secret-of-enough-length!!", now(), now() + 600);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(&format!(r#"{{"email":"evil@example.com","admin":true,"iat":{},"exp":{}}}"#, now(), now() + 600)),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64url(r#"{"alg":"none","typ":"JWT"}"#),
        b64url(&format!(r#"{{"email":"{ADMIN_EMAIL}","admin":true,"iat":{},"exp":{}}}"#, now(), now() + 600))
    );
    for (what, token) in [
        ("expired", expired),
        ("wrong key", wrong_key),
        ("tampered", tampered),
        ("alg none", alg_none),
        ("malformed", "not.a.jwt".to_string()),
        ("garbage", "%%%".to_string()),
    ] {
        let res = validate(&c, Some(&format!("Bearer {token}"))).await;
        let body = error_body(res, 401).await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{what}");
    }
    error_body(validate(&c, None).await, 401).await;
    error_body(validate(&c, Some(&format!("Basic {good}"))).await, 401).await;
}

#[tokio::test]
async fn admins_create_users_and_others_cannot() {
    let p = Platform::start();
    let c = Client::new(&p);
    let admin = c.admin_token().await;
    let create = |token: Option<String>, body: serde_json::Value| {
        let mut req = c.http.post(c.url("/users")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let res = create(Some(admin.clone()), json!({"email": "Alice@Example.com", "password": "alice-password"})).await.unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(created["admin"], false);

    let res = create(Some(admin.clone()), json!({"email": "alice@example.com", "password": "another-one"})).await.unwrap();
    error_body(res, 409).await;
    let res = create(Some(admin.clone()), json!({"email": "not-an-email", "password": "long-enough"})).await.unwrap();
    error_body(res, 400).await;
    let res = create(Some(admin.clone()), json!({"email": "bob@example.com", "password": "short"})).await.unwrap();
    error_body(res, 400).await;
    let res = create(Some(admin.clone()), json!({"password": "no-email-here"})).await.unwrap();
    error_body(res, 400).await;
    let res = c.http.post(c.url("/users")).bearer_auth(&admin).header("content-type", "application/json").body("{not json").send().await.unwrap();
    error_body(res, 400).await;
    let res = c.http.post(c.url("/users")).bearer_auth(&admin).header("content-type", "text/plain").body("x").send().await.unwrap();
    error_body(res, 415).await;
    let huge = json!({"email": "big@example.com", "password": "x".repeat(200_000)});
    let res = create(Some(admin.clone()), huge).await.unwrap();
    error_body(res, 413).await;

    // The new user logs in, cannot create users, and is listed for the admin.
    let alice = c.login("alice@example.com", "alice-password").await;
    let res = create(Some(alice.clone()), json!({"email": "eve@example.com", "password": "eve-password"})).await.unwrap();
    error_body(res, 403).await;
    let res = create(None, json!({"email": "eve@example.com", "password": "eve-password"})).await.unwrap();
    error_body(res, 401).await;
    let list: serde_json::Value = c.http.get(c.url("/users")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let emails: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert!(emails.contains(&"alice@example.com") && emails.contains(&ADMIN_EMAIL), "{emails:?}");
    error_body(c.http.get(c.url("/users")).bearer_auth(&alice).send().await.unwrap(), 403).await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_client() {
    let mut options = PlatformOptions::default();
    options.variables.insert("login_max_failures_per_account".into(), "3".into());
    options.variables.insert("login_max_failures_per_client".into(), "6".into());
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    for _ in 0..3 {
        let res = c.http.post(c.url("/login")).basic_auth(ADMIN_EMAIL, Some("wrong")).send().await.unwrap();
        error_body(res, 401).await;
    }
    // The account is locked: even the right password gets 429 with Retry-After.
    let res = c.http.post(c.url("/login")).basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD)).send().await.unwrap();
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 900);
    error_body(res, 429).await;
    // Other accounts from the same client still work until the client's own limit.
    for i in 0..3 {
        let res = c.http.post(c.url("/login")).basic_auth(format!("ghost{i}@example.com"), Some("x")).send().await.unwrap();
        error_body(res, 401).await;
    }
    let res = c.http.post(c.url("/login")).basic_auth("ghost9@example.com", Some("x")).send().await.unwrap();
    error_body(res, 429).await;
    // A client cannot spoof its address to escape the limit.
    let res = c
        .http
        .post(c.url("/login"))
        .header("spin-client-addr", "203.0.113.9:1234")
        .basic_auth("ghost10@example.com", Some("x"))
        .send()
        .await
        .unwrap();
    error_body(res, 429).await;
}
