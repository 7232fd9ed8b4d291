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
    assert_eq!(res.status(), 204);
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
