//! Static checks of the Kubernetes deployment assets in `deploy/` (no cluster needed).
//!
//! The shape of every object is left to the real schemas, made strict (unknown fields rejected,
//! as `kubectl apply`'s default field validation does):
//! * each SpinKube resource (SpinApp, SpinAppExecutor) validates against its spin-operator v0.6.1
//!   CRD in `../shared/schemas/`, and its metadata against Kubernetes' `ObjectMeta`;
//! * each core object validates against the Kubernetes OpenAPI definition of its kind, as
//!   k8s-openapi carries it (its `schemars` feature), required fields included.
//!
//! KEDA's CRD is not available offline, so the `ScaledObject` gets a few hand checks of the fields
//! mp3edge relies on. Everything else here is what no schema can express: what the API server
//! checks beyond its schema (DNS names, selectors, ports and volumes that must resolve), the
//! files agreeing with each other and with the project (`spin.toml`'s variables, routes and
//! labels, the worker's clap flags, its Dockerfile, the Makefile's plugins, `scripts/setup.sh`,
//! `job-model`'s stream names, the Redis Service, the images named in `kustomization.yaml` and
//! `deploy/README.md`), and the project's rules (Secrets are templates only, limits are set).
//! Values that two places must share are rows of one table helper, [`Problems::agree`].
//!
//! When `kubectl` is installed, `kubectl kustomize deploy/` must also build.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use e2e_tests::workspace_root;
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

const DOCKERFILE: &str = "deploy/worker/Dockerfile";
const SPINKUBE_GROUP: &str = "core.spinkube.dev/";
/// The worker's container, as a place of [`Problems::agree`].
const WORKER_CONTAINER: &str = "Deployment mp3edge-worker /spec/template/spec/containers/0";

// ------------------------------------------------------------------------------------------
// Loading

/// One YAML document of a file under deploy/.
struct Doc {
    /// Path relative to the workspace root, e.g. `deploy/worker/deployment.yaml`.
    file: String,
    /// Index of the document in its file (0-based, empty documents counted).
    index: usize,
    value: Value,
}

impl Doc {
    fn str(&self, path: &str) -> Option<&str> {
        text(&self.value, path)
    }
    fn kind(&self) -> &str {
        self.str("/kind").unwrap_or("")
    }
    fn api_version(&self) -> &str {
        self.str("/apiVersion").unwrap_or("")
    }
    fn name(&self) -> &str {
        self.str("/metadata/name").unwrap_or("")
    }
    /// `deploy/x.yaml (document 2, Deployment mp3edge-worker)`, for messages.
    fn what(&self) -> String {
        format!("{} (document {}, {} {})", self.file, self.index + 1, self.kind(), self.name())
    }
    /// The part at `path` as its k8s-openapi type (its shape is the schema tests' business).
    fn typed<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let value = at(&self.value, path).cloned().unwrap_or_else(|| panic!("{}: no {path}", self.what()));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{} at {path}: {e}", self.what()))
    }
}

/// The value at `path`: the segments of a JSON pointer, plus `[key=value]` for the element of
/// an array whose `key` is `value`, and `[after=text]` for the element after `text` in an array
/// (the value of a flag in a command line).
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').filter(|s| !s.is_empty()).try_fold(value, |v, segment| {
        let selector = segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')).and_then(|s| s.split_once('='));
        match (selector, v) {
            (Some(("after", flag)), Value::Array(a)) => a.get(a.iter().position(|x| *x == flag)? + 1),
            (Some((key, want)), Value::Array(a)) => a.iter().find(|x| text(x, key) == Some(want)),
            (None, Value::Array(a)) => a.get(segment.parse::<usize>().ok()?),
            (None, Value::Object(map)) => map.get(&segment.replace("~1", "/").replace("~0", "~")),
            _ => None,
        }
    })
}

fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// The array at `path` (empty when absent).
fn items<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The entries of the object at `path` (none when absent).
fn fields<'a>(value: &'a Value, path: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    at(value, path).and_then(Value::as_object).into_iter().flatten()
}

/// The strings of the array at `path`.
fn strings<'a>(value: &'a Value, path: &str) -> Vec<&'a str> {
    items(value, path).iter().filter_map(Value::as_str).collect()
}

struct Deploy {
    root: PathBuf,
    docs: Vec<Doc>,
    parse_errors: Vec<String>,
    yaml_files: Vec<String>,
}

fn deploy() -> &'static Deploy {
    static DEPLOY: OnceLock<Deploy> = OnceLock::new();
    DEPLOY.get_or_init(|| {
        let root = workspace_root();
        let mut d = Deploy { root: root.clone(), docs: Vec::new(), parse_errors: Vec::new(), yaml_files: Vec::new() };
        for path in files_under(&root.join("deploy"), &["yaml", "yml"]) {
            let file = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            // Local, git-ignored copies of templates (deploy/.gitignore).
            let name = file.rsplit('/').next().unwrap();
            if name == "secrets.yaml" || name.contains(".local.") {
                continue;
            }
            match parse_yaml_docs(&d.read(&file)) {
                Ok(values) => d.docs.extend(docs_of(&file, values)),
                Err(e) => d.parse_errors.push(format!("{file}: {e}")),
            }
            d.yaml_files.push(file);
        }
        d
    })
}

/// Files below `dir` with one of `extensions`, sorted (build output and dependencies skipped).
fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() && !matches!(&*name, "target" | "node_modules" | ".git") {
                pending.push(path);
            } else if path.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// All documents of a YAML stream, as JSON values (an empty document is `null`).
fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let documents = serde_norway::Deserializer::from_str(text).enumerate();
    documents.map(|(i, document)| Value::deserialize(document).map_err(|e| format!("document {}: {e}", i + 1))).collect()
}

/// The non-empty documents of `file`.
fn docs_of(file: &str, values: Vec<Value>) -> impl Iterator<Item = Doc> {
    let documents = values.into_iter().enumerate().filter(|(_, v)| !v.is_null());
    documents.map(move |(index, value)| Doc { file: file.to_string(), index, value })
}

