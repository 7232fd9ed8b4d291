//! Values that let `mp3edge up` run the mp3edge application with no configuration at all, kept in
//! the data directory so they survive restarts: a random JWT secret and the first administrator's
//! credentials. Anything given through `SPIN_VARIABLE_*` takes precedence (providers are consulted
//! first).
//!
//! All of this, like the private Redis and the worker, is the mp3edge application's embedding:
//! it applies only to an application that asks for it by declaring the variables it serves
//! ([`Mp3edgeEmbedding::of`]). Any other Spin application runs as under `spin up`: its variables
//! come from the environment and its own defaults, nothing else.

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

/// The variables through which the mp3edge application asks for its embedding: the session
/// secret, the first administrator and the job queue's Redis (`host:port`).
pub const JWT_SECRET_VARIABLE: &str = "jwt_secret";
pub const ADMIN_EMAIL_VARIABLE: &str = "admin_email";
pub const ADMIN_PASSWORD_VARIABLE: &str = "admin_password";
pub const REDIS_HOST_VARIABLE: &str = "redis_host";
const EMBEDDING_VARIABLES: [&str; 4] = [JWT_SECRET_VARIABLE, ADMIN_EMAIL_VARIABLE, ADMIN_PASSWORD_VARIABLE, REDIS_HOST_VARIABLE];

/// Whether an application is the mp3edge application, which `mp3edge up` runs on embedded
/// defaults (generated secrets, a private Redis for its job queue, the conversion worker, a
/// concurrency limit for `auth`). It is when it declares all the variables that embedding
/// fills in; an application that declares only some of them (a `redis_host` of its own, say)
/// keeps them as it sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3edgeEmbedding(bool);

impl Mp3edgeEmbedding {
    pub fn of(manifest: &spin_host::manifest::Manifest) -> Mp3edgeEmbedding {
        Mp3edgeEmbedding(EMBEDDING_VARIABLES.iter().all(|name| manifest.variables.contains_key(*name)))
    }

    pub fn applies(self) -> bool {
        self.0
    }
}

/// Generated values for the mp3edge application's variables the environment does not set.
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

/// What each generated secret file is for, in the order `announce_secrets` lists them.
const SECRET_FILES: [(&str, &str); 4] = [
    ("admin_password", "the first administrator's password"),
    ("jwt_secret", "signs sessions and download links"),
    ("redis_password", "the private Redis"),
    ("webhook_secret", "signs webhooks"),
];

/// Says at every start where the generated secrets are kept, so an operator can find the
/// administrator's password again (values set through `SPIN_VARIABLE_*` are not there).
pub fn announce_secrets(data_dir: &Path) {
    let dir = data_dir.join("secrets");
    let kept: Vec<String> = SECRET_FILES
        .iter()
        .filter(|(name, _)| dir.join(name).is_file())
        .map(|(name, what)| format!("  {name}: {what}"))
        .collect();
    if !kept.is_empty() {
        println!(
            "mp3edge: generated secrets are kept in {} (owner-only files; SPIN_VARIABLE_* values take precedence):\n{}",
            dir.display(),
            kept.join("\n")
        );
    }
}

/// Concurrency limits the mp3edge application's components get unless told otherwise: `auth`
/// hashes passwords with argon2id (about 20 MiB each), so it checks a few at once and queues the
/// rest, keeping memory bounded whatever arrives. Other applications get none.
pub fn component_concurrency(manifest: &spin_host::manifest::Manifest) -> BTreeMap<String, usize> {
    match Mp3edgeEmbedding::of(manifest).applies() && manifest.components.contains_key("auth") {
        true => [("auth".to_string(), 4)].into(),
        false => Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_host::manifest::Manifest;

    fn manifest(variables: &str) -> Manifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[variables]\n{variables}\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\n"
        );
        Manifest::parse(&text, Default::default()).unwrap()
    }

    #[test]
    fn only_an_application_declaring_the_embedded_variables_gets_the_embedding() {
        let mp3edge = manifest(
            "jwt_secret = { required = true }\nadmin_email = { default = \"\" }\n\
             admin_password = { default = \"\" }\nredis_host = { default = \"127.0.0.1:6379\" }",
        );
        assert!(Mp3edgeEmbedding::of(&mp3edge).applies());
        assert_eq!(component_concurrency(&mp3edge).get("auth"), Some(&4));
        // Spin's conformance app `outbound-redis-variable-permission`: its own redis_host only.
        let other = manifest("redis_host = { default = \"localhost\" }");
        assert!(!Mp3edgeEmbedding::of(&other).applies());
        assert!(component_concurrency(&other).is_empty());
        assert!(!Mp3edgeEmbedding::of(&manifest("")).applies());
    }
}
