//! Values that let `mp3edge up` run with no configuration at all, kept in the data directory so
//! they survive restarts: a random JWT secret and the first administrator's credentials.
//! Anything given through `SPIN_VARIABLE_*` takes precedence (providers are consulted first).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

const ADMIN_EMAIL: &str = "admin@mp3edge.localhost";

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads `name` from the secrets directory, creating it with `make()` (mode 0600) if absent.
fn persistent(dir: &Path, name: &str, make: impl FnOnce() -> Result<String>) -> Result<(String, bool)> {
    let path = dir.join(name);
    if let Ok(value) = std::fs::read_to_string(&path) {
        return Ok((value.trim().to_string(), false));
    }
    std::fs::create_dir_all(dir)?;
    let value = make()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&path)?.write_all(value.as_bytes())?;
    Ok((value, true))
}

/// The private Redis server's password, kept in the data directory.
pub fn redis_password(data_dir: &Path) -> Result<String> {
    Ok(persistent(&data_dir.join("secrets"), "redis_password", || random_hex(24))?.0)
}

/// The webhook signing key of the embedded runner, kept in the data directory.
pub fn webhook_secret(data_dir: &Path) -> Result<String> {
    Ok(persistent(&data_dir.join("secrets"), "webhook_secret", || random_hex(32))?.0)
}

/// Generated values for variables the environment does not set.
pub fn embedded_variables(data_dir: &Path) -> Result<BTreeMap<String, String>> {
    let secrets = data_dir.join("secrets");
    let set = |name: &str| std::env::var_os(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())).is_some();
    let mut values = BTreeMap::new();
    if !set("jwt_secret") {
        let (secret, _) = persistent(&secrets, "jwt_secret", || random_hex(32))?;
        values.insert("jwt_secret".to_string(), secret);
    }
    if !set("admin_email") && !set("admin_password") {
        let (password, created) = persistent(&secrets, "admin_password", || random_hex(12))?;
        if created {
            println!(
                "mp3edge: first administrator is {ADMIN_EMAIL} with password {password} \
                 (kept in {}; set SPIN_VARIABLE_ADMIN_EMAIL/SPIN_VARIABLE_ADMIN_PASSWORD to choose your own)",
                secrets.join("admin_password").display()
            );
        }
        values.insert("admin_email".to_string(), ADMIN_EMAIL.to_string());
        values.insert("admin_password".to_string(), password);
    }
    Ok(values)
}

/// Concurrency limits the mp3edge application's components get unless told otherwise: `auth`
/// hashes passwords with argon2id (about 20 MiB each), so it checks a few at once and queues the
/// rest, keeping memory bounded whatever arrives. Other applications get none.
pub fn component_concurrency(application: &str) -> std::collections::BTreeMap<String, usize> {
    match application {
        "mp3edge" => [("auth".to_string(), 4)].into(),
        _ => Default::default(),
    }
}
