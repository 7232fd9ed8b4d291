//! Secrets: deploy/ carries only templates with placeholders, every Secret key a manifest uses
//! has a template, and the edge's runtime-config Secret carries `deploy/runtime-config.toml`.

use super::*;

/// Every `secretKeyRef` in a JSON tree: (path, Secret name, key).
pub(crate) fn secret_refs(value: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (format!("{path}.{k}"), v)).collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (format!("{path}.{i}"), v)).collect(),
        _ => return,
    };
    for (here, v) in children {
        if here.ends_with(".secretKeyRef") {
            out.push((here.clone(), text(v, "/name").unwrap_or("").to_string(), text(v, "/key").unwrap_or("").to_string()));
        }
        secret_refs(v, &here, out);
    }
}

pub(crate) fn secrets_are_templates_only() {
    let d = deploy();
    let mut problems = Problems::default();
    let mut templates: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for doc in d.of_kind("Secret") {
        let what = doc.what();
        problems.check(doc.file.ends_with(".example.yaml"), format!("{what}: Secrets belong in a *.example.yaml template"));
        let secret: Secret = doc.typed("");
        let data = secret.data.unwrap_or_default();
        problems.check(data.is_empty(), format!("{what}: use stringData with CHANGE-ME placeholders, not base64 data"));
        let string_data = secret.string_data.unwrap_or_default();
        for (key, value) in string_data.iter().filter(|(_, value)| !value.contains("CHANGE-ME")) {
            problems.push(format!("{what}: stringData.{key} is {value:?}, no CHANGE-ME placeholder: a template carries no real value"));
        }
        templates.insert(doc.name().to_string(), string_data);
    }
    // Every Secret the manifests use has a template with that key.
    for doc in d.docs.iter().filter(|doc| doc.kind() != "Secret") {
        let mut refs = Vec::new();
        secret_refs(&doc.value, "", &mut refs);
        for (path, name, key) in refs {
            let has = templates.get(&name).map(|keys| keys.contains_key(&key));
            problems.check(has.is_some(), format!("{}: {path} names Secret {name:?}, which no template provides", doc.what()));
            problems
                .check(has != Some(false), format!("{}: {path} needs key {key:?} of Secret {name}, which its template lacks", doc.what()));
        }
    }
    // The edge's runtime config Secret carries deploy/runtime-config.toml, as its single key.
    let spinapp = d.only("SpinApp", "");
    let name = spinapp.str("/spec/runtimeConfig/loadFromSecret").expect("the SpinApp's spec.runtimeConfig.loadFromSecret is set");
    let keys = templates.get(name).cloned().unwrap_or_default();
    let what = format!("Secret template {name} (loadFromSecret of {})", spinapp.what());
    let why = " (the spin-operator's single key)";
    problems.expect(&format!("the keys of {what}"), keys.keys().map(String::as_str).collect(), vec!["runtime-config.toml"], why);
    if let Some(config) = keys.get("runtime-config.toml") {
        let edge = d.toml("deploy/runtime-config.toml");
        let same = config.parse::<toml::Table>().is_ok_and(|t| serde_json::to_value(t).unwrap() == edge);
        problems.check(same, format!("{what}: runtime-config.toml is not deploy/runtime-config.toml"));
    }
    problems.report("Secrets");
}
