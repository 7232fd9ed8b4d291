//! Clients generated from the served `/openapi.json` by generators no one here wrote work as
//! generated: `openapi-python-client` builds a package whose functions log in (HTTP Basic), make
//! an API token, upload, poll, download and delete through the real platform
//! (`tests/openapi/client_flow.py`), and `openapi-typescript`'s types compile with `tsc
//! --strict` for a program that uses them and refuse one that misuses them. The generators are
//! installed in the clone by `make setup` (`tests/openapi/`).

use std::path::Path;
use std::process::Command;

use e2e_tests::fixtures::good_inputs;
use e2e_tests::*;

fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn served_description(p: &Platform, dir: &Path) -> std::path::PathBuf {
    let res = reqwest::get(format!("{}/openapi.json", p.base_url)).await.unwrap();
    assert_eq!(res.status(), 200);
    let file = dir.join("openapi.json");
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    file
}

#[tokio::test]
async fn the_generated_python_client_logs_in_uploads_polls_downloads_and_deletes() {
    let p = Platform::start();
    let c = Client::new(&p);
    c.new_user("python@example.com").await;
    let work = tempfile::tempdir().unwrap();
    let spec = served_description(&p, work.path()).await;
    let venv = workspace_root().join("tests/openapi/.venv/bin");
    assert!(venv.join("openapi-python-client").is_file(), "{} lacks openapi-python-client: run `make setup`", venv.display());
    // The generator runs ruff (a dependency of it, in the same virtualenv) on what it wrote.
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let package = work.path().join("mp3edge_client");
    let (ok, output) = run(Command::new(venv.join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&package)
        .env("PATH", &path));
    assert!(ok && package.join("api").is_dir(), "openapi-python-client failed:\n{output}");
    assert!(!output.contains("Error(s)") && !output.contains("ruff failed"), "{output}");
    // The only endpoints it leaves out are tus's, whose bodies must be
    // `application/offset+octet-stream` (tus clients such as tuspy speak that protocol).
    let skipped: Vec<&str> = output.lines().filter(|l| l.starts_with("WARNING parsing ")).collect();
    assert_eq!(skipped, ["WARNING parsing POST /uploads within uploads. Endpoint will not be generated.", "WARNING parsing PATCH /uploads/{id} within uploads. Endpoint will not be generated."], "{output}");

    let (_, fixture) = good_inputs().into_iter().find(|(n, _)| n.starts_with("mp4")).unwrap();
    let (ok, output) = run(Command::new(venv.join("python"))
        .arg(workspace_root().join("tests/openapi/client_flow.py"))
        .args([&p.base_url, "python@example.com", "user-password-1"])
        .arg(&fixture.path)
        .env("PYTHONPATH", work.path()));
    assert!(ok, "the generated client's script failed:\n{output}");
    assert_eq!(output.trim_end().lines().last(), Some("ok"), "{output}");
}

#[tokio::test]
async fn openapi_typescript_types_compile_for_a_program_and_refuse_a_misuse() {
    let p = Platform::start();
    let work = tempfile::tempdir().unwrap();
    let spec = served_description(&p, work.path()).await;
    let tools = workspace_root().join("tests/openapi/node_modules/.bin");
    assert!(tools.join("openapi-typescript").is_file(), "{} lacks openapi-typescript: run `make setup`", tools.display());
    let (ok, output) = run(Command::new(tools.join("openapi-typescript")).arg(&spec).arg("-o").arg(work.path().join("api.d.ts")));
    assert!(ok, "openapi-typescript failed:\n{output}");
    let tsc = |file: &str| {
        std::fs::copy(workspace_root().join("tests/openapi").join(file), work.path().join(file)).unwrap();
        run(Command::new(tools.join("tsc")).args(["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler"]).arg(work.path().join(file)))
    };
    let (ok, output) = tsc("uses_types.ts");
    assert!(ok, "tsc refused a program using the generated types:\n{output}");
    let (ok, output) = tsc("misuses_types.ts");
    assert!(!ok && output.contains("TS2322") && output.contains("\"finished\""), "tsc accepted a job status the API lacks:\n{output}");
}