impl Deploy {
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.root.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
    }

    /// A TOML file of the workspace, as JSON.
    fn toml(&self, file: &str) -> Value {
        let table: toml::Table = self.read(file).parse().unwrap_or_else(|e| panic!("{file} is not valid TOML: {e}"));
        serde_json::to_value(table).unwrap()
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    /// The only object of `kind` named `name` (any name if empty).
    fn one(&self, kind: &str, name: &str) -> Result<&Doc, String> {
        let found: Vec<&Doc> = self.docs.iter().filter(|d| d.kind() == kind && (name.is_empty() || d.name() == name)).collect();
        match found[..] {
            [doc] => Ok(doc),
            _ => Err(format!("deploy/ must have one {kind} {name}, found {:?}", found.iter().map(|d| d.what()).collect::<Vec<_>>())),
        }
    }

    #[track_caller]
    fn only(&self, kind: &str, name: &str) -> &Doc {
        self.one(kind, name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn kustomization(&self) -> &Doc {
        let k = self.only("Kustomization", "");
        assert_eq!(k.file, "deploy/kustomization.yaml", "the Kustomization must be deploy/kustomization.yaml");
        k
    }

    /// A list of files in the kustomization (`resources`, `configurations`), as deploy/ paths.
    fn kustomize_files(&self, field: &str) -> Vec<String> {
        strings(&self.kustomization().value, field).iter().map(|f| format!("deploy/{f}")).collect()
    }

    fn namespace(&self) -> String {
        self.kustomization().str("/namespace").expect("deploy/kustomization.yaml has a namespace").to_string()
    }

    fn worker(&self) -> &Doc {
        self.only("Deployment", "mp3edge-worker")
    }

    /// The worker's only container.
    fn worker_container(&self) -> Container {
        let containers: Vec<Container> = self.worker().typed("/spec/template/spec/containers");
        assert_eq!(containers.len(), 1, "{}: expected one container", self.worker().what());
        containers.into_iter().next().unwrap()
    }

    /// `configMapGenerator` entries of the kustomization: name -> (key -> file under deploy/).
    fn generated_config_maps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let key_file = |spec: &str| {
            let (key, path) = spec.split_once('=').unwrap_or((spec.rsplit('/').next().unwrap(), spec));
            (key.to_string(), format!("deploy/{path}"))
        };
        let generators = items(&self.kustomization().value, "/configMapGenerator");
        generators
            .iter()
            .map(|g| (text(g, "/name").unwrap_or("").to_string(), strings(g, "/files").into_iter().map(key_file).collect()))
            .collect()
    }
}

/// The ConfigMaps a pod volume needs (optional ones of a projected volume left out).
fn required_config_maps(volume: &Value) -> Vec<&str> {
    let sources = items(volume, "/projected/sources").iter().filter_map(|s| s.get("configMap"));
    let maps = volume.get("configMap").into_iter().chain(sources).filter(|cm| cm.get("optional") != Some(&Value::Bool(true)));
    maps.filter_map(|cm| text(cm, "/name")).collect()
}

/// The problems one test finds; `report` fails the test with all of them at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: String) {
        self.0.push(problem);
    }
    /// Records `problem` unless `ok`.
    fn check(&mut self, ok: bool, problem: String) {
        if !ok {
            self.push(problem);
        }
    }
    /// Records `{what} is {got:?}, expected {want:?}{why}` unless they are equal.
    fn expect<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T, why: &str) {
        self.check(got == want, format!("{what} is {got:?}, expected {want:?}{why}"));
    }
    /// Checks a table of agreements: rows `(place, place or =literal, why)` (see [`place`]); the
    /// first place must hold a value, and the second the same.
    fn agree(&mut self, d: &Deploy, rows: &[(&str, &str, &str)]) {
        for (a, b, why) in rows {
            let (x, y) = (place(d, a), place(d, b));
            let shown = |v: &Option<String>| v.as_ref().map_or("missing".to_string(), |v| format!("{v:?}"));
            let other = b.strip_prefix('=').map_or(format!("{b} is {}", shown(&y)), |want| format!("expected {want:?}"));
            self.check(x.is_some() && x == y, format!("{a} is {}, {other}: {why}", shown(&x)));
        }
    }
    #[track_caller]
    fn report(self, title: &str) {
        let mut seen = BTreeSet::new();
        let unique: Vec<&str> = self.0.iter().map(String::as_str).filter(|p| seen.insert(*p)).collect();
        assert!(unique.is_empty(), "{title}:\n  - {}", unique.join("\n  - "));
    }
}

/// The value at a place of deploy/ or the project, as text: `Kind [name] /path` (the object of
/// deploy/ of that kind and name), `file.toml /path` (a TOML file of the workspace), `--flag`
/// (the worker's command line: the image's ENTRYPOINT and the Deployment's args) or `=text`.
fn place(d: &Deploy, place: &str) -> Option<String> {
    if let Some(literal) = place.strip_prefix('=') {
        return Some(literal.to_string());
    }
    if let Some(flag) = place.strip_prefix("--") {
        return worker_flags(d).remove(flag);
    }
    let (what, path) = place.rsplit_once(' ').unwrap_or_else(|| panic!("place {place:?} has no path"));
    let value = match what.split_once(' ').unwrap_or((what, "")) {
        (file, _) if file.ends_with(".toml") => d.toml(file),
        (kind, name) => d.one(kind, name).ok()?.value.clone(),
    };
    at(&value, path).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
}

// ------------------------------------------------------------------------------------------
// Syntax and schemas

#[test]
fn every_yaml_file_parses() {
    let d = deploy();
    Problems(d.parse_errors.clone()).report("YAML under deploy/ that does not parse");
    assert!(!d.docs.is_empty(), "no YAML document under deploy/");
}

/// Makes a schema strict: every object schema that lists `properties` and says nothing about
/// others rejects unknown fields, as the API server does with strict field validation (the
/// default of `kubectl apply`).
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let open = map.contains_key("additionalProperties") || map.contains_key("x-kubernetes-preserve-unknown-fields");
            if map.contains_key("properties") && !open {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

type Validators = BTreeMap<(String, String), jsonschema::Validator>;

/// Strict validators by (apiVersion, kind): every version of the CRDs in `../shared/schemas/`,
/// the core kinds deploy/ uses, and `ObjectMeta` (under the empty key), which CRD schemas leave
/// to the API server.
fn validators() -> &'static Validators {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};

    fn core<T: JsonSchema>(api_version: &str, kind: &str) -> ((String, String), Value) {
        let schema = SchemaGenerator::default().into_root_schema_for::<T>();
        ((api_version.to_string(), kind.to_string()), serde_json::to_value(schema).unwrap())
    }
    fn resource<T: JsonSchema + k8s_openapi::Resource>() -> ((String, String), Value) {
        core::<T>(T::API_VERSION, T::KIND)
    }

    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let mut schemas = vec![
            core::<ObjectMeta>("", ""),
            resource::<Namespace>(),
            resource::<Service>(),
            resource::<Secret>(),
            resource::<ConfigMap>(),
            resource::<Deployment>(),
            resource::<StatefulSet>(),
            resource::<HorizontalPodAutoscaler>(),
            resource::<NetworkPolicy>(),
        ];
        let dir = workspace_root().join("../shared/schemas");
        let crds = files_under(&dir, &["yaml"]);
        assert!(!crds.is_empty(), "{}: no CRD (spin-operator v0.6.1's live in shared/schemas/ beside the workspace)", dir.display());
        for path in crds {
            let crd = parse_yaml_docs(&std::fs::read_to_string(&path).unwrap()).expect("a CRD parses").remove(0);
            let (group, kind) = (text(&crd, "/spec/group").expect("CRD spec.group"), text(&crd, "/spec/names/kind").expect("CRD kind"));
            for version in items(&crd, "/spec/versions") {
                let api_version = format!("{group}/{}", text(version, "/name").expect("CRD version name"));
                // CRDs are OpenAPI v3 schemas, i.e. JSON Schema draft 4 with extensions.
                let mut schema = version.pointer("/schema/openAPIV3Schema").cloned().expect("CRD openAPIV3Schema");
                schema["$schema"] = "http://json-schema.org/draft-04/schema#".into();
                schemas.push(((api_version, kind.to_string()), schema));
            }
        }
        let compile = |(key, mut schema): ((String, String), Value)| {
            strict(&mut schema);
            let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema of {key:?} compiles: {e}"));
            (key, validator)
        };
        schemas.into_iter().map(compile).collect()
    })
}

