//! The Spin application manifest (`spin.toml`, manifest version 2), as far as the host needs it.
//!
//! Owns parsing and validation of the manifest: application variables, HTTP triggers and the
//! per-component grants (key-value stores, SQLite databases, outbound hosts, variables). Unknown
//! sections Spin understands (build commands, other triggers) are accepted and ignored, so the
//! same file serves `spin up` and `mp3edge up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: Triggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Application {
    pub name: String,
}

/// An application variable as declared in `[variables]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Parsed so that a misspelt key is an error; keeping secrets out of logs is what this
    /// host does for every variable.
    #[serde(default)]
    #[allow(dead_code)]
    pub secret: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Triggers {
    #[serde(default)]
    http: Vec<HttpTriggerDecl>,
    #[serde(default)]
    redis: Vec<RedisTriggerDecl>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpTriggerDecl {
    pub route: String,
    pub component: String,
}

/// One `[[trigger.redis]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisTriggerDecl {
    pub channel: String,
    pub component: String,
}

/// One `[component.NAME]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A parsed, checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub application: Application,
    pub variables: BTreeMap<String, VariableDecl>,
    pub http_triggers: Vec<HttpTriggerDecl>,
    pub components: BTreeMap<String, ComponentDecl>,
    /// Directory of the manifest; component sources are relative to it.
    pub base_dir: PathBuf,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Manifest::parse(&text, base_dir).with_context(|| format!("in manifest {}", path.display()))
    }

    pub fn parse(text: &str, base_dir: PathBuf) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!("spin_manifest_version must be 2, found {}", raw.spin_manifest_version);
        }
        for name in raw.variables.keys() {
            check_variable_name(name)?;
        }
        for (name, decl) in &raw.variables {
            if decl.required && decl.default.is_some() {
                bail!("variable {name:?} cannot be both required and have a default");
            }
        }
        for trigger in &raw.trigger.http {
            if !raw.component.contains_key(&trigger.component) {
                bail!("route {:?} names unknown component {:?}", trigger.route, trigger.component);
            }
            if !trigger.route.starts_with('/') {
                bail!("route {:?} must start with '/'", trigger.route);
            }
        }
        for trigger in &raw.trigger.redis {
            if !raw.component.contains_key(&trigger.component) {
                bail!("redis trigger {:?} names unknown component {:?}", trigger.channel, trigger.component);
            }
        }
        for (name, component) in &raw.component {
            for var in component.variables.keys() {
                check_variable_name(var).with_context(|| format!("component {name:?}"))?;
            }
            for template in component.variables.values().chain(&component.allowed_outbound_hosts) {
                for reference in template_references(template)? {
                    if !raw.variables.contains_key(&reference) {
                        bail!("component {name:?} refers to undeclared variable {reference:?}");
                    }
                }
            }
        }
        Ok(Manifest {
            application: raw.application,
            variables: raw.variables,
            http_triggers: raw.trigger.http,
            components: raw.component,
            base_dir,
        })
    }

    pub fn component_source(&self, name: &str) -> Result<PathBuf> {
        let decl = self.components.get(name).with_context(|| format!("no component {name:?}"))?;
        Ok(self.base_dir.join(&decl.source))
    }
}

/// Spin variable names: lowercase ASCII letters, digits and underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid variable name {name:?}: use lowercase letters, digits and '_', starting with a letter");
    }
    Ok(())
}

/// The variable names a `{{ name }}` template refers to.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| format!("unclosed '{{{{' in {template:?}"))?;
        let name = after[..end].trim().to_string();
        check_variable_name(&name)?;
        names.push(name);
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// Replaces every `{{ name }}` in `template` with `lookup(name)`.
pub fn expand_template(template: &str, lookup: impl Fn(&str) -> Result<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| format!("unclosed '{{{{' in {template:?}"))?;
        out.push_str(&lookup(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secret = { required = true, secret = true }
host = { default = "127.0.0.1:6379" }
[[trigger.http]]
route = "/a/..."
component = "a"
[component.a]
source = "a.wasm"
allowed_outbound_hosts = ["redis://{{ host }}"]
[component.a.variables]
secret = "{{ secret }}"
[component.a.build]
command = "true"
"#;

    #[test]
    fn parses_the_fields_the_host_uses() {
        let m = Manifest::parse(MINIMAL, PathBuf::from("/app")).unwrap();
        assert_eq!(m.http_triggers[0].route, "/a/...");
        assert!(m.variables["secret"].required);
        assert_eq!(m.component_source("a").unwrap(), PathBuf::from("/app/a.wasm"));
    }

    #[test]
    fn rejects_unknown_components_and_variables() {
        let bad = MINIMAL.replace("component = \"a\"", "component = \"b\"");
        assert!(Manifest::parse(&bad, PathBuf::new()).is_err());
        let bad = MINIMAL.replace("{{ host }}", "{{ nope }}");
        assert!(Manifest::parse(&bad, PathBuf::new()).is_err());
        let bad = MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&bad, PathBuf::new()).is_err());
    }

    #[test]
    fn templates() {
        assert_eq!(template_references("redis://{{ host }}:{{port}}").unwrap(), vec!["host", "port"]);
        assert!(template_references("{{ Bad }}").is_err());
        assert!(template_references("{{ open").is_err());
        let expanded = expand_template("redis://{{ host }}/x", |n| Ok(format!("<{n}>"))).unwrap();
        assert_eq!(expanded, "redis://<host>/x");
    }

    #[test]
    fn the_projects_own_manifest_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let m = Manifest::load(&path).unwrap();
        assert!(m.http_triggers.iter().any(|t| t.route == "/login"));
    }
}
