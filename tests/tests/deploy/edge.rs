//! The edge (the SpinApp and its runtime config) against `spin.toml`: the variables it requires,
//! the routes and components it serves, and the key-value and Redis settings they share.

use super::*;

pub(crate) fn spinapp_provides_what_spin_toml_requires() {
    let d = deploy();
    let spin = d.toml("spin.toml");
    let doc = d.only("SpinApp", "");
    let what = doc.what();
    let bound: BTreeMap<&str, &Value> = items(&doc.value, "/spec/variables").iter().map(|v| (text(v, "/name").unwrap_or(""), v)).collect();
    let from_secret = |name: &str| bound.get(name).is_some_and(|b| at(b, "/valueFrom/secretKeyRef").is_some());
    let mut problems = Problems::default();
    for (name, decl) in fields(&spin, "/variables") {
        let (is_bound, is) = (bound.contains_key(name.as_str()), |flag: &str| decl.get(flag) == Some(&Value::Bool(true)));
        problems.check(!is("required") || is_bound, format!("spin.toml variable {name} is required but {what} does not set it"));
        let secret = is("secret") && is_bound;
        problems
            .check(!secret || from_secret(name), format!("{what}: variable {name} is secret in spin.toml: bind it with a secretKeyRef"));
    }
    for (name, binding) in &bound {
        problems.check(at(&spin, &format!("/variables/{name}")).is_some(), format!("{what}: variable {name:?} is not in spin.toml"));
        let sources = ["value", "valueFrom"].iter().filter(|k| binding.get(**k).is_some()).count();
        problems.check(sources == 1, format!("{what}: variable {name} needs exactly one of value / valueFrom"));
    }
    for name in ["jwt_secret", "admin_email", "admin_password"] {
        problems.check(from_secret(name), format!("{what}: variable {name} must come from a Secret (valueFrom.secretKeyRef)"));
    }
    // Probes: routes of spin.toml. Readiness exercises the backends through /formats (no session
    // needed); liveness must answer without a session, and without backends unless it is
    // /formats too.
    let routes: Vec<(&str, &str)> =
        items(&spin, "/trigger/http").iter().filter_map(|t| Some((text(t, "/route")?, text(t, "/component")?))).collect();
    for probe in ["liveness", "readiness"] {
        let Some(path) = doc.str(&format!("/spec/checks/{probe}/httpGet/path")) else {
            problems.push(format!("{what}: spec.checks.{probe}.httpGet.path is not set"));
            continue;
        };
        let Some(component) = route_component(&routes, path) else {
            problems.push(format!("{what}: {probe} probe path {path} is no route of spin.toml"));
            continue;
        };
        let backends =
            ["key_value_stores", "sqlite_databases"].iter().any(|k| !items(&spin, &format!("/component/{component}/{k}")).is_empty());
        let problem = match (probe, path) {
            (_, "/formats") => continue,
            ("liveness", "/") if !backends => continue,
            ("liveness", "/") => {
                format!("component {component} serves it with the key-value store or the database: their outage would restart the edge")
            }
            ("readiness", _) => "use /formats, which needs no session and reaches the key-value store and the database".to_string(),
            _ => "use / (the web app's static page) or /formats, the routes known to answer 200 without a session".to_string(),
        };
        problems.push(format!("{what}: {probe} probe path {path}: {problem}"));
    }
    problems.report("SpinApp against spin.toml");
}

/// The component spin.toml routes `path` to: an exact route, else the longest `/prefix/...`.
pub(crate) fn route_component<'a>(routes: &[(&str, &'a str)], path: &str) -> Option<&'a str> {
    let prefix_of = |route: &str| route.strip_suffix("/...").filter(|p| path == *p || path.starts_with(&format!("{p}/"))).map(str::len);
    let exact = routes.iter().find(|(r, _)| *r == path).map(|(_, c)| *c);
    exact.or_else(|| routes.iter().filter_map(|(r, c)| Some((prefix_of(r)?, *c))).max_by_key(|(len, _)| *len).map(|(_, c)| c))
}

pub(crate) fn runtime_configs_cover_spin_toml_and_agree() {
    let d = deploy();
    let spin = d.toml("spin.toml");
    let edge_file = "deploy/runtime-config.toml";
    let edge = d.toml(edge_file);
    let replicas = at(&d.only("SpinApp", "").value, "/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let mut problems = Problems::default();
    for (section, field) in [("key_value_store", "key_value_stores"), ("sqlite_database", "sqlite_databases")] {
        for (component, decl) in fields(&spin, "/component") {
            for label in strings(decl, field) {
                let place = format!("{edge_file}: [{section}.{label}]");
                let Some(store) = at(&edge, &format!("/{section}/{label}")) else {
                    problems.push(format!("component {component} uses {field} label {label:?}, which {place} does not configure"));
                    continue;
                };
                let kind = text(store, "/type").unwrap_or("");
                let need: &[&str] = match kind {
                    "redis" => &["url"],
                    "libsql" => &["url", "token"],
                    "spin" => &[],
                    other => {
                        problems.push(format!("{place} has unknown type {other:?}"));
                        &[]
                    }
                };
                let shared = kind != "spin" || replicas <= 1;
                problems
                    .check(shared, format!("{place} type \"spin\" is a file of one pod; with {replicas} edge replicas use a shared store"));
                for key in need.iter().filter(|key| text(store, key).is_none_or(str::is_empty)) {
                    problems.push(format!("{place} type {kind:?} needs {key}"));
                }
            }
        }
    }
    // The worker's own runtime config (behind --runtime-config-file): the edge's key-value store,
    // and nothing its host rejects.
    let worker_file = "deploy/worker/runtime-config.toml";
    let mounted = mounted_config_file(d, &place(d, "--runtime-config-file").unwrap_or_default());
    problems.expect("the file behind --runtime-config-file", mounted, Ok(worker_file.to_string()), "");
    #[rustfmt::skip]
    problems.agree(d, &[
        ("deploy/runtime-config.toml /key_value_store/default/type", "=redis", "the edge shares its key-value store with the workers"),
        ("deploy/worker/runtime-config.toml /key_value_store/default/type", "=redis", "the workers share the edge's key-value store"),
        ("deploy/worker/runtime-config.toml /key_value_store/default/url", "deploy/runtime-config.toml /key_value_store/default/url", "the workers read the edge's uploads and write what it serves"),
        ("deploy/runtime-config.toml /sqlite_database/default/type", "=libsql", "the edge replicas share one database"),
    ]);
    for (label, db) in fields(&d.toml(worker_file), "/sqlite_database") {
        let why = " (the worker's host accepts only type \"spin\": host-worker/src/runtime_config.rs)";
        problems.expect(&format!("{worker_file}: [sqlite_database.{label}] type"), text(db, "/type"), Some("spin"), why);
    }
    problems.report("Runtime configs");
}