/// What a strict API server would reject in `doc` on its schema, and a name that is no DNS-1123
/// subdomain (which no schema states).
fn validate(doc: &Doc, problems: &mut Problems) {
    let all = validators();
    let (api_version, kind) = (doc.api_version(), doc.kind());
    let Some(validator) = all.get(&(api_version.to_string(), kind.to_string())) else {
        let known: Vec<_> = all.keys().filter(|(v, _)| !v.is_empty()).collect();
        return problems.push(format!("{}: no schema for apiVersion {api_version:?} kind {kind:?} (known: {known:?})", doc.what()));
    };
    let errors = validator.iter_errors(&doc.value).map(|e| (e.instance_path().to_string(), e.to_string()));
    let metadata = doc.value.get("metadata").filter(|_| api_version.starts_with(SPINKUBE_GROUP));
    let meta = &all[&(String::new(), String::new())];
    let meta_errors =
        metadata.into_iter().flat_map(|m| meta.iter_errors(m).map(|e| (format!("/metadata{}", e.instance_path()), e.to_string())));
    for (path, error) in errors.chain(meta_errors) {
        problems.push(format!("{} at /{}: {error}", doc.what(), path.trim_start_matches('/')));
    }
    let dns = |label: &str| {
        let chars = label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        (1..=63).contains(&label.len()) && chars && !label.starts_with('-') && !label.ends_with('-')
    };
    let name = doc.name();
    problems.check(name.len() <= 253 && name.split('.').all(dns), format!("{}: metadata.name {name:?} is no DNS-1123 name", doc.what()));
}

#[test]
fn spinapps_validate_against_the_spin_operator_crd() {
    let d = deploy();
    let mut problems = Problems::default();
    for doc in d.docs.iter().filter(|doc| doc.api_version().starts_with(SPINKUBE_GROUP)) {
        validate(doc, &mut problems);
    }
    let spinapp = d.only("SpinApp", "");
    problems.check(spinapp.file == "deploy/spinapp.yaml", format!("{}: the SpinApp belongs in deploy/spinapp.yaml", spinapp.what()));
    // The executor: the shim SpinKube's install creates, or a SpinAppExecutor of deploy/.
    let executor = spinapp.str("/spec/executor");
    let known = executor == Some("containerd-shim-spin") || d.of_kind("SpinAppExecutor").any(|e| Some(e.name()) == executor);
    problems.check(known, format!("{}: spec.executor {executor:?} is neither containerd-shim-spin nor a SpinAppExecutor", spinapp.what()));
    problems.report("SpinKube objects that the spin-operator v0.6.1 CRDs reject");
}

#[test]
fn core_objects_match_the_kubernetes_api() {
    let d = deploy();
    let configurations = d.kustomize_files("configurations");
    let mut problems = Problems::default();
    for doc in &d.docs {
        // SpinKube's have their test; KEDA's CRD is not at hand (its own test); kustomize's files.
        let elsewhere = doc.api_version().starts_with(SPINKUBE_GROUP)
            || [("keda.sh/v1alpha1", "ScaledObject"), ("kustomize.config.k8s.io/v1beta1", "Kustomization")]
                .contains(&(doc.api_version(), doc.kind()))
            || configurations.contains(&doc.file);
        if !elsewhere {
            validate(doc, &mut problems);
        }
    }
    problems.report("Kubernetes objects that the API would reject");

    // Workload wiring the API server (or the kubelet) checks beyond the schema.
    let mut problems = Problems::default();
    let mut pods: Vec<(String, PodTemplateSpec)> = Vec::new();
    for doc in d.of_kind("Deployment").chain(d.of_kind("StatefulSet")) {
        let (what, pod) = (doc.what(), doc.typed::<PodTemplateSpec>("/spec/template"));
        let selector: BTreeMap<String, String> = doc.typed("/spec/selector/matchLabels");
        problems.check(!selector.is_empty(), format!("{what}: spec.selector.matchLabels is empty"));
        problems.check(labels_match(&selector, &pod), format!("{what}: spec.selector.matchLabels {selector:?} miss pod template labels"));
        if let Some(service) = doc.str("/spec/serviceName") {
            problems.check(d.one("Service", service).is_ok(), format!("{what}: serviceName {service} is no Service in deploy/"));
        }
        let claims = items(&doc.value, "/spec/volumeClaimTemplates").iter().filter_map(|c| text(c, "/metadata/name"));
        let volumes: BTreeSet<&str> =
            items(&doc.value, "/spec/template/spec/volumes").iter().filter_map(|v| text(v, "/name")).chain(claims).collect();
        for c in pod_containers(&pod) {
            for mount in c.volume_mounts.iter().flatten().filter(|m| !volumes.contains(m.name.as_str())) {
                problems.push(format!("{what}: container {} mounts volume {}, which the pod does not have", c.name, mount.name));
            }
            for (probe, name) in [(&c.liveness_probe, "liveness"), (&c.readiness_probe, "readiness"), (&c.startup_probe, "startup")] {
                if let Some(http) = probe.as_ref().and_then(|p| p.http_get.as_ref()) {
                    let found = resolve_port(std::slice::from_ref(c), &http.port).is_some();
                    problems.check(found, format!("{what}: container {} {name} probe port {:?} is none of its ports", c.name, http.port));
                }
            }
            let resources = c.resources.clone().unwrap_or_default();
            let memory_limit = resources.limits.is_some_and(|l| l.contains_key("memory"));
            problems.check(memory_limit, format!("{what}: container {} has no memory limit", c.name));
            problems.check(resources.requests.is_some(), format!("{what}: container {} has no resource requests", c.name));
        }
        pods.push((what, pod));
    }
    for doc in d.of_kind("Service") {
        let spec = doc.typed::<Service>("").spec.unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        if selector.is_empty() {
            continue;
        }
        let matched: Vec<&(String, PodTemplateSpec)> = pods.iter().filter(|(_, pod)| labels_match(&selector, pod)).collect();
        problems.check(!matched.is_empty(), format!("{}: selector {selector:?} matches no pod of deploy/", doc.what()));
        for (port, (what, pod)) in spec.ports.iter().flatten().flat_map(|port| matched.iter().map(move |m| (port, m))) {
            let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
            let found = resolve_port(pod_containers(pod), &target).is_some();
            problems.check(found, format!("{}: targetPort {target:?} is no container port of {what}", doc.what()));
        }
    }
    problems.report("Workloads and Services that do not fit together");
}

