//! The browser app end to end: the real platform, and the page driven in headless Debian
//! Chromium by the test files in `tests/browser/` (Node's test runner + playwright-core, with
//! axe-core for the accessibility check), one file a view or concern, all run in one Node
//! process by `tests/browser/suite.mjs`: one platform and one browser for all of them, the tests
//! one after another in the suite's order. Screenshots and the downloaded audio land in
//! `target/test-artifacts/`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;

const NODE_TIMEOUT: Duration = Duration::from_secs(900);
/// Every user's storage quota here (200 MiB): small enough for the page's quota messages to be
/// tried with a real file, large enough for the other tests' files.
const QUOTA_BYTES: u64 = 200 * 1024 * 1024;
const WEBHOOK_SECRET: &str = "browser-webhook-secret";

#[tokio::test]
async fn the_web_app_signs_in_converts_and_downloads_in_a_real_browser() {
    let root = workspace_root();
    let browser_dir = root.join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).is_file(), "{chromium} is missing: run `make setup`");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            browser_dir.join("node_modules").join(package).is_dir(),
            "tests/browser/node_modules/{package} is missing: run `make setup` (npm ci --prefix tests/browser)"
        );
    }

    let (_, fixture) = good_inputs().into_iter().next().unwrap();
    // A link for the page to import from, on a server the operator allowed.
    let mut routes = std::collections::HashMap::new();
    let body = bytes::Bytes::from(std::fs::read(&fixture.path).unwrap());
    routes.insert("/shared/talk.mp4".to_string(), Answer::File { content_type: "video/mp4", body });
    // A webhook receiver for the account page (it answers any method with a 200).
    routes.insert("/hook".to_string(), Answer::File { content_type: "text/plain", body: bytes::Bytes::from_static(b"ok") });
    let media = serve_http(routes).await;
    let mut options = PlatformOptions {
        key_value_on_redis: true,
        env: vec![
            ("SPIN_VARIABLE_URL_IMPORT_ALLOWED_HOSTS".into(), format!("http://127.0.0.1:{}", media.port())),
            ("MP3EDGE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        ],
        ..Default::default()
    };
    options.variables.insert("user_quota_bytes".into(), QUOTA_BYTES.to_string());
    options.variables.insert("webhook_allowed_hosts".into(), format!("127.0.0.1:{}", media.port()));
    let p = Platform::start_with(options).unwrap();
    let c = Client::new(&p);
    let email = "browser@example.com";
    c.new_user(email).await;
    // A user of their own for the account page (webhook, presets), so that its settings do not
    // reach the other tests' jobs.
    let account_email = "account@example.com";
    c.new_user(account_email).await;
    // Big enough (12.5 MB) to be cut off half-way through its upload.
    let big = e2e_tests::fixtures::long_video("crash-10min.mp4", 600, "160x120");
    let artifacts = root.join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    // NODE picks another Node.js (e.g. to try Debian's v18).
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    let run = tokio::process::Command::new(&node)
        .current_dir(&root)
        .args(["--test", "--test-reporter=spec"])
        .arg(browser_dir.join("suite.mjs"))
        .env("BASE_URL", &p.base_url)
        .env("EMAIL", email)
        .env("PASSWORD", "user-password-1")
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("FIXTURE", &fixture.path)
        .env("BIG_FIXTURE", &big)
        .env("IMPORT_URL", format!("http://127.0.0.1:{}/shared/talk.mp4", media.port()))
        .env("WEBHOOK_URL", format!("http://127.0.0.1:{}/hook", media.port()))
        .env("ACCOUNT_EMAIL", account_email)
        .env("QUOTA_BYTES", QUOTA_BYTES.to_string())
        .env("ARTIFACT_DIR", &artifacts)
        .env("CHROMIUM", &chromium)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("the browser test did not finish within {NODE_TIMEOUT:?}; platform log:\n{}", p.log()))
        .unwrap_or_else(|e| panic!("cannot run {node} ({e}): run `make setup`"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- platform log\n{}",
        output.status,
        p.log()
    );
    println!("{stdout}");
    for shot in ["web-done.png", "web-phone.png"] {
        assert!(artifacts.join(shot).is_file(), "{shot} was not saved");
    }
}
