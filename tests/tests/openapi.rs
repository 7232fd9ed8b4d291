//! The API description (`GET /openapi.json`) stays true: a real OpenAPI validator accepts it,
//! it covers every route of `spin.toml`, and every status a range of real requests (good, bad,
//! unauthorized, not ready, hostile) gets is one it documents for that operation.

use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use serde_json::Value;

/// The documented operation for a concrete path (`/jobs/{id}` templates match one segment).
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('/').collect();
    spec["paths"].as_object()?.iter().find_map(|(template, item)| {
        let parts: Vec<&str> = template.split('/').collect();
        let fits = parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s);
        fits.then(|| item.get(method.to_ascii_lowercase())).flatten()
    })
}

#[tokio::test]
async fn the_description_validates_covers_every_route_and_every_status_seen() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let res = c.http.get(c.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let text = res.text().await.unwrap();
    let spec: Value = serde_json::from_str(&text).unwrap();

    // A real validator (openapi-spec-validator, installed by `make setup`).
    let file = p.data_dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let validator = workspace_root().join("tests/openapi/.venv/bin/openapi-spec-validator");
    assert!(validator.is_file(), "{} is missing: run `make setup`", validator.display());
    let out = std::process::Command::new(&validator).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Every route of spin.toml is described.
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap()).unwrap();
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    for trigger in manifest["trigger"]["http"].as_array().unwrap() {
        let route = trigger["route"].as_str().unwrap();
        let covered = match route.strip_suffix("...") {
            Some(prefix) => paths.iter().any(|p| p.starts_with(prefix)),
            None => paths.iter().any(|p| *p == route),
        };
        assert!(covered, "route {route} of spin.toml is not in the description");
    }

    // Statuses seen for real requests are documented for their operation.
    let token = c.new_user("spec@example.com").await;
    let other = c.new_user("spec-other@example.com").await;
    let admin = c.admin_token().await;
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let done = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &done, Duration::from_secs(120)).await["status"], "done");
    let queued_res = c.http.post(c.url("/upload?filename=x.mp4")).bearer_auth(&token).header("content-type", "video/mp4").body(vec![1u8; 50]).send().await.unwrap();
    let queued = queued_res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let missing = "0".repeat(32);
    let json = |v: Value| v.to_string();
    let cases: Vec<(&str, String, Option<&str>, Option<(&str, String)>)> = vec![
        ("POST", "/validate".into(), Some(&token), None),
        ("POST", "/validate".into(), None, None),
        ("GET", "/users".into(), Some(&admin), None),
        ("GET", "/users?limit=0".into(), Some(&admin), None),
        ("GET", "/users".into(), Some(&token), None),
        ("POST", "/users".into(), Some(&admin), Some(("application/json", json(serde_json::json!({"email": "a:b@example.com", "password": "x"}))))),
        ("POST", "/users".into(), Some(&admin), Some(("text/plain", "x".into()))),
        ("PATCH", "/users/nobody%40example.com".into(), Some(&admin), Some(("application/json", json(serde_json::json!({"active": false}))))),
        ("GET", "/users/me".into(), Some(&token), None),
        ("PUT", "/users/me".into(), Some(&token), Some(("application/json", json(serde_json::json!({"default_callback": "http://127.0.0.1/x"}))))),
        ("PUT", "/users/me/password".into(), Some(&token), Some(("application/json", json(serde_json::json!({"current_password": "no", "new_password": "other-pass-99"}))))),
        ("POST", "/upload?format=nope&filename=a.mp4".into(), Some(&token), Some(("video/mp4", "x".into()))),
        ("POST", "/upload?filename=a.mp4".into(), Some(&token), Some(("text/plain", "x".into()))),
        ("POST", "/upload?filename=a.mp4".into(), None, Some(("video/mp4", "x".into()))),
        ("GET", "/jobs".into(), Some(&token), None),
        ("GET", "/jobs?limit=999".into(), Some(&token), None),
        ("GET", format!("/jobs/{done}"), Some(&token), None),
        ("GET", format!("/jobs/{done}"), Some(&other), None),
        ("POST", format!("/jobs/{done}/retry"), Some(&token), None),
        ("POST", format!("/jobs/{done}/link"), Some(&token), None),
        ("POST", format!("/jobs/{queued}/link"), Some(&token), None),
        ("GET", format!("/jobs/{done}/audio"), Some(&token), None),
        ("HEAD", format!("/jobs/{done}/audio"), Some(&token), None),
        ("GET", format!("/jobs/{done}/audio?expires=1&sig={}", "0".repeat(64)), None, None),
        ("GET", format!("/jobs/{queued}/audio"), Some(&token), None),
        ("GET", format!("/download?fid={done}"), Some(&token), None),
        ("GET", "/download".into(), Some(&token), None),
        ("GET", format!("/jobs/{missing}/events"), Some(&token), None),
        ("DELETE", format!("/jobs/{missing}"), Some(&token), None),
        ("DELETE", format!("/jobs/{queued}"), Some(&token), None),
        ("GET", "/formats".into(), None, None),
        ("GET", "/".into(), None, None),
        ("GET", "/openapi.json".into(), None, None),
        ("GET", "/users/me/tokens".into(), Some(&token), None),
        ("POST", "/users/me/tokens".into(), Some(&token), Some(("application/json", json(serde_json::json!({"name": "spec", "expires_in_days": 7}))))),
        ("POST", "/users/me/tokens".into(), Some(&token), Some(("application/json", json(serde_json::json!({"name": ""}))))),
        ("DELETE", format!("/users/me/tokens/{}", "0".repeat(24)), Some(&token), None),
        ("GET", "/users/spec%40example.com/tokens".into(), Some(&admin), None),
        ("GET", "/users/spec%40example.com/tokens".into(), Some(&other), None),
        ("DELETE", format!("/users/spec%40example.com/tokens/{}", "0".repeat(24)), Some(&admin), None),
        // Last: it ends the session it is sent with.
        ("POST", "/logout".into(), Some(&other), None),
        ("POST", "/logout".into(), Some(&other), None),
    ];
    for (method, path, bearer, body) in cases {
        let mut req = c.http.request(method.parse().unwrap(), c.url(&path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, body)) = body {
            req = req.header("content-type", content_type).body(body);
        }
        let status = req.send().await.unwrap().status().as_u16().to_string();
        let bare = path.split('?').next().unwrap();
        let op = operation(&spec, method, bare).unwrap_or_else(|| panic!("{method} {bare} is not described"));
        assert!(op["responses"].get(&status).is_some(), "{method} {path} answered {status}, which the description does not list");
    }
    let res = c.http.post(c.url("/login")).basic_auth("spec@example.com", Some("wrong-password-1")).send().await.unwrap();
    assert!(operation(&spec, "POST", "/login").unwrap()["responses"].get(res.status().as_str()).is_some());
}

