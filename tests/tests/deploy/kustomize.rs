//! What `kubectl apply -k deploy/` (kustomize) would reject or silently get wrong, checked here
//! without kustomize: no kustomize the project can install from its registries reads this
//! kustomization (Debian 12's `kubernetes-client` is kubectl 1.20, whose built-in kustomize
//! v2.0.3 stops at the per-generator `options` with `json: unknown field "options"`).
//!
//! Checked: only the kustomization fields these checks understand are used; every resource is
//! a file of named objects, listed once, no two of which kustomize would see as the same object;
//! every generator's files exist, give valid and distinct keys, and make a ConfigMap (or Secret)
//! that the API server accepts, with only the generator options kustomize knows; every
//! ConfigMap a pod needs is generated or a resource; every `images:` entry is well formed and
//! names an image that a container or a configured image field (`configurations:`) really
//! holds, and every such configured field exists.

use super::*;

/// Kustomization fields these checks understand. Another one (e.g. `namePrefix`, `patches`)
/// changes what kustomize builds in ways the checks would not see, so it fails the test until
/// the checks learn it. A `namePrefix` would also rename the Redis Service but not the addresses
/// written as text (`redis.mp3edge.svc.cluster.local` in KEDA's triggers).
const KNOWN_FIELDS: &[&str] =
    &["apiVersion", "kind", "namespace", "resources", "configurations", "configMapGenerator", "secretGenerator", "images"];

/// Options of a generator entry that kustomize knows.
const GENERATOR_OPTIONS: &[&str] = &["disableNameSuffixHash", "immutable", "labels", "annotations"];

/// A generated ConfigMap or Secret key (the API server's rule for data keys).
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 253 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// An image tag as the OCI distribution spec allows it.
fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The objects of the kustomization's resource files.
fn resources<'a>(d: &'a Deploy, files: &'a [String]) -> impl Iterator<Item = &'a Doc> + 'a {
    d.docs.iter().filter(move |doc| files.contains(&doc.file))
}

/// The objects the generators of `field` (`configMapGenerator`, `secretGenerator`) make, as
/// kustomize would (the namespace set, the data read from the files), with what is wrong with
/// their entries.
fn generated(d: &Deploy, field: &str, kind: &str, problems: &mut Problems) -> Vec<Doc> {
    let k = d.kustomization();
    let mut out = Vec::new();
    for (index, generator) in items(&k.value, &format!("/{field}")).iter().enumerate() {
        let name = text(generator, "/name").unwrap_or("");
        let what = format!("{} {field}[{index}] ({name})", k.file);
        problems.check(!name.is_empty(), format!("{what}: no name"));
        let behavior = text(generator, "/behavior");
        problems.check(behavior.is_none_or(|b| b == "create"), format!("{what}: behavior {behavior:?} needs a base, which deploy/ has not"));
        for (option, _) in fields(generator, "/options").filter(|(o, _)| !GENERATOR_OPTIONS.contains(&o.as_str())) {
            problems.push(format!("{what}: kustomize knows no generator option {option:?}"));
        }
        let hash = at(generator, "/options/disableNameSuffixHash");
        problems.check(hash.is_none_or(Value::is_boolean), format!("{what}: disableNameSuffixHash is {hash:?}, not a boolean"));
        for (unknown, _) in fields(generator, "").filter(|(f, _)| !["name", "behavior", "options", "files", "literals", "envs"].contains(&f.as_str())) {
            problems.push(format!("{what}: {unknown:?} is a field these checks do not understand"));
        }
        let mut data = serde_json::Map::new();
        let mut add = |key: &str, value: String, problems: &mut Problems| {
            problems.check(valid_key(key), format!("{what}: key {key:?} is no valid {kind} key"));
            problems.check(data.insert(key.to_string(), Value::String(value)).is_none(), format!("{what}: key {key:?} twice"));
        };
        for spec in strings(generator, "/files") {
            let (key, path) = spec.split_once('=').unwrap_or((spec.rsplit('/').next().unwrap(), spec));
            match std::fs::read_to_string(d.root.join("deploy").join(path)) {
                Ok(content) => add(key, content, problems),
                Err(e) => problems.push(format!("{what}: file deploy/{path}: {e}")),
            }
        }
        let env_lines: Vec<String> = strings(generator, "/envs")
            .into_iter()
            .flat_map(|path| match std::fs::read_to_string(d.root.join("deploy").join(path)) {
                Ok(content) => content.lines().map(str::to_string).collect(),
                Err(e) => {
                    problems.push(format!("{what}: envs file deploy/{path}: {e}"));
                    Vec::new()
                }
            })
            .collect();
        let literals = strings(generator, "/literals").into_iter().map(str::to_string);
        for line in literals.chain(env_lines.into_iter().filter(|l| !l.trim().is_empty() && !l.starts_with('#'))) {
            match line.split_once('=') {
                Some((key, value)) => add(key, value.to_string(), problems),
                None => problems.push(format!("{what}: {line:?} is no KEY=value")),
            }
        }
        let data_field = if kind == "Secret" { "stringData" } else { "data" };
        let value = serde_json::json!({
            "apiVersion": "v1",
            "kind": kind,
            "metadata": { "name": name, "namespace": d.namespace() },
            data_field: data,
        });
        out.push(Doc { file: format!("{} ({field})", k.file), index, value });
    }
    out
}