fn labels_match(selector: &BTreeMap<String, String>, pod: &PodTemplateSpec) -> bool {
    let labels = pod.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn pod_containers(pod: &PodTemplateSpec) -> &[Container] {
    pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default()
}

/// The container port a Service/probe port refers to.
fn resolve_port(containers: &[Container], port: &IntOrString) -> Option<i32> {
    let mut ports = containers.iter().flat_map(|c| c.ports.iter().flatten());
    match port {
        IntOrString::Int(n) => ports.map(|p| p.container_port).find(|p| p == n),
        IntOrString::String(name) => ports.find(|p| p.name.as_deref() == Some(name)).map(|p| p.container_port),
    }
}

// ------------------------------------------------------------------------------------------
// Kustomization and secrets

#[test]
fn kustomization_ties_everything_together() {
    let d = deploy();
    let k = d.kustomization();
    let namespace = d.namespace();
    let resources = d.kustomize_files("resources");
    let configurations = d.kustomize_files("configurations");
    let mut problems = Problems::default();
    #[rustfmt::skip]
    problems.agree(d, &[
        ("Kustomization /namespace", "=mp3edge", "the namespace of deploy/README.md and of KEDA's Redis address"),
        ("Namespace /metadata/name", "Kustomization /namespace", "the kustomization puts everything in the Namespace it creates"),
    ]);
    let generated = d.generated_config_maps().into_values().flat_map(BTreeMap::into_values);
    for file in resources.iter().chain(&configurations).cloned().chain(generated) {
        problems.check(d.root.join(&file).is_file(), format!("{}: {file} does not exist", k.file));
    }
    // Every manifest is applied, except the templates, the HPA alternative and kustomize's own.
    for file in &d.yaml_files {
        let optional = file.ends_with(".example.yaml") || file == "deploy/worker/hpa.yaml";
        let own = file == &k.file || configurations.contains(file);
        let problem = match optional {
            true => format!("{}: {file} must not be a resource (a template; or the HPA, which would fight KEDA's)", k.file),
            false => format!("{file} is not in the resources of {}", k.file),
        };
        problems.check(own || resources.contains(file) != optional, problem);
    }
    for kind in ["Namespace", "SpinApp", "Deployment", "StatefulSet", "Service", "ScaledObject"] {
        problems.check(d.of_kind(kind).any(|doc| resources.contains(&doc.file)), format!("{}: no {kind} among the resources", k.file));
    }
    for doc in &d.docs {
        let ns = doc.str("/metadata/namespace");
        problems.check(ns.is_none_or(|ns| ns == namespace), format!("{}: metadata.namespace {ns:?} is not {namespace:?}", doc.what()));
    }
    problems.report("deploy/kustomization.yaml");
}

/// Every `secretKeyRef` in a JSON tree: (path, Secret name, key).
fn secret_refs(value: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
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

#[test]
fn secrets_are_templates_only() {
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

// ------------------------------------------------------------------------------------------
// The edge against spin.toml

#[test]
fn spinapp_provides_what_spin_toml_requires() {
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
fn route_component<'a>(routes: &[(&str, &'a str)], path: &str) -> Option<&'a str> {
    let prefix_of = |route: &str| route.strip_suffix("/...").filter(|p| path == *p || path.starts_with(&format!("{p}/"))).map(str::len);
    let exact = routes.iter().find(|(r, _)| *r == path).map(|(_, c)| *c);
    exact.or_else(|| routes.iter().filter_map(|(r, c)| Some((prefix_of(r)?, *c))).max_by_key(|(len, _)| *len).map(|(_, c)| c))
}

#[test]
fn runtime_configs_cover_spin_toml_and_agree() {
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

// ------------------------------------------------------------------------------------------
// The worker: Dockerfile, flags, ports, probes, plugins

/// Stages of deploy/worker/Dockerfile: (base image, instructions (KEYWORD, arguments)).
struct Dockerfile(Vec<(String, Vec<(String, String)>)>);

fn dockerfile() -> Dockerfile {
    let text = deploy().read(DOCKERFILE);
    // Logical lines: comments dropped, `\` continuations joined.
    let mut logical = vec![String::new()];
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let current = logical.last_mut().unwrap();
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(&format!("{part} ")),
            None if line.is_empty() && current.is_empty() => {}
            None => {
                current.push_str(line);
                logical.push(String::new());
            }
        }
    }
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in logical.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (keyword, rest) = (keyword.to_ascii_uppercase(), rest.trim().to_string());
        if keyword == "FROM" {
            stages.push((rest.split_whitespace().next().unwrap_or("").to_string(), Vec::new()));
        } else {
            stages.last_mut().unwrap_or_else(|| panic!("{DOCKERFILE}: {keyword} before the first FROM")).1.push((keyword, rest));
        }
    }
    assert!(stages.len() >= 2, "{DOCKERFILE}: expected a multi-stage build (build stage + runtime stage)");
    Dockerfile(stages)
}

impl Dockerfile {
    fn runtime(&self) -> &(String, Vec<(String, String)>) {
        self.0.last().unwrap()
    }
    /// Arguments of the runtime stage's `keyword` instructions, last first.
    fn runtime_args(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.runtime().1.iter().rev().filter(move |(k, _)| k == keyword).map(|(_, a)| a.as_str())
    }
    /// The last `keyword` instruction of the runtime stage, exec form (JSON array).
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let args = self.runtime_args(keyword).next().unwrap_or_else(|| panic!("{DOCKERFILE}: the runtime stage has no {keyword}"));
        let why = "so that SIGTERM reaches mp3edge, not a shell";
        serde_json::from_str(args).unwrap_or_else(|_| panic!("{DOCKERFILE}: {keyword} must be in exec form (a JSON array) {why}: {args}"))
    }
    /// The (source, destination) pairs of the runtime stage's COPY instructions.
    fn copies(&self) -> impl Iterator<Item = (&str, &str)> {
        let parts = self.runtime_args("COPY").map(|args| args.split_whitespace().filter(|p| !p.starts_with("--")).collect::<Vec<_>>());
        parts.filter_map(|p| match p[..] {
            [src, dest] => Some((src, dest)),
            _ => None,
        })
    }
}

/// Packages named by `apt-get install` in the RUN instructions of a stage.
fn apt_packages(instructions: &[(String, String)]) -> BTreeSet<String> {
    let runs = instructions.iter().filter(|(k, _)| k == "RUN");
    let installs = runs.flat_map(|(_, args)| args.split("apt-get install").skip(1));
    let words = installs.flat_map(|rest| rest.split_whitespace().take_while(|t| !matches!(*t, "&&" | ";" | "||")));
    words.filter(|t| !t.starts_with('-')).map(str::to_string).collect()
}

/// `APT_PACKAGES=( ... )` of scripts/setup.sh, and what it adds only when needed
/// (`missing+=(nodejs)`).
fn setup_sh_packages() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = deploy().read("scripts/setup.sh");
    let body = text.split_once("APT_PACKAGES=(").expect("scripts/setup.sh has APT_PACKAGES=(").1;
    let body = body.split_once("\n)").expect("APT_PACKAGES=( ... ) is closed").0;
    let always = body.lines().flat_map(|l| l.split('#').next().unwrap().split_whitespace()).map(str::to_string).collect();
    let added = text.split("missing+=(").skip(1).filter_map(|rest| rest.split(')').next()).flat_map(str::split_whitespace);
    (always, added.filter(|p| !p.starts_with('"') && !p.starts_with('$')).map(str::to_string).collect())
}

/// Debian 12 -dev packages of scripts/setup.sh and the runtime library package the binary
/// then links.
const RUNTIME_LIBRARIES: &[(&str, &str)] = &[
    ("libavformat-dev", "libavformat59"),
    ("libavcodec-dev", "libavcodec59"),
    ("libswresample-dev", "libswresample4"),
    ("libswscale-dev", "libswscale6"),
    ("libavutil-dev", "libavutil57"),
    ("libssl-dev", "libssl3"),
];

/// A Makefile variable (`NAME := a b c`), split.
fn makefile_list(name: &str) -> Vec<String> {
    let text = deploy().read("Makefile");
    let line = text.lines().find_map(|l| l.split_once(":=").filter(|(n, _)| n.trim() == name));
    line.unwrap_or_else(|| panic!("the Makefile has no `{name} :=`")).1.split_whitespace().map(str::to_string).collect()
}