/// Every request any test of the suite made (recorded by each platform from its request log,
/// see `e2e_tests::observed_requests_dir`) got a status the description documents for its
/// operation. `make test` runs this after the whole suite; alone, it checks what is recorded.
#[test]
#[ignore = "run by `make test` after the whole suite"]
fn every_status_the_whole_suite_saw_is_documented() {
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(workspace_root().join("components/web/assets/openapi.json")).unwrap()).unwrap();
    let dir = observed_requests_dir();
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}: run the suite first", dir.display())) {
        for line in std::fs::read_to_string(entry.unwrap().path()).unwrap().lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            if let [method, path, status] = parts[..] {
                seen.insert((method.to_string(), path.to_string(), status.to_string()));
            }
        }
    }
    assert!(seen.len() > 50, "only {} requests recorded in {}", seen.len(), dir.display());
    let mut undocumented = std::collections::BTreeSet::new();
    let mut checked = 0;
    for (method, path, status) in &seen {
        // Preflights, and requests to paths or methods the API does not have (hostile tests),
        // are not operations.
        let Some(op) = operation(&spec, method, path) else { continue };
        checked += 1;
        if op["responses"].get(status).is_none() {
            let template = spec["paths"].as_object().unwrap().keys().find(|t| operation(&spec, method, path).is_some() && fits(t, path)).cloned();
            undocumented.insert(format!("{method} {} → {status}", template.unwrap_or_else(|| path.clone())));
        }
    }
    assert!(checked > 50, "only {checked} requests matched documented operations");
    assert!(undocumented.is_empty(), "statuses the tests saw that the description does not list:\n{}", undocumented.into_iter().collect::<Vec<_>>().join("\n"));
}

fn fits(template: &str, path: &str) -> bool {
    let (parts, segments): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    parts.len() == segments.len() && parts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
}
