//! The API description (`GET /openapi.json`, made from code by `api-description`) stays true:
//! a real OpenAPI validator accepts it; the routes the components serve are exactly the ones it
//! describes (method by method, no prefix matching); every documented operation is called here
//! with good, bad, unauthorized and not-ready requests, and every answer's status, content type
//! and body validate against what the description documents; and every request the whole suite
//! made is a documented operation with a documented status.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e_tests::api_spec::ApiSpec;
use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;
use serde_json::{Value, json};

async fn fetch_spec(c: &Client) -> (ApiSpec, String) {
    let res = c.http.get(c.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    (ApiSpec(serde_json::from_str(&text).unwrap()), text)
}

/// One request of the tour: method, path (with query), bearer, extra headers, body.
struct Call {
    method: &'static str,
    path: String,
    bearer: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

fn call(method: &'static str, path: impl Into<String>, bearer: Option<&str>) -> Call {
    Call { method, path: path.into(), bearer: bearer.map(str::to_string), headers: Vec::new(), body: None }
}

impl Call {
    fn json(mut self, value: Value) -> Call {
        self.body = Some(("application/json", value.to_string().into_bytes()));
        self
    }
    fn body(mut self, content_type: &'static str, bytes: impl Into<Vec<u8>>) -> Call {
        self.body = Some((content_type, bytes.into()));
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }
}

/// Sends `call` and checks its answer against the description; returns the status and body.
async fn send(c: &Client, spec: &ApiSpec, call: &Call, called: &mut BTreeSet<(String, String)>, failures: &mut Vec<String>) -> (u16, Vec<u8>) {
    let mut req = c.http.request(call.method.parse().unwrap(), c.url(&call.path));
    if let Some(t) = &call.bearer {
        req = req.bearer_auth(t);
    }
    for (name, value) in &call.headers {
        req = req.header(*name, value);
    }
    if let Some((content_type, body)) = &call.body {
        req = req.header("content-type", *content_type).body(body.clone());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let body = res.bytes().await.unwrap().to_vec();
    match spec.operation(call.method, &call.path) {
        None => failures.push(format!("{} {} is not described", call.method, call.path)),
        Some(op) => {
            called.insert((op.method.clone(), op.template.to_string()));
            if let Err(e) = spec.check_answer(&op, status, content_type.as_deref(), &body) {
                failures.push(format!("{} {}: {e}", call.method, call.path));
            }
        }
    }
    (status, body)
}

#[tokio::test]
async fn the_description_validates_and_every_operations_answers_match_it() {
    let p = Platform::start_with(PlatformOptions { key_value_on_redis: true, ..Default::default() }).unwrap();
    let c = Client::new(&p);
    let (spec, text) = fetch_spec(&c).await;

    // A real validator (openapi-spec-validator, installed by `make setup`).
    let file = p.data_dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let validator = workspace_root().join("tests/openapi/.venv/bin/openapi-spec-validator");
    assert!(validator.is_file(), "{} is missing: run `make setup`", validator.display());
    let out = std::process::Command::new(&validator).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Every operation has an id, a tag and a summary; ids are unique.
    let mut ids = BTreeSet::new();
    for (method, template) in spec.operations() {
        let op = &spec.0["paths"][&template][method.to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {template} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert!(op["tags"].as_array().is_some_and(|t| t.len() == 1), "{method} {template} has no tag");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {template} has no summary");
    }
    let schemes = spec.0["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!((schemes["linkSignature"]["in"].as_str(), schemes["linkSignature"]["name"].as_str()), (Some("query"), Some("sig")));
    assert_eq!(spec.0["paths"]["/login"]["post"]["security"], json!([{"basic": []}]));

    let token = c.new_user("spec@example.com").await;
    let other = c.new_user("spec-other@example.com").await;
    let mover = c.new_user("spec-mover@example.com").await;
    c.new_user("spec-gone@example.com").await;
    let admin = c.admin_token().await;
    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let video = std::fs::read(&fixture.path).unwrap();
    let done = c.upload_file(&token, &fixture.path, fixture.content_type, "format=mp3").await;
    assert_eq!(c.wait_for_job(&token, &done, Duration::from_secs(120)).await["status"], "done");
    let etag = c.http.head(c.url(&format!("/jobs/{done}/audio"))).bearer_auth(&token).send().await.unwrap().headers()["etag"].to_str().unwrap().to_string();
    let missing = "0".repeat(32);
    let (t, o, a, m) = (Some(token.as_str()), Some(other.as_str()), Some(admin.as_str()), Some(mover.as_str()));

    let mut called = BTreeSet::new();
    let mut failures = Vec::new();
    // Calls whose answers later calls need.
    let (_, queued) = send(&c, &spec, &call("POST", "/upload?filename=x.mp4", t).body("video/mp4", vec![1u8; 50]), &mut called, &mut failures).await;
    let queued = serde_json::from_slice::<Value>(&queued).unwrap()["job_id"].as_str().unwrap().to_string();
    let tus = call("POST", "/uploads", t).header("tus-resumable", "1.0.0").header("upload-length", "1000").header("upload-metadata", "filename eC5tcDQ=");
    let (status, _) = send(&c, &spec, &tus, &mut called, &mut failures).await;
    assert_eq!(status, 201);
    let uploads = c.http.get(c.url("/jobs")).bearer_auth(&token).send().await.unwrap().json::<Value>().await.unwrap();
    let upload = uploads.as_array().unwrap().iter().find(|j| j["status"] == "uploading").unwrap()["id"].as_str().unwrap().to_string();
    let (_, created) = send(&c, &spec, &call("POST", "/users/me/tokens", t).json(json!({"name": "spec", "expires_in_days": 7})), &mut called, &mut failures).await;
    let token_id = serde_json::from_slice::<Value>(&created).unwrap()["id"].as_str().unwrap().to_string();
    let (_, signed) = send(&c, &spec, &call("POST", format!("/jobs/{done}/link"), t), &mut called, &mut failures).await;
    let signed = serde_json::from_slice::<Value>(&signed).unwrap()["url"].as_str().unwrap().to_string();

    let calls = vec![
        call("POST", "/validate", t),
        call("POST", "/validate", None),
        call("GET", "/users", a),
        call("GET", "/users?limit=0", a),
        call("GET", "/users", t),
        call("POST", "/users", a).json(json!({"email": "a:b@example.com", "password": "x"})),
        call("POST", "/users", a).body("text/plain", "x"),
        call("POST", "/users", a).json(json!({"email": "spec-new@example.com", "password": "a-fine-password-7"})),
        call("PATCH", "/users/nobody%40example.com", a).json(json!({"active": false})),
        call("PATCH", "/users/spec-new%40example.com", a).json(json!({"admin": true})),
        call("PATCH", "/users/spec-new%40example.com", a).json(json!({"unlock": true})),
        call("DELETE", "/users/spec-gone%40example.com", a),
        call("DELETE", "/users/nobody%40example.com", a),
        call("GET", "/users/me", t),
        call("PUT", "/users/me", t).json(json!({"default_callback": "http://127.0.0.1/x"})),
        call("PUT", "/users/me", t).json(json!({"default_callback": null})),
        call("POST", "/users/me/callback/test", t),
        call("PUT", "/users/me/password", t).json(json!({"current_password": "no", "new_password": "other-pass-99"})),
        call("PUT", "/users/me/password", m).json(json!({"current_password": "user-password-1", "new_password": "other-pass-99"})),
        call("GET", "/users/me/presets", t),
        call("PUT", "/users/me/presets/podcast", t).json(json!({"params": {"format": "opus", "bitrate": 96}})),
        call("PUT", "/users/me/presets/podcast", t).json(json!({"params": {"format": "nope"}})),
        call("GET", "/users/me/presets", t),
        call("DELETE", "/users/me/presets/podcast", t),
        call("DELETE", "/users/me/presets/podcast", t),
        call("GET", "/users/me/tokens", t),
        call("POST", "/users/me/tokens", t).json(json!({"name": ""})),
        call("DELETE", format!("/users/me/tokens/{}", "0".repeat(24)), t),
        call("GET", "/users/spec%40example.com/tokens", a),
        call("GET", "/users/spec%40example.com/tokens", o),
        call("DELETE", format!("/users/spec%40example.com/tokens/{token_id}"), a),
        call("DELETE", format!("/users/spec%40example.com/tokens/{}", "0".repeat(24)), a),
        call("POST", "/upload?format=nope&filename=a.mp4", t).body("video/mp4", "x"),
        call("POST", "/upload?filename=a.mp4", t).body("text/plain", "x"),
        call("POST", "/upload?filename=a.mp4", None).body("video/mp4", "x"),
        call("POST", "/upload?format=flac&bitrate=128", t).body("application/octet-stream", video.clone()),
        call("POST", "/upload", t).json(json!({"url": "http://127.0.0.1/x.mp4"})),
        call("OPTIONS", "/uploads", None),
        call("POST", "/uploads", t).header("tus-resumable", "0.2.0").header("upload-length", "10"),
        call("HEAD", format!("/uploads/{upload}"), t).header("tus-resumable", "1.0.0"),
        call("PATCH", format!("/uploads/{upload}"), t).header("tus-resumable", "1.0.0").header("upload-offset", "5").body("application/offset+octet-stream", vec![0u8; 10]),
        call("PATCH", format!("/uploads/{upload}"), t).header("tus-resumable", "1.0.0").header("upload-offset", "0").body("application/offset+octet-stream", vec![0u8; 10]),
        call("DELETE", format!("/uploads/{upload}"), t).header("tus-resumable", "1.0.0"),
        call("HEAD", format!("/uploads/{upload}"), t).header("tus-resumable", "1.0.0"),
        call("GET", "/jobs", t),
        call("GET", "/jobs?limit=999", t),
        call("GET", format!("/jobs/{done}"), t),
        call("GET", format!("/jobs/{done}"), o),
        call("POST", format!("/jobs/{done}/retry"), t),
        call("POST", format!("/jobs/{queued}/link"), t),
        call("GET", format!("/jobs/{done}/events"), t),
        call("GET", format!("/jobs/{missing}/events"), t),
        call("GET", format!("/jobs/{done}/audio"), t),
        call("GET", format!("/jobs/{done}/audio"), t).header("accept", "application/octet-stream"),
        call("GET", format!("/jobs/{done}/audio"), t).header("range", "bytes=0-99"),
        call("GET", format!("/jobs/{done}/audio"), t).header("range", "bytes=999999999-"),
        call("GET", format!("/jobs/{done}/audio"), t).header("if-none-match", etag.clone()),
        call("HEAD", format!("/jobs/{done}/audio"), t),
        call("GET", signed.clone(), None),
        call("GET", format!("/jobs/{done}/audio?expires=1&sig={}", "0".repeat(64)), None),
        call("GET", format!("/jobs/{queued}/audio"), t),
        call("GET", format!("/download?fid={done}"), t),
        call("HEAD", format!("/download?fid={done}"), t),
        call("GET", "/download", t),
        call("DELETE", format!("/jobs/{missing}"), t),
        call("DELETE", format!("/jobs/{queued}"), t),
        call("GET", "/formats", None),
        call("GET", "/", None),
        call("GET", "/openapi.json", None),
        call("HEAD", "/openapi.json", None),
        call("HEAD", "/", None),
        // Last: they end the sessions they are sent with.
        call("POST", "/logout", o),
        call("POST", "/logout", o),
    ];
    for request in &calls {
        send(&c, &spec, request, &mut called, &mut failures).await;
    }
    // `POST /login` is HTTP Basic: a wrong password, then the right one.
    let login = spec.operation("POST", "/login").unwrap();
    for (password, expected) in [("wrong-password-1", 401), ("user-password-1", 200)] {
        let res = c.http.post(c.url("/login")).basic_auth("spec@example.com", Some(password)).send().await.unwrap();
        let (status, content_type) = (res.status().as_u16(), res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()));
        assert_eq!(status, expected);
        if let Err(e) = spec.check_answer(&login, status, content_type.as_deref(), &res.bytes().await.unwrap()) {
            failures.push(e);
        }
    }
    called.insert(("POST".into(), "/login".into()));
    assert!(failures.is_empty(), "answers the description does not document:\n{}", failures.join("\n"));
    let all: BTreeSet<(String, String)> = spec.operations().into_iter().collect();
    let uncalled: Vec<_> = all.difference(&called).collect();
    assert!(uncalled.is_empty(), "documented operations this test never called: {uncalled:?}");
}

/// A request for each documented path (its parameters filled in) with each method, without
/// credentials: a method the description lists for the path is served (never 404 or 405), any
/// other gets 405 with an `Allow` of exactly the listed ones. Paths beside the documented ones,
/// under every wildcard route of `spin.toml`, are 404.
#[tokio::test]
async fn the_routes_served_are_exactly_the_ones_described() {
    let p = Platform::start();
    let c = Client::new(&p);
    let (spec, _) = fetch_spec(&c).await;
    let fill = |template: &str| {
        template
            .replace("{email}", "nobody%40example.com")
            .replace("/users/me/tokens/{id}", &format!("/users/me/tokens/{}", "0".repeat(24)))
            .replace("/tokens/{id}", &format!("/tokens/{}", "0".repeat(24)))
            .replace("{id}", &"0".repeat(32))
            .replace("{name}", "preset")
    };
    let mut wrong = Vec::new();
    let operations = spec.operations();
    let templates: BTreeSet<&String> = operations.iter().map(|(_, t)| t).collect();
    for template in &templates {
        let documented: BTreeSet<String> = operations.iter().filter(|(m, t)| t == *template && m != "OPTIONS").map(|(m, _)| m.clone()).collect();
        let path = fill(template);
        let mut served = BTreeSet::new();
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
            let res = c.http.request(method.parse().unwrap(), c.url(&path)).send().await.unwrap();
            match res.status().as_u16() {
                405 => {
                    let allow: BTreeSet<String> = res.headers().get("allow").map(|v| v.to_str().unwrap()).unwrap_or("").split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty() && m != "OPTIONS").collect();
                    if allow != documented {
                        wrong.push(format!("{method} {path}: 405 with Allow {allow:?}, documented {documented:?}"));
                    }
                }
                404 if path != "/" => wrong.push(format!("{method} {path}: 404")),
                _ => {
                    served.insert(method.to_string());
                }
            }
        }
        if served != documented {
            wrong.push(format!("{template}: served {served:?}, documented {documented:?}"));
        }
    }
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap()).unwrap();
    for trigger in manifest["trigger"]["http"].as_array().unwrap() {
        let route = trigger["route"].as_str().unwrap();
        match route.strip_suffix("/...") {
            // The catch-all serves the web app's files: anything else is 404 there.
            Some("") => {}
            Some(prefix) => {
                for beside in ["x/y/z", "me/nothing", &format!("{}/nothing", "0".repeat(32))] {
                    let path = format!("{prefix}/{beside}");
                    if spec.operation("GET", &path).is_some() {
                        continue;
                    }
                    let status = c.http.get(c.url(&path)).send().await.unwrap().status().as_u16();
                    if status != 404 {
                        wrong.push(format!("GET {path}: {status}, undocumented"));
                    }
                }
            }
            None => assert!(templates.iter().any(|t| t.as_str() == route), "route {route} of spin.toml is not described"),
        }
    }
    assert!(wrong.is_empty(), "served and described routes differ:\n{}", wrong.join("\n"));
}

/// Every request any test of the suite made (recorded by each platform from its request log,
/// see `e2e_tests::observed_requests_dir`) is a documented operation and got a status the
/// description documents for it. Not operations: CORS preflights, the web app's static files,
/// and requests answered 404 or 405 (hostile tests' paths and methods the API does not have).
/// `make test` runs this after the whole suite; alone, it checks what is recorded.
#[tokio::test]
#[ignore = "run by `make test` after the whole suite"]
async fn every_request_the_whole_suite_made_is_documented() {
    let p = Platform::start();
    let (spec, _) = fetch_spec(&Client::new(&p)).await;
    let dir = observed_requests_dir();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}: run the suite first", dir.display())) {
        for line in std::fs::read_to_string(entry.unwrap().path()).unwrap().lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            if let [method, path, status] = parts[..] {
                seen.insert((method.to_string(), path.to_string(), status.to_string()));
            }
        }
    }
    assert!(seen.len() > 50, "only {} requests recorded in {}", seen.len(), dir.display());
    let static_file = |path: &str| path.starts_with("/js/") || [".css", ".svg", ".js", ".ico", ".html"].iter().any(|ext| path.ends_with(ext));
    let mut undocumented = BTreeSet::new();
    let mut checked = 0;
    for (method, path, status) in &seen {
        if method == "OPTIONS" && path != "/uploads" || status == "404" || status == "405" || (method == "GET" || method == "HEAD") && static_file(path) {
            continue;
        }
        let Some(op) = spec.operation(method, path) else {
            undocumented.insert(format!("{method} {path} → {status}: no such operation"));
            continue;
        };
        checked += 1;
        if op.op["responses"].get(status).is_none() {
            undocumented.insert(format!("{method} {} → {status}", op.template));
        }
    }
    assert!(checked > 50, "only {checked} requests matched documented operations");
    assert!(undocumented.is_empty(), "requests the tests made that the description does not document:\n{}", undocumented.into_iter().collect::<Vec<_>>().join("\n"));
}