/// Flags of `mp3edge worker` (kebab-case): the fields of `WorkerArgs` and of the structs it
/// flattens, found in the sources of the workspace's crates (wherever the split puts them).
fn known_worker_flags() -> BTreeSet<String> {
    // struct name -> (field, type of a #[command(flatten)] field)
    let mut structs: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    let cargo = deploy().toml("Cargo.toml");
    let sources = strings(&cargo, "/workspace/members").into_iter().map(|m| workspace_root().join(m).join("src"));
    for path in sources.filter(|src| src.is_dir()).flat_map(|src| files_under(&src, &["rs"])) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let (mut current, mut flatten) = (None::<String>, false);
        for t in text.lines().map(str::trim) {
            if let Some(rest) = t.strip_prefix("pub struct ").filter(|_| t.ends_with('{')) {
                let name = rest.trim_end_matches('{').trim().to_string();
                structs.entry(name.clone()).or_default();
                current = Some(name);
            } else if t == "}" {
                current = None;
            } else if let Some(name) = &current {
                if t.starts_with("#[command(flatten") {
                    flatten = true;
                } else if let Some((field, ty)) = t.strip_prefix("pub ").and_then(|r| r.split_once(':')) {
                    let ty = ty.trim().trim_end_matches(',').rsplit("::").next().unwrap().to_string();
                    structs.get_mut(name).unwrap().push((field.trim().to_string(), flatten.then_some(ty)));
                    flatten = false;
                }
            }
        }
    }
    let (mut flags, mut pending, mut seen) = (BTreeSet::new(), vec!["WorkerArgs".to_string()], BTreeSet::new());
    while let Some(name) = pending.pop() {
        for (field, flattened) in structs.get(&name).filter(|_| seen.insert(name.clone())).cloned().unwrap_or_default() {
            match flattened {
                Some(ty) => pending.push(ty),
                None => {
                    flags.insert(field.replace('_', "-"));
                }
            }
        }
    }
    assert!(flags.contains("plugins"), "could not read the worker's flags (WorkerArgs) from the workspace's crates (found {flags:?})");
    flags
}

/// `--flag value` pairs of the worker's command line: the image's ENTRYPOINT (after
/// `mp3edge worker`) followed by the Deployment's args (which replace the image's CMD).
/// Panics with the reason on a malformed or repeated flag.
fn worker_flags(d: &Deploy) -> BTreeMap<String, String> {
    let docker = dockerfile();
    let entrypoint = docker.exec_form("ENTRYPOINT");
    let container = d.worker_container();
    assert!(container.command.is_none(), "{}: container.command would replace the image's ENTRYPOINT; use args", d.worker().what());
    let starts = entrypoint.len() >= 2 && entrypoint[0].ends_with("/mp3edge") && entrypoint[1] == "worker";
    assert!(starts, "{DOCKERFILE}: ENTRYPOINT must start with the mp3edge binary and `worker`: {entrypoint:?}");
    let args = container.args.unwrap_or_else(|| docker.exec_form("CMD"));
    let entrypoint = entrypoint[2..].iter().map(|t| (t, "the Dockerfile's ENTRYPOINT"));
    let mut tokens = entrypoint.chain(args.iter().map(|t| (t, "the Deployment's args")));
    let mut flags = BTreeMap::new();
    while let Some((token, source)) = tokens.next() {
        let flag = token.strip_prefix("--").unwrap_or_else(|| panic!("{source}: expected a --flag, found {token:?}"));
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (flag.to_string(), tokens.next().unwrap_or_else(|| panic!("{source}: --{flag} has no value")).0.clone()),
        };
        let once = flags.insert(name.clone(), value).is_none();
        assert!(once, "--{name} is given twice (ENTRYPOINT + args): `mp3edge worker` rejects a repeated flag");
    }
    flags
}

/// The deploy/ file behind a file path of the worker container: a key of a generated ConfigMap
/// that a mounted volume needs.
fn mounted_config_file(d: &Deploy, path: &str) -> Result<String, String> {
    let (dir, key) = path.rsplit_once('/').ok_or_else(|| format!("{path:?} is no absolute file path"))?;
    let container = d.worker_container();
    let mount = container.volume_mounts.iter().flatten().find(|m| m.mount_path.trim_end_matches('/') == dir);
    let mount = mount.ok_or_else(|| format!("{path} is in no mounted volume of the worker (no volumeMount at {dir})"))?;
    let volume = at(&d.worker().value, &format!("/spec/template/spec/volumes/[name={}]", mount.name)).unwrap_or(&Value::Null);
    let (config_maps, generated) = (required_config_maps(volume), d.generated_config_maps());
    let file = config_maps.iter().find_map(|name| generated.get(*name)?.get(key)).cloned();
    file.ok_or_else(|| format!("{path}: no ConfigMap of volume {} ({config_maps:?}) is generated with key {key}", mount.name))
}