pub(crate) fn kustomization_builds_as_kustomize_would() {
    let d = deploy();
    let k = d.kustomization();
    let mut problems = Problems::default();
    problems.expect(&format!("{}: apiVersion", k.file), k.api_version(), "kustomize.config.k8s.io/v1beta1", "");
    for (field, _) in fields(&k.value, "").filter(|(f, _)| !KNOWN_FIELDS.contains(&f.as_str())) {
        problems.push(format!("{}: {field:?} is a field these checks do not understand; teach them before using it", k.file));
    }
    let files = d.kustomize_files("resources");
    for (i, file) in files.iter().enumerate() {
        problems.check(!files[..i].contains(file), format!("{}: resource {file} listed twice (its objects twice)", k.file));
        let parsed = !d.parse_errors.iter().any(|e| e.starts_with(&format!("{file}:")));
        problems.check(parsed, format!("{}: resource {file} does not parse", k.file));
        problems.check(d.docs.iter().any(|doc| &doc.file == file), format!("{}: resource {file} holds no object", k.file));
    }
    // The objects kustomize would emit (all in one namespace), each once by (group, kind, name).
    let mut built: Vec<Doc> = generated(d, "configMapGenerator", "ConfigMap", &mut problems);
    built.extend(generated(d, "secretGenerator", "Secret", &mut problems));
    for doc in &built {
        validate(doc, &mut problems);
    }
    let mut ids = BTreeSet::new();
    for doc in resources(d, &files).chain(&built) {
        problems.check(!doc.kind().is_empty() && !doc.api_version().is_empty(), format!("{}: no apiVersion or kind", doc.what()));
        problems.check(!doc.name().is_empty(), format!("{}: no metadata.name", doc.what()));
        let group = doc.api_version().rsplit_once('/').map_or("", |(group, _)| group);
        let id = (group.to_string(), doc.kind().to_string(), doc.name().to_string());
        problems.check(ids.insert(id), format!("{}: kustomize already has an object with this id", doc.what()));
    }
    // Every ConfigMap a pod needs is there.
    let config_maps: BTreeSet<&str> = resources(d, &files).chain(&built).filter(|o| o.kind() == "ConfigMap").map(Doc::name).collect();
    for doc in resources(d, &files) {
        for volume in items(&doc.value, "/spec/template/spec/volumes") {
            for name in required_config_maps(volume).into_iter().filter(|name| !config_maps.contains(name)) {
                problems.push(format!("{}: volume {:?} needs ConfigMap {name}, which is neither generated nor a resource", doc.what(), volume.get("name")));
            }
        }
    }
    // The image fields kustomize retags: the containers', and those `configurations:` name.
    let mut images: Vec<(String, String)> = Vec::new();
    for doc in resources(d, &files) {
        for list in ["/spec/template/spec/containers", "/spec/template/spec/initContainers"] {
            for (i, container) in items(&doc.value, list).iter().enumerate() {
                images.push((format!("{} {list}/{i}", doc.what()), text(container, "/image").unwrap_or("").to_string()));
            }
        }
    }
    for file in d.kustomize_files("configurations") {
        let Ok(config) = parse_yaml_docs(&d.read(&file)) else {
            problems.push(format!("{}: configuration {file} does not parse", k.file));
            continue;
        };
        let config = config.into_iter().next().unwrap_or(Value::Null);
        for (field, _) in fields(&config, "").filter(|(f, _)| f.as_str() != "images") {
            problems.push(format!("{file}: {field:?} is a field these checks do not understand"));
        }
        for entry in items(&config, "/images") {
            let (kind, path) = (text(entry, "/kind").unwrap_or(""), text(entry, "/path").unwrap_or(""));
            let objects: Vec<&Doc> = resources(d, &files).filter(|doc| doc.kind() == kind).collect();
            problems.check(!objects.is_empty(), format!("{file}: images path {path} of kind {kind:?}, which no resource is"));
            for doc in objects {
                match text(&doc.value, path) {
                    Some(image) => images.push((format!("{} /{path}", doc.what()), image.to_string())),
                    None => problems.push(format!("{file}: {} has no image at {path} to retag", doc.what())),
                }
            }
        }
    }
    for entry in items(&k.value, "/images") {
        let name = text(entry, "/name").unwrap_or("");
        for (field, _) in fields(entry, "").filter(|(f, _)| !["name", "newName", "newTag", "digest"].contains(&f.as_str())) {
            problems.push(format!("{}: images entry {name}: kustomize knows no field {field:?}", k.file));
        }
        let tag = text(entry, "/newTag");
        problems.check(tag.is_none_or(valid_tag), format!("{}: images entry {name}: newTag {tag:?} is no valid image tag", k.file));
        let used: Vec<&str> = images.iter().filter(|(_, image)| kustomization::split_image(image).0 == name).map(|(at, _)| at.as_str()).collect();
        problems.check(!used.is_empty(), format!("{}: images entry {name} matches no image field of the resources ({images:?})", k.file));
    }
    problems.report("What kustomize would build from deploy/");
}