#[test]
fn worker_ports_probes_and_flags_agree() {
    let d = deploy();
    let what = d.worker().what();
    let docker = dockerfile();
    let flags = worker_flags(d);
    let container = d.worker_container();
    let mut problems = Problems::default();

    let known = known_worker_flags();
    for flag in flags.keys().filter(|f| !known.contains(*f)) {
        problems.push(format!("--{flag} is no flag of `mp3edge worker` (WorkerArgs and the structs it flattens have {known:?})"));
    }
    // The admin endpoint of --admin-listen: exposed, the container's port `admin`, probed, scraped.
    let admin = flags.get("admin-listen").map_or("", String::as_str);
    let port = match admin.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]", port)) => port,
        _ => panic!("--admin-listen must be 0.0.0.0:PORT in the pod (the default 127.0.0.1:9090 is unreachable for probes): {admin:?}"),
    };
    let exposed = docker.runtime_args("EXPOSE").flat_map(str::split_whitespace).any(|p| p.split('/').next() == Some(port));
    problems.check(exposed, format!("{DOCKERFILE}: EXPOSE lacks the admin port {port} of --admin-listen"));
    let user = docker.runtime_args("USER").next().and_then(|u| u.split(':').next()).filter(|u| u.parse::<u32>().is_ok_and(|u| u > 0));
    let (admin_port, uid) = (format!("={port}"), format!("={}", user.expect("the image's last USER is a numeric non-root uid")));
    let in_container = |path: &str| format!("{WORKER_CONTAINER}{path}");
    let annotation = |key: &str| format!("Deployment mp3edge-worker /spec/template/metadata/annotations/prometheus.io~1{key}");
    #[rustfmt::skip]
    problems.agree(d, &[
        (&in_container("/ports/[name=admin]/containerPort"), &admin_port, "the port of --admin-listen"),
        (&in_container("/livenessProbe/httpGet/path"), "=/healthz", "what the worker serves"),
        (&in_container("/readinessProbe/httpGet/path"), "=/readyz", "what the worker serves"),
        (&in_container("/startupProbe/httpGet/path"), "=/healthz", "what the worker serves"),
        (&in_container("/livenessProbe/httpGet/port"), "=admin", "the port of --admin-listen"),
        (&in_container("/readinessProbe/httpGet/port"), "=admin", "the port of --admin-listen"),
        (&in_container("/startupProbe/httpGet/port"), "=admin", "the port of --admin-listen"),
        (&annotation("scrape"), "=true", "Prometheus scrapes the workers"),
        (&annotation("path"), "=/metrics", "where the worker serves its metrics"),
        (&annotation("port"), &admin_port, "the port of --admin-listen"),
        ("Deployment mp3edge-worker /spec/template/spec/securityContext/runAsUser", &uid, "the image's USER, who owns its /data"),
    ]);
    // Draining on SIGTERM needs time.
    let grace = at(&d.worker().value, "/spec/template/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
    problems.check(grace >= 60, format!("{what}: terminationGracePeriodSeconds {grace} leaves little time to finish the jobs on SIGTERM"));
    // The job queue's Redis comes from the environment, as on the edge.
    let redis_flag = flags.contains_key("redis-host");
    problems.check(!redis_flag, format!("{what}: set SPIN_VARIABLE_REDIS_HOST instead of --redis-host (one setting, as on the edge)"));
    // Files the flags name exist where the image or the pod puts them.
    let converter = flags.get("converter").expect("the worker has a --converter");
    problems.check(docker.copies().any(|(_, dest)| dest == converter), format!("{DOCKERFILE}: no COPY puts the converter at {converter}"));
    let read_only = container.security_context.as_ref().and_then(|s| s.read_only_root_filesystem) == Some(true);
    let mounts: BTreeSet<&str> = container.volume_mounts.iter().flatten().map(|m| m.mount_path.trim_end_matches('/')).collect();
    let mounted = |flag: &str| flags.get(flag).is_some_and(|dir| mounts.contains(dir.trim_end_matches('/')));
    let data = flags.get("data-dir");
    let writable = data.is_none() || !read_only || mounted("data-dir");
    problems.check(writable, format!("{what}: --data-dir {data:?} is on the read-only root filesystem: mount a volume there"));
    let plugins = flags.get("plugins");
    problems.check(mounted("plugins"), format!("{what}: --plugins {plugins:?} is no mounted volume: no plugin swap without a new image"));
    // Scaling on in-flight jobs targets the worker's concurrency.
    let concurrency = flags.get("concurrency");
    problems.check(concurrency.is_some(), format!("{what}: set --concurrency (its default, the node's cores, ignores the CPU limit)"));
    for so in d.of_kind("ScaledObject") {
        for pending in items(&so.value, "/spec/triggers").iter().filter_map(|t| text(t, "/metadata/pendingEntriesCount")) {
            problems.expect(
                &format!("{}: pendingEntriesCount", so.what()),
                Some(pending),
                concurrency.map(String::as_str),
                " (--concurrency)",
            );
        }
    }
    problems.report("Worker Deployment against its image and flags");
}

#[test]
fn worker_image_builds_what_the_plugins_need() {
    let d = deploy();
    let docker = dockerfile();
    let mut problems = Problems::default();
    let (build_base, build) = &docker.0[0];
    let (runtime_base, runtime) = docker.runtime();

    let rust_version = place(d, "Cargo.toml /workspace/package/rust-version").expect("workspace rust-version");
    let want = format!("rust:{rust_version}-bookworm");
    let why = "workspace rust-version, Debian 12 as scripts/setup.sh";
    problems.check(build_base.starts_with(&want), format!("{DOCKERFILE}: the build stage is FROM {build_base}, expected {want} ({why})"));
    let why = " (the Debian of the build: FFmpeg 5.1's ABI)";
    problems.expect(&format!("{DOCKERFILE}: the runtime stage's base"), runtime_base.as_str(), "debian:bookworm-slim", why);
    let (setup, conditional) = setup_sh_packages();
    let build_packages = apt_packages(build);
    let missing: Vec<&String> = setup.difference(&build_packages).collect();
    let foreign: Vec<&String> = build_packages.iter().filter(|p| !setup.contains(*p) && !conditional.contains(*p)).collect();
    problems.check(missing.is_empty() && foreign.is_empty(), format!(
        "{DOCKERFILE}: the build stage installs scripts/setup.sh's APT_PACKAGES (and its conditional {conditional:?}): it lacks {missing:?} and has {foreign:?} besides"
    ));
    let make = build.iter().any(|(k, a)| k == "RUN" && a.contains("make build"));
    problems.check(make, format!("{DOCKERFILE}: the build stage must run `make build`"));
    // The runtime libraries of the -dev packages the binary is built against, and nothing else.
    let libraries = RUNTIME_LIBRARIES.iter().filter(|(dev, _)| setup.contains(*dev)).map(|(_, lib)| lib.to_string());
    let wanted: BTreeSet<String> = libraries.chain(["ca-certificates".to_string()]).collect();
    for package in ["libavformat59", "libavcodec59", "libswresample4", "libavutil57"].iter().filter(|p| !wanted.contains(**p)) {
        problems.push(format!(
            "scripts/setup.sh no longer installs the FFmpeg 5.1 -dev package of {package}: update {DOCKERFILE} and this test"
        ));
    }
    let why = " (the libraries the binary links, their -dev packages being in scripts/setup.sh, and ca-certificates)";
    problems.expect(&format!("{DOCKERFILE}: the runtime stage's packages"), apt_packages(runtime), wanted, why);
    let build_text: String = build.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>().join("\n");
    let built = |file: &str| build_text.contains(&format!("target/wasm32-wasip2/release/{file}"));
    problems
        .check(built("converter.wasm"), format!("{DOCKERFILE}: the build stage does not take target/wasm32-wasip2/release/converter.wasm"));

    // Plugins: each file a codec mapping names is built by the Makefile and shipped. Plugins in
    // other languages: a directory of C_PLUGINS whose Makefile builds <dir name>.wasm.
    let wasm = |crate_or_dir: &str| format!("{}.wasm", crate_or_dir.rsplit('/').next().unwrap().replace('-', "_"));
    let plugins: BTreeMap<String, String> =
        makefile_list("PLUGINS").into_iter().chain(makefile_list("C_PLUGINS")).map(|c| (wasm(&c), c)).collect();
    let test_plugins: BTreeSet<String> = makefile_list("TEST_PLUGINS").iter().map(|c| wasm(c)).collect();
    let formats_of = |file: &str| d.toml(file).get("formats").and_then(Value::as_object).cloned().unwrap_or_default();
    let local_formats: BTreeSet<String> = formats_of("plugins/codecs.toml").keys().cloned().collect();
    let config_map_codecs = d.generated_config_maps().get("mp3edge-codecs").and_then(|keys| keys.get("codecs.toml")).cloned();
    let config_map_codecs = config_map_codecs.expect("deploy/kustomization.yaml generates ConfigMap mp3edge-codecs with key codecs.toml");
    let image_codecs = docker.copies().find(|(_, dest)| *dest == "/app/plugins/codecs.toml").map(|(src, _)| src);
    let image_codecs = image_codecs.unwrap_or_else(|| panic!("{DOCKERFILE}: no COPY of a codec mapping to /app/plugins/codecs.toml"));
    for (file, base) in [(config_map_codecs.as_str(), None), (image_codecs, Some("/app/plugins"))] {
        let formats = formats_of(file);
        problems.expect(
            &format!("{file}: the formats"),
            formats.keys().cloned().collect(),
            local_formats.clone(),
            " (plugins/codecs.toml's)",
        );
        for (format, decl) in &formats {
            let plugin = text(decl, "/plugin").unwrap_or("");
            let path = match (plugin.starts_with('/'), base) {
                (true, _) => plugin.to_string(),
                (false, Some(base)) => format!("{base}/{plugin}"),
                (false, None) => {
                    problems.push(format!("{file}: format {format} names {plugin:?}, a file of the optional ConfigMap mp3edge-plugins, which deploy/ does not ship: name a plugin of the image (/app/plugins/...)"));
                    continue;
                }
            };
            let Some(name) = path.strip_prefix("/app/plugins/") else {
                problems.push(format!("{file}: format {format}: {path} is not under /app/plugins, where the image has its plugins"));
                continue;
            };
            let known = plugins.contains_key(name);
            problems.check(!test_plugins.contains(name), format!("{file}: format {format} uses {name}, a deliberately broken test plugin"));
            let makefile = plugins.values().collect::<Vec<_>>();
            problems.check(
                known || test_plugins.contains(name),
                format!("{file}: format {format} uses {name}, which none of {makefile:?} builds"),
            );
            problems
                .check(built(name), format!("{DOCKERFILE}: the build stage does not take target/wasm32-wasip2/release/{name} ({file})"));
        }
    }
    // Formats the edge offers before a worker reports (spin.toml `formats`) have a plugin.
    let offered = text(&d.toml("spin.toml"), "/variables/formats/default").unwrap_or("").to_string();
    for format in offered.split(',').map(str::trim).filter(|f| !f.is_empty() && !local_formats.contains(*f)) {
        problems.push(format!("spin.toml offers format {format:?}, which no codec mapping of the worker serves"));
    }
    problems.report("Worker image");
}

// ------------------------------------------------------------------------------------------
// Redis, KEDA, images

#[test]
fn redis_settings_agree() {
    let d = deploy();
    let namespace = d.namespace();
    let mut problems = Problems::default();
    let redis_container = "StatefulSet redis /spec/template/spec/containers/0";
    let arg = |flag: &str| place(d, &format!("{redis_container}/args/[after={flag}]"));
    #[rustfmt::skip]
    problems.agree(d, &[
        (&format!("{WORKER_CONTAINER}/env/[name=SPIN_VARIABLE_REDIS_HOST]/value"), "SpinApp /spec/variables/[name=redis_host]/value", "the workers' job queue is the edge's"),
        (&format!("{redis_container}/args/[after=--appendonly]"), "=yes", "jobs and files must survive a restart"),
        (&format!("{redis_container}/args/[after=--maxmemory-policy]"), "=noeviction", "its keys are jobs and files, not a cache"),
    ]);
    let edge_host = place(d, "SpinApp /spec/variables/[name=redis_host]/value");
    let edge_host = edge_host.expect("the SpinApp's variable redis_host is the in-cluster Service, host:port (a literal value)");
    let kv = place(d, "deploy/runtime-config.toml /key_value_store/default/url");
    let kv_host = kv.as_deref().and_then(|url| url.strip_prefix("redis://").or_else(|| url.strip_prefix("rediss://")));
    let kv_host = kv_host.map(|rest| rest.rsplit_once('@').map_or(rest, |(_, r)| r).split('/').next().unwrap());
    let why = " (the key-value store is on the job queue's Redis)";
    problems.expect("deploy/runtime-config.toml: the key-value store's host", kv_host, Some(edge_host.as_str()), why);

    // The Service behind redis_host, and the StatefulSet behind the Service.
    let (host, port) = edge_host.rsplit_once(':').unwrap_or((&edge_host, ""));
    let port: i32 = port.parse().unwrap_or(0);
    let service_doc = d.only("Service", host);
    let spec = service_doc.typed::<Service>("").spec.unwrap_or_default();
    let service_port = spec.ports.iter().flatten().find(|p| p.port == port);
    problems.check(service_port.is_some(), format!("{}: no port {port} (redis_host is {edge_host})", service_doc.what()));
    let set_doc = d.only("StatefulSet", "redis");
    let pod: PodTemplateSpec = set_doc.typed("/spec/template");
    let selected = labels_match(&spec.selector.clone().unwrap_or_default(), &pod);
    problems.check(selected, format!("{}: selector does not match the pods of {}", service_doc.what(), set_doc.what()));
    let redis = &pod_containers(&pod)[0];
    if let Some(p) = service_port {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        let reaches = resolve_port(std::slice::from_ref(redis), &target) == Some(6379);
        problems.check(reaches, format!("{}: targetPort {target:?} does not reach Redis on 6379", service_doc.what()));
    }
    let dir = arg("--dir").unwrap_or("/data".into());
    let claims: Vec<&str> = items(&set_doc.value, "/spec/volumeClaimTemplates").iter().filter_map(|c| text(c, "/metadata/name")).collect();
    let mount = redis.volume_mounts.iter().flatten().find(|m| m.mount_path.trim_end_matches('/') == dir.trim_end_matches('/'));
    let persisted = mount.is_some_and(|m| claims.contains(&m.name.as_str()));
    problems.check(persisted, format!("{}: Redis's --dir {dir} is not on a volumeClaimTemplate ({claims:?})", set_doc.what()));
    let limit = redis.resources.as_ref().and_then(|r| r.limits.as_ref()?.get("memory")).and_then(|q| bytes(&q.0));
    let maxmemory = arg("--maxmemory").as_deref().and_then(bytes);
    let below = maxmemory.zip(limit).is_some_and(|(max, limit)| max < limit);
    problems.check(below, format!("{}: set --maxmemory below the memory limit ({maxmemory:?} vs {limit:?} bytes)", set_doc.what()));

    // KEDA talks to the same Redis, from its own namespace.
    let redis_image = redis.image.as_deref().unwrap_or("");
    let major = redis_image.rsplit_once(':').and_then(|(_, tag)| tag.split(['.', '-']).next()?.parse::<u32>().ok());
    let expected = [format!("{host}.{namespace}.svc.cluster.local:{port}"), format!("{host}.{namespace}.svc:{port}")];
    for so in d.of_kind("ScaledObject") {
        for trigger in items(&so.value, "/spec/triggers") {
            let address = text(trigger, "/metadata/address").unwrap_or("");
            let why = "KEDA resolves names from its own namespace";
            problems.check(
                expected.iter().any(|e| e == address),
                format!("{}: address {address:?}, expected {} ({why})", so.what(), expected[0]),
            );
            let lag = at(trigger, "/metadata/lagCount").is_none() || major.is_some_and(|m| m >= 7);
            problems.check(lag, format!("{}: lagCount needs Redis >= 7, {} runs {redis_image}", so.what(), set_doc.what()));
        }
    }
    problems.report("Redis settings");
}

/// Bytes of a Kubernetes quantity (`4Gi`) or a Redis size (`3gb`, which Redis reads as GiB).
fn bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let unit: u64 = match &lower[digits..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "ki" => 1 << 10,
        "m" => 1000 * 1000,
        "mb" | "mi" => 1 << 20,
        "g" => 1000 * 1000 * 1000,
        "gb" | "gi" => 1 << 30,
        _ => return None,
    };
    Some(lower[..digits].parse::<u64>().ok()? * unit)
}

#[test]
fn keda_scales_the_worker_on_the_job_stream() {
    use job_model::layout::{JOB_STREAM, SEGMENT_GROUP, SEGMENT_STREAM, WORKER_GROUP};
    let d = deploy();
    let mut problems = Problems::default();
    // KEDA's CRD is not available offline, so this checks only the fields mp3edge relies on (its
    // apiVersion is the schema test's, which knows no other; its Redis address the Redis test's).
    let objects: Vec<&Doc> = d.of_kind("ScaledObject").collect();
    assert!(!objects.is_empty(), "deploy/ has no KEDA ScaledObject");
    #[rustfmt::skip]
    problems.agree(d, &[
        ("ScaledObject /spec/scaleTargetRef/name", "=mp3edge-worker", "KEDA scales the worker"),
        ("ScaledObject /spec/scaleTargetRef/kind", "=Deployment", "KEDA scales the worker"),
        ("HorizontalPodAutoscaler /spec/scaleTargetRef/name", "=mp3edge-worker", "the HPA alternative scales the worker"),
    ]);
    for so in objects {
        let count = |path: &str| at(&so.value, path).and_then(Value::as_i64);
        let (min, max) = (count("/spec/minReplicaCount").unwrap_or(0), count("/spec/maxReplicaCount").unwrap_or(100));
        problems.check(min <= max, format!("{}: minReplicaCount {min} > maxReplicaCount {max}", so.what()));
        let triggers = items(&so.value, "/spec/triggers");
        for (i, trigger) in triggers.iter().enumerate() {
            let at = format!("{} spec.triggers[{i}]", so.what());
            problems.expect(&format!("{at}: type"), text(trigger, "/type"), Some("redis-streams"), "");
            let meta: BTreeMap<&str, Option<&str>> = fields(trigger, "/metadata").map(|(k, v)| (k.as_str(), v.as_str())).collect();
            for key in meta.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k) {
                problems.push(format!("{at}: metadata.{key} must be a string (KEDA metadata is a map of strings)"));
            }
            let field = |k: &str| meta.get(k).copied().flatten();
            // The job stream with the workers' group, or the segment stream with theirs.
            let stream = field("stream");
            let known = matches!(stream, Some(JOB_STREAM | SEGMENT_STREAM));
            problems.check(known, format!("{at}: metadata.stream is {stream:?}, the job stream is {JOB_STREAM:?}"));
            let group = if stream == Some(SEGMENT_STREAM) { SEGMENT_GROUP } else { WORKER_GROUP };
            problems.expect(
                &format!("{at}: metadata.consumerGroup"),
                field("consumerGroup"),
                Some(group),
                " (that stream's workers' group)",
            );
            let counts: Vec<(&str, Option<u32>)> = ["pendingEntriesCount", "lagCount", "streamLength"]
                .into_iter()
                .filter_map(|k| Some((k, field(k)?.parse().ok().filter(|n| *n > 0))))
                .collect();
            problems.check(counts.len() == 1, format!("{at}: set one of pendingEntriesCount, lagCount, streamLength, found {counts:?}"));
            problems.check(counts.iter().all(|(_, n)| n.is_some()), format!("{at}: {counts:?}: a count is a positive integer string"));
        }
        let pending = triggers.iter().any(|t| at(t, "/metadata/pendingEntriesCount").is_some());
        problems.check(pending, format!("{}: no trigger on pendingEntriesCount", so.what()));
    }
    problems.report("KEDA ScaledObject");
}

/// `name` and tag of an image reference (`registry:5000/a/b:tag`).
fn split_image(image: &str) -> (&str, Option<&str>) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => (&image[..slash + colon], Some(&image[slash + colon + 1..])),
        None => (image, None),
    }
}

#[test]
fn images_agree_with_kustomization_and_readme() {
    let d = deploy();
    let k = d.kustomization();
    let readme = d.read("deploy/README.md");
    let mut problems = Problems::default();
    // images entries: name -> (newName, newTag).
    let entries: BTreeMap<&str, (Option<&str>, Option<&str>)> =
        items(&k.value, "/images").iter().map(|e| (text(e, "/name").unwrap_or(""), (text(e, "/newName"), text(e, "/newTag")))).collect();
    let worker_image = d.worker_container().image.unwrap_or_default();
    let spinapp = d.only("SpinApp", "");
    let images = [
        (format!("{} (worker image)", d.worker().what()), worker_image.as_str(), format!("docker build -f {DOCKERFILE} -t ")),
        (format!("{} (edge image)", spinapp.what()), spinapp.str("/spec/image").unwrap_or(""), "spin registry push ".to_string()),
    ];
    for (what, image, how) in &images {
        let (name, tag) = split_image(image);
        let Some(tag) = tag else {
            problems.push(format!("{what}: {image} has no tag"));
            continue;
        };
        let Some((new_name, new_tag)) = entries.get(name) else {
            problems.push(format!("{}: no images entry named {name} (for {what})", k.file));
            continue;
        };
        problems.check(new_tag.is_none_or(|t| t == tag), format!("{}: images {name} newTag {new_tag:?} is not {what}'s tag {tag}", k.file));
        let command = format!("{how}{}:{}", new_name.unwrap_or(name), new_tag.unwrap_or(tag));
        problems.check(readme.contains(&command), format!("deploy/README.md does not show `{command}` (the image {what} uses)"));
    }
    for name in entries.keys().filter(|name| !images.iter().any(|(_, i, _)| split_image(i).0 == **name)) {
        problems.push(format!("{}: images entry {name} matches no image of the worker or the edge", k.file));
    }
    problems.check(readme.contains("kubectl apply -k deploy/"), "deploy/README.md does not show `kubectl apply -k deploy/`".into());
    problems.report("Images");
}

// ------------------------------------------------------------------------------------------
// The real kustomize, when kubectl is at hand

#[test]
fn kustomize_builds_when_kubectl_is_installed() {
    let d = deploy();
    let output = match std::process::Command::new("kubectl").arg("kustomize").arg(d.root.join("deploy")).output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: kubectl is not available ({e}); the other checks still cover deploy/");
            return;
        }
    };
    assert!(output.status.success(), "kubectl kustomize deploy/ failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let built = parse_yaml_docs(&String::from_utf8_lossy(&output.stdout)).expect("kustomize output parses");
    let built: Vec<Doc> = docs_of("kubectl kustomize deploy/", built).collect();
    let namespace = d.namespace();
    let mut problems = Problems::default();
    for object in built.iter().filter(|o| o.kind() != "Namespace") {
        problems.expect(&format!("{}: metadata.namespace", object.what()), object.str("/metadata/namespace"), Some(namespace.as_str()), "");
    }
    let config_maps: BTreeSet<&str> = built.iter().filter(|o| o.kind() == "ConfigMap").map(Doc::name).collect();
    for object in built.iter().filter(|o| o.kind() == "ConfigMap") {
        validate(object, &mut problems);
    }
    for object in built.iter().filter(|o| o.kind() == "Deployment") {
        for volume in items(&object.value, "/spec/template/spec/volumes") {
            for name in required_config_maps(volume).into_iter().filter(|name| !config_maps.contains(name)) {
                problems.push(format!("{}: volume {:?} needs ConfigMap {name}, which the build lacks", object.what(), volume.get("name")));
            }
        }
    }
    problems.report("kubectl kustomize deploy/");
}
