//! Static checks of the Kubernetes deployment assets in `deploy/` (no cluster needed).
//!
//! * Every YAML file parses (all documents).
//! * Each `SpinApp` validates against the spin-operator v0.6.1 CRD schema in
//!   `../shared/schemas/`, with unknown fields rejected as a strict API server would.
//! * Core Kubernetes objects deserialize into `k8s-openapi` types with no unknown field.
//! * The KEDA `ScaledObject` has its required fields and the job queue's names.
//! * The files agree with each other and with the project: `spin.toml` (variables, key-value
//!   and SQLite labels), the worker's flags and admin port, the Dockerfile, the Makefile's
//!   plugins, `scripts/setup.sh`, `job-model`'s stream names, the Redis Service, the images
//!   named in `kustomization.yaml` and `deploy/README.md`.
//! * Secrets are templates only.
//!
//! When `kubectl` is installed, `kubectl kustomize deploy/` must also build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use e2e_tests::workspace_root;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodTemplateSpec, Probe, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

// ------------------------------------------------------------------------------------------
// Loading

/// Files under deploy/ that are local, git-ignored copies of templates (deploy/.gitignore).
fn is_local_copy(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == "secrets.yaml" || name.contains(".local.")
}

/// One YAML document of a file under deploy/.
struct Doc {
    /// Path relative to the workspace root, e.g. `deploy/worker/deployment.yaml`.
    file: String,
    /// Index of the document in its file (0-based, empty documents counted).
    index: usize,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    fn api_version(&self) -> &str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }
    /// `deploy/x.yaml (document 2, Deployment mp3edge-worker)`, for messages.
    fn what(&self) -> String {
        format!("{} (document {}, {} {})", self.file, self.index + 1, self.kind(), self.name())
    }
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
        let mut files = Vec::new();
        collect_yaml(&root.join("deploy"), &mut files);
        files.sort();
        let mut docs = Vec::new();
        let mut parse_errors = Vec::new();
        let mut yaml_files = Vec::new();
        for path in files {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if is_local_copy(&rel) {
                continue;
            }
            yaml_files.push(rel.clone());
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
            match parse_yaml_docs(&text) {
                Ok(values) => {
                    for (index, value) in values.into_iter().enumerate() {
                        if !value.is_null() {
                            docs.push(Doc { file: rel.clone(), index, value });
                        }
                    }
                }
                Err(e) => parse_errors.push(format!("{rel}: {e}")),
            }
        }
        Deploy { root, docs, parse_errors, yaml_files }
    })
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// All documents of a YAML stream, as JSON values (an empty document is `null`).
fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut values = Vec::new();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| format!("document {}: {e}", i + 1))?;
        values.push(value);
    }
    Ok(values)
}

impl Deploy {
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    fn toml(&self, rel: &str) -> toml::Table {
        self.read(rel).parse::<toml::Table>().unwrap_or_else(|e| panic!("{rel} is not valid TOML: {e}"))
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    fn one(&self, kind: &str, name: &str) -> &Doc {
        let found: Vec<&Doc> = self.docs.iter().filter(|d| d.kind() == kind && d.name() == name).collect();
        match found.as_slice() {
            [doc] => doc,
            [] => panic!("deploy/ has no {kind} named {name}"),
            _ => panic!("deploy/ has {} {kind} objects named {name}: {:?}", found.len(), found.iter().map(|d| d.what()).collect::<Vec<_>>()),
        }
    }

    fn kustomization(&self) -> &Doc {
        let found: Vec<&Doc> = self.of_kind("Kustomization").collect();
        assert_eq!(found.len(), 1, "expected exactly one Kustomization (deploy/kustomization.yaml), found {}", found.len());
        assert_eq!(found[0].file, "deploy/kustomization.yaml", "the Kustomization must be deploy/kustomization.yaml");
        found[0]
    }

    fn namespace(&self) -> String {
        let k = self.kustomization();
        k.value.get("namespace").and_then(Value::as_str).unwrap_or_else(|| panic!("{} has no namespace", k.file)).to_string()
    }

    fn worker(&self) -> (&Doc, Deployment) {
        let doc = self.one("Deployment", WORKER);
        (doc, typed(doc))
    }

    fn spinapp(&self) -> &Doc {
        let found: Vec<&Doc> = self.of_kind("SpinApp").collect();
        assert_eq!(found.len(), 1, "expected exactly one SpinApp in deploy/, found {}", found.len());
        found[0]
    }

    /// `configMapGenerator` entries of the kustomization: name -> (key -> file under deploy/).
    fn generated_config_maps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let k = self.kustomization();
        let mut maps = BTreeMap::new();
        for generator in k.value.get("configMapGenerator").and_then(Value::as_array).into_iter().flatten() {
            let name = generator.get("name").and_then(Value::as_str).expect("configMapGenerator entry without name").to_string();
            let mut keys = BTreeMap::new();
            for file in generator.get("files").and_then(Value::as_array).into_iter().flatten() {
                let spec = file.as_str().expect("configMapGenerator files are strings");
                let (key, path) = match spec.split_once('=') {
                    Some((key, path)) => (key.to_string(), path.to_string()),
                    None => (spec.rsplit('/').next().unwrap().to_string(), spec.to_string()),
                };
                keys.insert(key, format!("deploy/{path}"));
            }
            maps.insert(name, keys);
        }
        maps
    }
}

/// Deserializes a document into its k8s-openapi type (the typed test checks the details).
fn typed<T: serde::de::DeserializeOwned>(doc: &Doc) -> T {
    serde_json::from_value(doc.value.clone()).unwrap_or_else(|e| panic!("{}: {e}", doc.what()))
}

#[track_caller]
fn problems_report(title: &str, problems: &[String]) {
    let mut seen = BTreeSet::new();
    let unique: Vec<&String> = problems.iter().filter(|p| seen.insert(p.as_str())).collect();
    assert!(unique.is_empty(), "{title}:\n  - {}", unique.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("\n  - "));
}

const WORKER: &str = "mp3edge-worker";
const CODECS_CONFIG_MAP: &str = "mp3edge-codecs";

// ------------------------------------------------------------------------------------------
// Syntax and schemas

#[test]
fn every_yaml_file_parses() {
    let d = deploy();
    problems_report("YAML under deploy/ that does not parse", &d.parse_errors);
    assert!(!d.docs.is_empty(), "no YAML document under deploy/");
    let mut problems = Vec::new();
    for doc in &d.docs {
        if !doc.value.is_object() {
            problems.push(format!("{}: a document must be a mapping", doc.what()));
        }
    }
    problems_report("YAML documents under deploy/", &problems);
}

/// Makes a CRD schema strict: every object schema that lists `properties` and says nothing
/// about others rejects unknown fields, as the API server does with strict field validation
/// (the default of `kubectl apply`).
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let open = map.contains_key("additionalProperties") || map.contains_key("x-kubernetes-preserve-unknown-fields");
            if map.contains_key("properties") && !open {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                strict(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

#[test]
fn spinapps_validate_against_the_spin_operator_crd() {
    let d = deploy();
    let crd_path = workspace_root().join("../shared/schemas/core.spinkube.dev_spinapps.yaml");
    let crd_text = std::fs::read_to_string(&crd_path)
        .unwrap_or_else(|e| panic!("{}: {e} (the SpinApp CRD of spin-operator v0.6.1 lives in shared/schemas/ beside the workspace)", crd_path.display()));
    let crd = parse_yaml_docs(&crd_text).expect("the SpinApp CRD parses").remove(0);
    let group = crd.pointer("/spec/group").and_then(Value::as_str).expect("CRD spec.group");
    let version = crd.pointer("/spec/versions/0/name").and_then(Value::as_str).expect("CRD spec.versions[0].name");
    let mut schema = crd.pointer("/spec/versions/0/schema/openAPIV3Schema").cloned().expect("CRD openAPIV3Schema");
    strict(&mut schema);
    let validator = jsonschema::draft4::new(&schema).expect("the CRD schema compiles");

    let spinapps: Vec<&Doc> = d.of_kind("SpinApp").collect();
    assert!(!spinapps.is_empty(), "deploy/ has no SpinApp");
    let mut problems = Vec::new();
    for doc in spinapps {
        if doc.file != "deploy/spinapp.yaml" {
            problems.push(format!("{}: the SpinApp belongs in deploy/spinapp.yaml", doc.what()));
        }
        if doc.api_version() != format!("{group}/{version}") {
            problems.push(format!("{}: apiVersion {:?}, the CRD serves {group}/{version}", doc.what(), doc.api_version()));
        }
        for error in validator.iter_errors(&doc.value) {
            problems.push(format!("{} at {}: {error}", doc.what(), error.instance_path()));
        }
        if doc.value.pointer("/spec/executor").and_then(Value::as_str) != Some("containerd-shim-spin") {
            problems.push(format!("{}: spec.executor must be containerd-shim-spin", doc.what()));
        }
    }
    problems_report("SpinApp objects that the spin-operator v0.6.1 CRD rejects", &problems);
}

/// Keys of `original` that did not survive a typed round trip (null and empty values may
/// disappear).
fn lost_keys(original: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match b.get(key) {
                    Some(other) => lost_keys(value, other, &here, out),
                    None if empty(value) => {}
                    None => out.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                lost_keys(x, y, &format!("{path}.{i}"), out);
            }
        }
        _ => {}
    }
}

/// Deserializes into `T`, returning the fields `T` does not know.
fn unknown_fields<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<Vec<String>, String> {
    let mut unknown = BTreeSet::new();
    let typed: T = serde_ignored::deserialize(value.clone(), |path| {
        // serde_ignored writes `?` for each Option on the way; drop them.
        unknown.insert(path.to_string().replace(".?", "").trim_start_matches("?.").to_string());
    })
    .map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    lost_keys(value, &back, "", &mut lost);
    unknown.extend(lost);
    Ok(unknown.into_iter().collect())
}

#[test]
fn core_objects_match_the_kubernetes_api() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    let d = deploy();
    let configurations: BTreeSet<String> = d
        .kustomization()
        .value
        .get("configurations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|f| format!("deploy/{f}"))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in &d.docs {
        let result = match (doc.api_version(), doc.kind()) {
            ("v1", "Namespace") => unknown_fields::<Namespace>(&doc.value),
            ("v1", "Service") => unknown_fields::<Service>(&doc.value),
            ("v1", "Secret") => unknown_fields::<Secret>(&doc.value),
            ("v1", "ConfigMap") => unknown_fields::<ConfigMap>(&doc.value),
            ("apps/v1", "Deployment") => unknown_fields::<Deployment>(&doc.value),
            ("apps/v1", "StatefulSet") => unknown_fields::<StatefulSet>(&doc.value),
            ("autoscaling/v2", "HorizontalPodAutoscaler") => unknown_fields::<HorizontalPodAutoscaler>(&doc.value),
            ("networking.k8s.io/v1", "NetworkPolicy") => unknown_fields::<NetworkPolicy>(&doc.value),
            // Checked by their own tests.
            ("core.spinkube.dev/v1alpha1", "SpinApp") | ("keda.sh/v1alpha1", "ScaledObject") => continue,
            ("kustomize.config.k8s.io/v1beta1", "Kustomization") => continue,
            ("", "") if configurations.contains(&doc.file) => continue,
            (api_version, kind) => {
                problems.push(format!(
                    "{}: no model for apiVersion {api_version:?} kind {kind:?} (add one to tests/tests/deploy.rs)",
                    doc.what()
                ));
                continue;
            }
        };
        checked += 1;
        match result {
            Ok(unknown) => {
                for field in unknown {
                    problems.push(format!("{}: unknown field `{field}`", doc.what()));
                }
            }
            Err(e) => problems.push(format!("{}: {e}", doc.what())),
        }
        if !is_dns_label_or_subdomain(doc.name()) {
            problems.push(format!("{}: metadata.name {:?} is no valid DNS-1123 name", doc.what(), doc.name()));
        }
    }
    assert!(checked > 0, "no core Kubernetes object under deploy/");
    problems_report("Kubernetes objects that the API would reject", &problems);

    // Workload wiring: selectors, named ports, volumes, Services.
    let mut problems = Vec::new();
    let mut pods: Vec<(String, PodTemplateSpec)> = Vec::new();
    for doc in d.of_kind("Deployment") {
        let deployment: Deployment = typed(doc);
        let spec = deployment.spec.expect("Deployment spec");
        check_selector(doc, spec.selector.match_labels.as_ref(), &spec.template, &mut problems);
        pods.push((doc.what(), spec.template));
    }
    for doc in d.of_kind("StatefulSet") {
        let set: StatefulSet = typed(doc);
        let spec = set.spec.expect("StatefulSet spec");
        check_selector(doc, spec.selector.match_labels.as_ref(), &spec.template, &mut problems);
        let claims: BTreeSet<String> =
            spec.volume_claim_templates.iter().flatten().filter_map(|c| c.metadata.name.clone()).collect();
        check_pod(&doc.what(), &spec.template, &claims, &mut problems);
        if let Some(service) = &spec.service_name
            && !d.of_kind("Service").any(|s| s.name() == service)
        {
            problems.push(format!("{}: serviceName {service} is no Service in deploy/", doc.what()));
        }
        pods.push((doc.what(), spec.template));
    }
    for doc in d.of_kind("Deployment") {
        let deployment: Deployment = typed(doc);
        check_pod(&doc.what(), &deployment.spec.unwrap().template, &BTreeSet::new(), &mut problems);
    }
    for doc in d.of_kind("Service") {
        let service: Service = typed(doc);
        let spec = service.spec.unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        if selector.is_empty() {
            continue;
        }
        let matched: Vec<&(String, PodTemplateSpec)> = pods.iter().filter(|(_, pod)| labels_match(&selector, pod)).collect();
        if matched.is_empty() {
            problems.push(format!("{}: selector {selector:?} matches no Deployment/StatefulSet pod in deploy/", doc.what()));
        }
        for port in spec.ports.iter().flatten() {
            for (what, pod) in &matched {
                let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
                if resolve_port(pod_containers(pod), &target).is_none() {
                    problems.push(format!("{}: targetPort {target:?} is no container port of {what}", doc.what()));
                }
            }
        }
    }
    problems_report("Workloads and Services that do not fit together", &problems);
}

fn is_dns_label_or_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn labels_match(selector: &BTreeMap<String, String>, pod: &PodTemplateSpec) -> bool {
    let labels = pod.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn check_selector(doc: &Doc, selector: Option<&BTreeMap<String, String>>, pod: &PodTemplateSpec, problems: &mut Vec<String>) {
    match selector {
        Some(selector) if !selector.is_empty() => {
            if !labels_match(selector, pod) {
                problems.push(format!("{}: spec.selector.matchLabels {selector:?} do not match the pod template's labels", doc.what()));
            }
        }
        _ => problems.push(format!("{}: spec.selector.matchLabels is empty", doc.what())),
    }
}

fn pod_containers(pod: &PodTemplateSpec) -> &[Container] {
    pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default()
}

/// The container port a Service/probe port refers to.
fn resolve_port(containers: &[Container], port: &IntOrString) -> Option<i32> {
    let ports = containers.iter().flat_map(|c| c.ports.iter().flatten());
    match port {
        IntOrString::Int(n) => ports.map(|p| p.container_port).find(|p| p == n),
        IntOrString::String(name) => ports.filter(|p| p.name.as_deref() == Some(name)).map(|p| p.container_port).next(),
    }
}

fn probe_target(container: &Container, probe: Option<&Probe>) -> Option<(String, Option<i32>)> {
    let http = probe?.http_get.as_ref()?;
    Some((http.path.clone().unwrap_or_default(), resolve_port(std::slice::from_ref(container), &http.port)))
}

fn check_pod(what: &str, pod: &PodTemplateSpec, claims: &BTreeSet<String>, problems: &mut Vec<String>) {
    let Some(spec) = &pod.spec else {
        problems.push(format!("{what}: no pod spec"));
        return;
    };
    let volumes: BTreeSet<String> = spec.volumes.iter().flatten().map(|v| v.name.clone()).chain(claims.iter().cloned()).collect();
    for container in &spec.containers {
        for mount in container.volume_mounts.iter().flatten() {
            if !volumes.contains(&mount.name) {
                problems.push(format!("{what}: container {} mounts volume {} that the pod does not have", container.name, mount.name));
            }
        }
        for (probe_name, probe) in
            [("liveness", &container.liveness_probe), ("readiness", &container.readiness_probe), ("startup", &container.startup_probe)]
        {
            if let Some(http) = probe.as_ref().and_then(|p| p.http_get.as_ref())
                && resolve_port(std::slice::from_ref(container), &http.port).is_none()
            {
                problems.push(format!("{what}: container {} {probe_name} probe port {:?} is none of its ports", container.name, http.port));
            }
        }
        if container.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).is_none() {
            problems.push(format!("{what}: container {} has no memory limit", container.name));
        }
        if container.resources.as_ref().and_then(|r| r.requests.as_ref()).is_none() {
            problems.push(format!("{what}: container {} has no resource requests", container.name));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Kustomization and secrets

#[test]
fn kustomization_ties_everything_together() {
    let d = deploy();
    let k = d.kustomization();
    let namespace = d.namespace();
    let mut problems = Vec::new();
    if namespace != "mp3edge" {
        problems.push(format!("{}: namespace is {namespace:?}, expected mp3edge", k.file));
    }
    let resources: Vec<String> = k
        .value
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|r| format!("deploy/{r}"))
        .collect();
    for resource in &resources {
        if !d.root.join(resource).is_file() {
            problems.push(format!("{}: resource {resource} does not exist", k.file));
        }
        if resource.ends_with(".example.yaml") {
            problems.push(format!("{}: {resource} is a template and must not be applied (a re-apply would reset the real Secrets)", k.file));
        }
        if resource == "deploy/worker/hpa.yaml" {
            problems.push(format!("{}: worker/hpa.yaml is the alternative to KEDA and not included by default", k.file));
        }
    }
    for (name, keys) in d.generated_config_maps() {
        for (key, file) in keys {
            if !d.root.join(&file).is_file() {
                problems.push(format!("{}: configMapGenerator {name} key {key}: {file} does not exist", k.file));
            }
        }
    }
    let configurations: Vec<String> =
        k.value.get("configurations").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(|f| format!("deploy/{f}")).collect();
    for file in &configurations {
        if !d.root.join(file).is_file() {
            problems.push(format!("{}: configuration {file} does not exist", k.file));
        }
    }
    // Every manifest is applied, except templates, the HPA alternative and kustomize's own files.
    for file in &d.yaml_files {
        let own = file == &k.file || configurations.contains(file);
        let optional = file.ends_with(".example.yaml") || file == "deploy/worker/hpa.yaml";
        if !own && !optional && !resources.contains(file) {
            problems.push(format!("{file} is not in the resources of {}", k.file));
        }
    }
    for kind in ["Namespace", "SpinApp", "Deployment", "StatefulSet", "Service", "ScaledObject"] {
        if !d.of_kind(kind).any(|doc| resources.contains(&doc.file)) {
            problems.push(format!("{}: no {kind} among the resources", k.file));
        }
    }
    if d.of_kind("Namespace").all(|n| n.name() != namespace) {
        problems.push(format!("deploy/ has no Namespace {namespace}"));
    }
    for doc in &d.docs {
        if let Some(ns) = doc.value.pointer("/metadata/namespace").and_then(Value::as_str)
            && ns != namespace
        {
            problems.push(format!("{}: metadata.namespace {ns:?} differs from the kustomization's {namespace:?}", doc.what()));
        }
    }
    problems_report("deploy/kustomization.yaml", &problems);
}

/// Every `secretKeyRef` in a JSON tree, with the path to it.
fn secret_refs(value: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let here = format!("{path}.{key}");
                if key == "secretKeyRef" {
                    let name = v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                    let k = v.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                    out.push((here.clone(), name, k));
                }
                secret_refs(v, &here, out);
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| secret_refs(v, &format!("{path}.{i}"), out)),
        _ => {}
    }
}

/// Secret templates: name -> key -> value.
fn secret_templates(d: &Deploy) -> BTreeMap<String, BTreeMap<String, String>> {
    d.of_kind("Secret")
        .map(|doc| {
            let secret: Secret = typed(doc);
            (doc.name().to_string(), secret.string_data.unwrap_or_default())
        })
        .collect()
}

#[test]
fn secrets_are_templates_only() {
    let d = deploy();
    let mut problems = Vec::new();
    for doc in d.of_kind("Secret") {
        if !doc.file.ends_with(".example.yaml") {
            problems.push(format!("{}: Secrets belong in a *.example.yaml template", doc.what()));
        }
        let secret: Secret = typed(doc);
        if secret.data.is_some_and(|data| !data.is_empty()) {
            problems.push(format!("{}: use stringData with CHANGE-ME placeholders, not base64 data", doc.what()));
        }
        for (key, value) in secret.string_data.unwrap_or_default() {
            if !value.contains("CHANGE-ME") {
                problems.push(format!("{}: stringData.{key} has no CHANGE-ME placeholder: a template must not carry a real value", doc.what()));
            }
        }
    }
    // Every Secret the manifests use has a template with that key.
    let templates = secret_templates(d);
    for doc in d.docs.iter().filter(|doc| doc.kind() != "Secret") {
        let mut refs = Vec::new();
        secret_refs(&doc.value, "", &mut refs);
        for (path, name, key) in refs {
            match templates.get(&name) {
                None => problems.push(format!("{}: {path} names Secret {name:?}, which no *.example.yaml template provides", doc.what())),
                Some(keys) if !keys.contains_key(&key) => {
                    problems.push(format!("{}: {path} needs key {key:?} of Secret {name}, which its template lacks", doc.what()))
                }
                Some(_) => {}
            }
        }
    }
    // The edge's runtime config Secret carries deploy/runtime-config.toml.
    let spinapp = d.spinapp();
    match spinapp.value.pointer("/spec/runtimeConfig/loadFromSecret").and_then(Value::as_str) {
        None => problems.push(format!("{}: spec.runtimeConfig.loadFromSecret is not set", spinapp.what())),
        Some(name) => match templates.get(name).and_then(|keys| keys.get("runtime-config.toml")) {
            None => problems.push(format!(
                "{}: loadFromSecret {name:?} needs a Secret template with the key runtime-config.toml",
                spinapp.what()
            )),
            Some(text) => match text.parse::<toml::Table>() {
                Err(e) => problems.push(format!("Secret {name}: runtime-config.toml is not valid TOML: {e}")),
                Ok(table) => {
                    if table != d.toml("deploy/runtime-config.toml") {
                        problems.push(format!("Secret template {name}: runtime-config.toml differs from deploy/runtime-config.toml"));
                    }
                    if templates.get(name).is_some_and(|keys| keys.len() != 1) {
                        problems.push(format!("Secret template {name}: the spin-operator wants runtime-config.toml as its single key"));
                    }
                }
            },
        },
    }
    problems_report("Secrets", &problems);
}

// ------------------------------------------------------------------------------------------
// The edge against spin.toml

fn spin_toml() -> toml::Table {
    deploy().toml("spin.toml")
}

/// SpinApp variables: name -> the JSON of the binding.
fn spinapp_variables(doc: &Doc) -> BTreeMap<String, Value> {
    doc.value
        .pointer("/spec/variables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| (v.get("name").and_then(Value::as_str).unwrap_or("").to_string(), v.clone()))
        .collect()
}

fn spinapp_redis_host(doc: &Doc) -> String {
    let variables = spinapp_variables(doc);
    let binding = variables.get("redis_host").unwrap_or_else(|| panic!("{}: no variable redis_host", doc.what()));
    binding
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: variable redis_host must be a literal value (the in-cluster Service)", doc.what()))
        .to_string()
}

#[test]
fn spinapp_provides_what_spin_toml_requires() {
    let d = deploy();
    let spin = spin_toml();
    let declared = spin.get("variables").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    let doc = d.spinapp();
    let bound = spinapp_variables(doc);
    let mut problems = Vec::new();
    for (name, decl) in &declared {
        let required = decl.get("required").and_then(toml::Value::as_bool).unwrap_or(false);
        let secret = decl.get("secret").and_then(toml::Value::as_bool).unwrap_or(false);
        match bound.get(name) {
            None if required => problems.push(format!("spin.toml variable {name} is required but {} does not set it", doc.what())),
            None => {}
            Some(binding) => {
                if secret && binding.pointer("/valueFrom/secretKeyRef").is_none() {
                    problems.push(format!("{}: variable {name} is secret in spin.toml: bind it with valueFrom.secretKeyRef", doc.what()));
                }
            }
        }
    }
    for (name, binding) in &bound {
        if !declared.contains_key(name) {
            problems.push(format!("{}: variable {name:?} is not declared in spin.toml [variables]", doc.what()));
        }
        let sources = ["value", "valueFrom"].iter().filter(|k| binding.get(**k).is_some()).count();
        if sources != 1 {
            problems.push(format!("{}: variable {name} needs exactly one of value / valueFrom", doc.what()));
        }
    }
    for name in ["jwt_secret", "admin_email", "admin_password"] {
        if bound.get(name).and_then(|b| b.pointer("/valueFrom/secretKeyRef")).is_none() {
            problems.push(format!("{}: variable {name} must come from a Secret (valueFrom.secretKeyRef)", doc.what()));
        }
    }
    if !bound.contains_key("redis_host") {
        problems.push(format!("{}: variable redis_host must point at the in-cluster Redis", doc.what()));
    }
    // Probes: routes of spin.toml. Readiness exercises the backends through /formats (no
    // session needed); liveness must answer without a session, and without backends unless it
    // is /formats too.
    let routes: Vec<(String, String)> = spin
        .get("trigger")
        .and_then(|t| t.get("http"))
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let route = t.get("route").and_then(toml::Value::as_str)?;
            let component = t.get("component").and_then(toml::Value::as_str)?;
            Some((route.to_string(), component.to_string()))
        })
        .collect();
    let components = spin.get("component").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    for probe in ["liveness", "readiness"] {
        let Some(path) = doc.value.pointer(&format!("/spec/checks/{probe}/httpGet/path")).and_then(Value::as_str) else {
            problems.push(format!("{}: spec.checks.{probe}.httpGet.path is not set", doc.what()));
            continue;
        };
        let Some(component) = route_component(&routes, path) else {
            problems.push(format!("{}: {probe} probe path {path} is no route of spin.toml", doc.what()));
            continue;
        };
        let backends = components.get(&component).is_some_and(|c| {
            ["key_value_stores", "sqlite_databases"].iter().any(|k| c.get(*k).and_then(toml::Value::as_array).is_some_and(|a| !a.is_empty()))
        });
        match probe {
            "readiness" if path != "/formats" => problems.push(format!(
                "{}: readiness probe path {path}: use /formats, which needs no session and reaches the key-value store and the database",
                doc.what()
            )),
            "liveness" if path != "/" && path != "/formats" => problems.push(format!(
                "{}: liveness probe path {path}: use / (the web app's static page) or /formats, the routes known to answer 200 without a session",
                doc.what()
            )),
            "liveness" if path == "/" && backends => problems.push(format!(
                "{}: liveness probe path / is served by component {component}, which uses the key-value store or the database: an outage there would restart the edge",
                doc.what()
            )),
            _ => {}
        }
    }
    problems_report("SpinApp against spin.toml", &problems);
}

/// The component spin.toml routes `path` to: an exact route, else the longest `/prefix/...`.
fn route_component(routes: &[(String, String)], path: &str) -> Option<String> {
    if let Some((_, c)) = routes.iter().find(|(r, _)| r == path) {
        return Some(c.clone());
    }
    routes
        .iter()
        .filter_map(|(r, c)| {
            let prefix = r.strip_suffix("/...")?;
            (path == prefix || path.starts_with(&format!("{prefix}/"))).then_some((prefix.len(), c))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, c)| c.clone())
}

fn kv_url(table: &toml::Table, file: &str) -> Option<String> {
    let store = table.get("key_value_store")?.get("default")?;
    if store.get("type").and_then(toml::Value::as_str) != Some("redis") {
        panic!("{file}: [key_value_store.default] must be type \"redis\" (shared between the edge and the workers)");
    }
    store.get("url").and_then(toml::Value::as_str).map(str::to_string)
}

#[test]
fn runtime_configs_cover_spin_toml_and_agree() {
    let d = deploy();
    let spin = spin_toml();
    let edge_file = "deploy/runtime-config.toml";
    let edge = d.toml(edge_file);
    let replicas = d.spinapp().value.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let mut problems = Vec::new();
    let components = spin.get("component").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    for (section, field) in [("key_value_store", "key_value_stores"), ("sqlite_database", "sqlite_databases")] {
        let configured = edge.get(section).and_then(toml::Value::as_table).cloned().unwrap_or_default();
        for (component, decl) in &components {
            for label in decl.get(field).and_then(toml::Value::as_array).into_iter().flatten().filter_map(toml::Value::as_str) {
                match configured.get(label) {
                    None => problems.push(format!("component {component} uses {field} label {label:?}, which {edge_file} does not configure ([{section}.{label}])")),
                    Some(store) => {
                        let kind = store.get("type").and_then(toml::Value::as_str).unwrap_or("");
                        let need: &[&str] = match kind {
                            "redis" => &["url"],
                            "libsql" => &["url", "token"],
                            "spin" if replicas > 1 => {
                                problems.push(format!("{edge_file}: [{section}.{label}] type \"spin\" is a file inside one pod; with {replicas} edge replicas use a shared store"));
                                &[]
                            }
                            "spin" => &[],
                            other => {
                                problems.push(format!("{edge_file}: [{section}.{label}] has unknown type {other:?}"));
                                &[]
                            }
                        };
                        for key in need {
                            if store.get(*key).and_then(toml::Value::as_str).is_none_or(str::is_empty) {
                                problems.push(format!("{edge_file}: [{section}.{label}] type {kind:?} needs {key}"));
                            }
                        }
                    }
                }
            }
        }
    }
    if edge.get("sqlite_database").and_then(|s| s.get("default")).and_then(|s| s.get("type")).and_then(toml::Value::as_str) != Some("libsql") {
        problems.push(format!("{edge_file}: [sqlite_database.default] must be type \"libsql\""));
    }

    // The worker's own runtime config: the same key-value store, nothing its host rejects.
    let (_, worker) = d.worker();
    let args = worker_flags(&worker);
    let file = args.get("runtime-config-file").map(String::as_str).unwrap_or("");
    match mounted_config_file(d, &worker, file) {
        Err(e) => problems.push(e),
        Ok(worker_file) => {
            let table = d.toml(&worker_file);
            let worker_url = kv_url(&table, &worker_file);
            if worker_url.is_none() {
                problems.push(format!("{worker_file}: the worker needs [key_value_store.default] with a url"));
            }
            if worker_url != kv_url(&edge, edge_file) {
                problems.push(format!(
                    "the worker's key-value store ({worker_file}: {worker_url:?}) is not the edge's ({edge_file}: {:?})",
                    kv_url(&edge, edge_file)
                ));
            }
            for (label, db) in table.get("sqlite_database").and_then(toml::Value::as_table).into_iter().flatten() {
                if db.get("type").and_then(toml::Value::as_str) != Some("spin") {
                    problems.push(format!("{worker_file}: [sqlite_database.{label}]: the worker's host accepts only type \"spin\" (host-worker/src/runtime_config.rs)"));
                }
            }
        }
    }
    problems_report("Runtime configs", &problems);
}

// ------------------------------------------------------------------------------------------
// The worker: Dockerfile, flags, ports, probes, plugins

struct Dockerfile {
    /// (stage base image, instructions (KEYWORD, arguments)).
    stages: Vec<(String, Vec<(String, String)>)>,
}

const DOCKERFILE: &str = "deploy/worker/Dockerfile";

fn dockerfile() -> Dockerfile {
    let text = deploy().read(DOCKERFILE);
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if !current.trim().is_empty() {
                    logical.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in logical {
        let (keyword, rest) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim().to_string();
        if keyword == "FROM" {
            stages.push((rest.split_whitespace().next().unwrap_or("").to_string(), Vec::new()));
        } else {
            let stage = stages.last_mut().unwrap_or_else(|| panic!("{DOCKERFILE}: {keyword} before the first FROM"));
            stage.1.push((keyword, rest));
        }
    }
    assert!(stages.len() >= 2, "{DOCKERFILE}: expected a multi-stage build (build stage + runtime stage)");
    Dockerfile { stages }
}

impl Dockerfile {
    fn runtime(&self) -> &(String, Vec<(String, String)>) {
        self.stages.last().unwrap()
    }
    /// The last `keyword` instruction of the runtime stage, exec form (JSON array).
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let (_, instructions) = self.runtime();
        let (_, args) = instructions
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .unwrap_or_else(|| panic!("{DOCKERFILE}: the runtime stage has no {keyword}"));
        serde_json::from_str(args).unwrap_or_else(|_| {
            panic!("{DOCKERFILE}: {keyword} must be in exec form (a JSON array) so that SIGTERM reaches mp3edge, not a shell: {args}")
        })
    }
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.stages.iter().flat_map(|(_, ins)| ins.iter()).filter(move |(k, _)| k == keyword).map(|(_, a)| a.as_str())
    }
}

/// Packages named by `apt-get install` in the instructions of a stage.
fn apt_packages(instructions: &[(String, String)]) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for (keyword, args) in instructions {
        if keyword != "RUN" {
            continue;
        }
        let mut rest = args.as_str();
        while let Some(at) = rest.find("apt-get install") {
            rest = &rest[at + "apt-get install".len()..];
            for token in rest.split_whitespace() {
                if matches!(token, "&&" | ";" | "||") {
                    break;
                }
                if !token.starts_with('-') {
                    packages.insert(token.to_string());
                }
            }
        }
    }
    packages
}

/// `APT_PACKAGES=( ... )` of scripts/setup.sh.
fn setup_sh_packages() -> BTreeSet<String> {
    let text = deploy().read("scripts/setup.sh");
    let start = text.find("APT_PACKAGES=(").expect("scripts/setup.sh has APT_PACKAGES=(");
    let body = &text[start + "APT_PACKAGES=(".len()..];
    let body = &body[..body.find("\n)").expect("APT_PACKAGES=( ... ) is closed")];
    body.lines().flat_map(|l| l.split('#').next().unwrap().split_whitespace()).map(str::to_string).collect()
}

/// Packages `scripts/setup.sh` adds only when needed (`missing+=(nodejs)`).
fn setup_sh_conditional_packages() -> BTreeSet<String> {
    let text = deploy().read("scripts/setup.sh");
    text.match_indices("missing+=(")
        .filter_map(|(at, m)| text[at + m.len()..].split(')').next())
        .flat_map(str::split_whitespace)
        .filter(|p| !p.starts_with('"') && !p.starts_with('$'))
        .map(str::to_string)
        .collect()
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
    let line = text
        .lines()
        .find(|l| l.split(":=").next().is_some_and(|n| n.trim() == name))
        .unwrap_or_else(|| panic!("the Makefile has no `{name} :=`"));
    line.split_once(":=").unwrap().1.split_whitespace().map(str::to_string).collect()
}

/// Flags of `mp3edge worker` (kebab-case): the fields of `WorkerArgs` in
/// host-worker/src/worker.rs and of the structs it flattens (found in any host-worker source).
fn known_worker_flags() -> BTreeSet<String> {
    // struct name -> (field, type of a #[command(flatten)] field)
    let mut structs: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut sources = Vec::new();
    collect_rs(&workspace_root().join("host-worker/src"), &mut sources);
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut current: Option<String> = None;
        let mut flatten = false;
        for line in text.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("pub struct ").filter(|_| t.ends_with('{')) {
                current = Some(rest.trim_end_matches('{').trim().to_string());
                structs.entry(current.clone().unwrap()).or_default();
            } else if current.is_some() && t == "}" {
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
    let mut flags = BTreeSet::new();
    let mut pending = vec!["WorkerArgs".to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for (field, flattened) in structs.get(&name).cloned().unwrap_or_default() {
            match flattened {
                Some(ty) => pending.push(ty),
                None => {
                    flags.insert(field.replace('_', "-"));
                }
            }
        }
    }
    assert!(flags.contains("plugins"), "could not read the worker's flags from host-worker/src (found {flags:?})");
    flags
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `--flag value` pairs of the worker's command line: the image's ENTRYPOINT (after
/// `mp3edge worker`) followed by the Deployment's args (which replace the image's CMD).
/// Panics with the reason on a malformed or repeated flag.
fn worker_flags(deployment: &Deployment) -> BTreeMap<String, String> {
    let docker = dockerfile();
    let entrypoint = docker.exec_form("ENTRYPOINT");
    let container = worker_container(deployment);
    assert!(container.command.is_none(), "{WORKER}: container.command would replace the image's ENTRYPOINT; use args");
    assert!(
        entrypoint.len() >= 2 && entrypoint[0].ends_with("/mp3edge") && entrypoint[1] == "worker",
        "{DOCKERFILE}: ENTRYPOINT must start with the mp3edge binary and `worker`: {entrypoint:?}"
    );
    let args = container.args.clone().unwrap_or_else(|| docker.exec_form("CMD"));
    let tokens: Vec<(String, &str)> = entrypoint[2..]
        .iter()
        .map(|t| (t.clone(), "the Dockerfile's ENTRYPOINT"))
        .chain(args.iter().map(|t| (t.clone(), "the Deployment's args")))
        .collect();
    let mut flags = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, source) = &tokens[i];
        let flag = token.strip_prefix("--").unwrap_or_else(|| panic!("{source}: expected a --flag, found {token:?}"));
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                i += 1;
                let value = tokens.get(i).map(|(v, _)| v.clone()).unwrap_or_else(|| panic!("{source}: --{flag} has no value"));
                (flag.to_string(), value)
            }
        };
        if flags.insert(name.clone(), value).is_some() {
            panic!("--{name} is given twice (ENTRYPOINT + args): `mp3edge worker` rejects a repeated flag");
        }
        i += 1;
    }
    flags
}

fn worker_container(deployment: &Deployment) -> &Container {
    let containers = &deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers;
    assert_eq!(containers.len(), 1, "{WORKER}: expected one container");
    &containers[0]
}

/// The deploy/ file behind a file path of the worker container (a mounted ConfigMap key).
fn mounted_config_file(d: &Deploy, deployment: &Deployment, path: &str) -> Result<String, String> {
    let (dir, key) = path.rsplit_once('/').ok_or_else(|| format!("{WORKER}: {path:?} is no absolute file path"))?;
    let container = worker_container(deployment);
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path.trim_end_matches('/') == dir)
        .ok_or_else(|| format!("{WORKER}: {path} is in no mounted volume (no volumeMount at {dir})"))?;
    let config_maps = volume_config_maps(deployment, &mount.name);
    let generated = d.generated_config_maps();
    for name in &config_maps {
        if let Some(file) = generated.get(name).and_then(|keys| keys.get(key)) {
            return Ok(file.clone());
        }
    }
    Err(format!("{WORKER}: {path}: no ConfigMap of volume {} ({config_maps:?}) is generated with key {key} by deploy/kustomization.yaml", mount.name))
}

/// ConfigMaps (required ones) behind a pod volume.
fn volume_config_maps(deployment: &Deployment, volume: &str) -> Vec<String> {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let Some(v) = spec.volumes.iter().flatten().find(|v| v.name == volume) else { return Vec::new() };
    let mut names = Vec::new();
    if let Some(cm) = &v.config_map {
        names.push(cm.name.clone());
    }
    for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
        if let Some(cm) = &source.config_map
            && cm.optional != Some(true)
        {
            names.push(cm.name.clone());
        }
    }
    names
}

fn port_of(addr: &str) -> Option<i32> {
    addr.rsplit_once(':')?.1.parse().ok()
}

#[test]
fn worker_ports_probes_and_flags_agree() {
    let d = deploy();
    let (doc, deployment) = d.worker();
    let docker = dockerfile();
    let flags = worker_flags(&deployment);
    let container = worker_container(&deployment);
    let pod = &deployment.spec.as_ref().unwrap().template;
    let mut problems = Vec::new();

    let known = known_worker_flags();
    for flag in flags.keys() {
        if !known.contains(flag) {
            problems.push(format!("--{flag} is no flag of `mp3edge worker` (WorkerArgs in host-worker/src/worker.rs and the structs it flattens have {known:?})"));
        }
    }
    // Admin endpoint: --admin-listen, EXPOSE, container port, probes, scrape annotations.
    let admin = flags.get("admin-listen").cloned().unwrap_or_default();
    let admin_port = port_of(&admin);
    match admin.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]", _)) if admin_port.is_some() => {}
        _ => problems.push(format!("--admin-listen must be 0.0.0.0:PORT in the pod (the default 127.0.0.1:9090 is unreachable for probes), found {admin:?}")),
    }
    let exposed: BTreeSet<i32> = docker
        .all("EXPOSE")
        .flat_map(|a| a.split_whitespace())
        .filter_map(|p| p.split('/').next().and_then(|p| p.parse().ok()))
        .collect();
    if let Some(port) = admin_port {
        if !exposed.contains(&port) {
            problems.push(format!("{DOCKERFILE}: EXPOSE {exposed:?} lacks the admin port {port} of --admin-listen"));
        }
        let ports: Vec<i32> = container.ports.iter().flatten().map(|p| p.container_port).collect();
        if !ports.contains(&port) {
            problems.push(format!("{}: container ports {ports:?} lack the admin port {port}", doc.what()));
        }
        for (name, probe, path) in [
            ("livenessProbe", container.liveness_probe.as_ref(), "/healthz"),
            ("readinessProbe", container.readiness_probe.as_ref(), "/readyz"),
            ("startupProbe", container.startup_probe.as_ref(), "/healthz"),
        ] {
            match probe_target(container, probe) {
                None if name == "startupProbe" && probe.is_none() => {}
                None => problems.push(format!("{}: {name} must be an httpGet probe on {path}", doc.what())),
                Some((p, target)) => {
                    if p != path {
                        problems.push(format!("{}: {name} path {p}, the worker serves {path}", doc.what()));
                    }
                    if target != Some(port) {
                        problems.push(format!("{}: {name} port resolves to {target:?}, --admin-listen is on {port}", doc.what()));
                    }
                }
            }
        }
        let annotations = pod.metadata.as_ref().and_then(|m| m.annotations.clone()).unwrap_or_default();
        for (key, want) in [("prometheus.io/scrape", "true".to_string()), ("prometheus.io/port", port.to_string()), ("prometheus.io/path", "/metrics".to_string())] {
            if annotations.get(key) != Some(&want) {
                problems.push(format!("{}: pod annotation {key} is {:?}, expected {want:?}", doc.what(), annotations.get(key)));
            }
        }
    }
    // Draining on SIGTERM needs time.
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    if grace < 60 {
        problems.push(format!("{}: terminationGracePeriodSeconds {grace} leaves the worker little time to finish its jobs on SIGTERM", doc.what()));
    }
    // The job queue's Redis comes from the environment, as on the edge.
    if flags.contains_key("redis-host") {
        problems.push(format!("{}: set SPIN_VARIABLE_REDIS_HOST instead of --redis-host (one setting, as on the edge)", doc.what()));
    }
    // Files the flags name exist where the image or the pod puts them.
    let copied: Vec<&str> = docker.all("COPY").collect();
    match flags.get("converter") {
        None => problems.push("the worker has no --converter".into()),
        Some(converter) => {
            if !copied.iter().any(|c| c.split_whitespace().last() == Some(converter.as_str())) {
                problems.push(format!("{DOCKERFILE}: no COPY puts the converter at {converter} (--converter)"));
            }
        }
    }
    let read_only = container.security_context.as_ref().and_then(|s| s.read_only_root_filesystem) == Some(true);
    let mounts: BTreeSet<String> = container.volume_mounts.iter().flatten().map(|m| m.mount_path.trim_end_matches('/').to_string()).collect();
    if let Some(data) = flags.get("data-dir")
        && read_only
        && !mounts.contains(data.trim_end_matches('/'))
    {
        problems.push(format!("{}: --data-dir {data} is on the read-only root filesystem: mount a volume there", doc.what()));
    }
    match flags.get("plugins") {
        None => problems.push("the worker has no --plugins".into()),
        Some(dir) => {
            if !mounts.contains(dir.trim_end_matches('/')) {
                problems.push(format!("{}: --plugins {dir} is no mounted volume: plugins could not be swapped without a new image", doc.what()));
            }
        }
    }
    if let Err(e) = mounted_config_file(d, &deployment, flags.get("runtime-config-file").map(String::as_str).unwrap_or("")) {
        problems.push(e);
    }
    // The image's user is the pod's.
    let user = docker.runtime().1.iter().rev().find(|(k, _)| k == "USER").map(|(_, a)| a.clone());
    let uid = user.as_deref().and_then(|u| u.split(':').next()).and_then(|u| u.parse::<i64>().ok());
    match uid {
        None | Some(0) => problems.push(format!("{DOCKERFILE}: the runtime stage needs a numeric non-root USER, found {user:?}")),
        Some(uid) => {
            let run_as = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()).and_then(|s| s.run_as_user);
            if run_as != Some(uid) {
                problems.push(format!("{}: securityContext.runAsUser {run_as:?} differs from the image's USER {uid}", doc.what()));
            }
        }
    }
    // Scaling on in-flight jobs targets the worker's concurrency.
    let concurrency = flags.get("concurrency").and_then(|c| c.parse::<u32>().ok());
    if concurrency.is_none() {
        problems.push(format!("{}: set --concurrency (the default, the node's core count, ignores the pod's CPU limit)", doc.what()));
    }
    for so in d.of_kind("ScaledObject") {
        for trigger in so.value.pointer("/spec/triggers").and_then(Value::as_array).into_iter().flatten() {
            if let Some(pending) = trigger.pointer("/metadata/pendingEntriesCount").and_then(Value::as_str)
                && pending.parse::<u32>().ok() != concurrency
            {
                problems.push(format!("{}: pendingEntriesCount {pending} should equal the worker's --concurrency {concurrency:?}", so.what()));
            }
        }
    }
    problems_report("Worker Deployment against its image and flags", &problems);
}

#[test]
fn worker_image_builds_what_the_plugins_need() {
    let d = deploy();
    let docker = dockerfile();
    let mut problems = Vec::new();
    let (build_base, build) = &docker.stages[0];
    let (runtime_base, runtime) = docker.runtime();

    let rust_version = d.toml("Cargo.toml").get("workspace").and_then(|w| w.get("package")).and_then(|p| p.get("rust-version")).and_then(toml::Value::as_str).map(str::to_string).expect("workspace rust-version");
    let want = format!("rust:{rust_version}-bookworm");
    if !build_base.starts_with(&want) {
        problems.push(format!("{DOCKERFILE}: the build stage is FROM {build_base}, expected {want} (workspace rust-version, Debian 12 as scripts/setup.sh)"));
    }
    if runtime_base != "debian:bookworm-slim" {
        problems.push(format!("{DOCKERFILE}: the runtime stage is FROM {runtime_base}, expected debian:bookworm-slim (same Debian as the build: FFmpeg 5.1 ABI)"));
    }
    let setup = setup_sh_packages();
    let conditional = setup_sh_conditional_packages();
    let build_packages = apt_packages(build);
    let missing: Vec<&String> = setup.difference(&build_packages).collect();
    let foreign: Vec<&String> = build_packages.iter().filter(|p| !setup.contains(*p) && !conditional.contains(*p)).collect();
    if !missing.is_empty() || !foreign.is_empty() {
        problems.push(format!(
            "{DOCKERFILE}: the build stage's apt-get install must be scripts/setup.sh's APT_PACKAGES (plus what setup.sh adds conditionally, {conditional:?}): it lacks {missing:?} and has {foreign:?} besides"
        ));
    }
    if !build.iter().any(|(k, a)| k == "RUN" && a.contains("make build")) {
        problems.push(format!("{DOCKERFILE}: the build stage must run `make build`"));
    }
    // The runtime libraries of the -dev packages the binary is built against, and nothing else.
    let runtime_packages = apt_packages(runtime);
    let mut wanted = BTreeSet::from(["ca-certificates".to_string()]);
    for (dev, lib) in RUNTIME_LIBRARIES {
        if setup.contains(*dev) {
            wanted.insert(lib.to_string());
        }
    }
    for package in ["libavformat59", "libavcodec59", "libswresample4", "libavutil57"] {
        if !wanted.contains(package) {
            problems.push(format!("scripts/setup.sh no longer installs the FFmpeg 5.1 -dev package of {package}: update {DOCKERFILE} and this test"));
        }
    }
    let lacking: Vec<&String> = wanted.difference(&runtime_packages).collect();
    if !lacking.is_empty() {
        problems.push(format!("{DOCKERFILE}: the runtime stage must install {lacking:?} (the binary links them: their -dev packages are in scripts/setup.sh)"));
    }
    let extra: Vec<&String> = runtime_packages.difference(&wanted).collect();
    if !extra.is_empty() {
        problems.push(format!("{DOCKERFILE}: the slim runtime stage installs {extra:?}, which the binary does not link"));
    }
    let build_text: String = build.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>().join("\n");
    if !build_text.contains("target/wasm32-wasip2/release/converter.wasm") {
        problems.push(format!("{DOCKERFILE}: the build stage does not take target/wasm32-wasip2/release/converter.wasm"));
    }

    // Plugins: each file a codec mapping names is built by the Makefile and shipped.
    let mut plugins: BTreeMap<String, String> =
        makefile_list("PLUGINS").into_iter().map(|c| (format!("{}.wasm", c.replace('-', "_")), c)).collect();
    // Plugins in other languages: a directory of C_PLUGINS whose Makefile builds <dir name>.wasm.
    for dir in makefile_list("C_PLUGINS") {
        let name = dir.rsplit('/').next().unwrap_or(&dir).replace('-', "_");
        plugins.insert(format!("{name}.wasm"), dir);
    }
    let test_plugins: BTreeSet<String> = makefile_list("TEST_PLUGINS").into_iter().map(|c| format!("{}.wasm", c.replace('-', "_"))).collect();
    let local = d.toml("plugins/codecs.toml");
    let local_formats: BTreeSet<String> = local.get("formats").and_then(toml::Value::as_table).map(|f| f.keys().cloned().collect()).unwrap_or_default();
    let generated = d.generated_config_maps();
    let codecs_cm = generated
        .get(CODECS_CONFIG_MAP)
        .and_then(|keys| keys.get("codecs.toml"))
        .cloned()
        .unwrap_or_else(|| panic!("deploy/kustomization.yaml must generate ConfigMap {CODECS_CONFIG_MAP} with key codecs.toml"));
    let image_codecs = copied_into(&docker, "/app/plugins/codecs.toml")
        .unwrap_or_else(|| panic!("{DOCKERFILE}: no COPY of a codec mapping to /app/plugins/codecs.toml"));
    for (file, base) in [(codecs_cm.as_str(), None), (image_codecs.as_str(), Some("/app/plugins"))] {
        let table = d.toml(file);
        let formats = table.get("formats").and_then(toml::Value::as_table).cloned().unwrap_or_default();
        let names: BTreeSet<String> = formats.keys().cloned().collect();
        if names != local_formats {
            problems.push(format!("{file}: formats {names:?} differ from plugins/codecs.toml's {local_formats:?}"));
        }
        for (format, decl) in &formats {
            let plugin = decl.get("plugin").and_then(toml::Value::as_str).unwrap_or("");
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
            if test_plugins.contains(name) {
                problems.push(format!("{file}: format {format} uses {name}, a deliberately broken test plugin"));
            } else if !plugins.contains_key(name) {
                problems.push(format!("{file}: format {format} uses {name}, which no crate of the Makefile's PLUGINS ({:?}) builds", plugins.values().collect::<Vec<_>>()));
            }
            if !build_text.contains(&format!("target/wasm32-wasip2/release/{name}")) {
                problems.push(format!("{DOCKERFILE}: the build stage does not take target/wasm32-wasip2/release/{name} (format {format} of {file})"));
            }
        }
    }
    // Formats the edge offers before a worker reports (spin.toml `formats`) have a plugin.
    let spin = spin_toml();
    if let Some(default) = spin.get("variables").and_then(|v| v.get("formats")).and_then(|f| f.get("default")).and_then(toml::Value::as_str) {
        for format in default.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            if !local_formats.contains(format) {
                problems.push(format!("spin.toml offers format {format:?}, which no codec mapping of the worker serves"));
            }
        }
    }
    problems_report("Worker image", &problems);
}

/// The source file (under the build context) that a COPY puts at `dest`.
fn copied_into(docker: &Dockerfile, dest: &str) -> Option<String> {
    docker.runtime().1.iter().filter(|(k, _)| k == "COPY").find_map(|(_, args)| {
        let parts: Vec<&str> = args.split_whitespace().filter(|p| !p.starts_with("--")).collect();
        match parts.as_slice() {
            [src, d] if *d == dest => Some(src.to_string()),
            _ => None,
        }
    })
}

// ------------------------------------------------------------------------------------------
// Redis, KEDA, images

/// `host:port` of a redis:// or rediss:// URL.
fn url_host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("redis://").or_else(|| url.strip_prefix("rediss://"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    Some(rest.split('/').next()?.to_string())
}

#[test]
fn redis_settings_agree() {
    let d = deploy();
    let namespace = d.namespace();
    let spinapp = d.spinapp();
    let edge_host = spinapp_redis_host(spinapp);
    let (doc, deployment) = d.worker();
    let container = worker_container(&deployment);
    let mut problems = Vec::new();

    let worker_host = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "SPIN_VARIABLE_REDIS_HOST")
        .and_then(|e| e.value.clone());
    if worker_host.as_deref() != Some(edge_host.as_str()) {
        problems.push(format!("{}: SPIN_VARIABLE_REDIS_HOST is {worker_host:?}, the edge's redis_host is {edge_host:?}", doc.what()));
    }
    let edge_kv = kv_url(&d.toml("deploy/runtime-config.toml"), "deploy/runtime-config.toml");
    if edge_kv.as_deref().and_then(url_host_port).as_deref() != Some(edge_host.as_str()) {
        problems.push(format!("deploy/runtime-config.toml: the key-value store url {edge_kv:?} is not on the job queue's Redis {edge_host}"));
    }

    // The Service behind redis_host, and the StatefulSet behind the Service.
    let (host, port) = edge_host.rsplit_once(':').unwrap_or((&edge_host, ""));
    let port: i32 = port.parse().unwrap_or(0);
    let service_doc = d.one("Service", host);
    let service: Service = typed(service_doc);
    let spec = service.spec.clone().unwrap_or_default();
    let service_port = spec.ports.iter().flatten().find(|p| p.port == port);
    if service_port.is_none() {
        problems.push(format!("{}: no port {port} (redis_host is {edge_host})", service_doc.what()));
    }
    let set_doc = d.of_kind("StatefulSet").find(|s| s.name() == "redis").unwrap_or_else(|| panic!("deploy/ has no StatefulSet redis"));
    let set: StatefulSet = typed(set_doc);
    let set_spec = set.spec.unwrap();
    if !labels_match(&spec.selector.clone().unwrap_or_default(), &set_spec.template) {
        problems.push(format!("{}: selector does not match the pods of {}", service_doc.what(), set_doc.what()));
    }
    let redis = &pod_containers(&set_spec.template)[0];
    if let Some(p) = service_port {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        if resolve_port(std::slice::from_ref(redis), &target) != Some(6379) {
            problems.push(format!("{}: targetPort {target:?} does not reach Redis on 6379", service_doc.what()));
        }
    }
    let args: Vec<String> = redis.command.iter().flatten().chain(redis.args.iter().flatten()).cloned().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if arg("--appendonly").as_deref() != Some("yes") {
        problems.push(format!("{}: Redis must run with --appendonly yes (jobs and files must survive a restart)", set_doc.what()));
    }
    if arg("--maxmemory-policy").as_deref() != Some("noeviction") {
        problems.push(format!("{}: Redis must run with --maxmemory-policy noeviction (its keys are jobs and files, not a cache)", set_doc.what()));
    }
    let claims: BTreeSet<String> = set_spec.volume_claim_templates.iter().flatten().filter_map(|c| c.metadata.name.clone()).collect();
    let dir = arg("--dir").unwrap_or_else(|| "/data".into());
    match redis.volume_mounts.iter().flatten().find(|m| m.mount_path.trim_end_matches('/') == dir.trim_end_matches('/')) {
        Some(m) if claims.contains(&m.name) => {}
        _ => problems.push(format!("{}: Redis's --dir {dir} is not on a volumeClaimTemplate ({claims:?})", set_doc.what())),
    }
    let limit = redis.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).map(|q| bytes(&q.0));
    let maxmemory = arg("--maxmemory").map(|m| bytes(&m));
    match (maxmemory, limit) {
        (Some(Some(max)), Some(Some(limit))) if max < limit => {}
        _ => problems.push(format!("{}: set --maxmemory below the container's memory limit ({maxmemory:?} vs {limit:?} bytes)", set_doc.what())),
    }

    // KEDA talks to the same Redis, from its own namespace.
    for so in d.of_kind("ScaledObject") {
        for trigger in so.value.pointer("/spec/triggers").and_then(Value::as_array).into_iter().flatten() {
            let address = trigger.pointer("/metadata/address").and_then(Value::as_str).unwrap_or("");
            let expected = [format!("{host}.{namespace}.svc.cluster.local:{port}"), format!("{host}.{namespace}.svc:{port}")];
            if !expected.contains(&address.to_string()) {
                problems.push(format!("{}: trigger address {address:?} should be {} (KEDA resolves names from its own namespace)", so.what(), expected[0]));
            }
            if trigger.pointer("/metadata/lagCount").is_some() {
                let image = redis.image.clone().unwrap_or_default();
                let major = image.rsplit_once(':').and_then(|(_, tag)| tag.split(['.', '-']).next()?.parse::<u32>().ok());
                if major.is_none_or(|m| m < 7) {
                    problems.push(format!("{}: lagCount needs Redis >= 7, {} runs {image}", so.what(), set_doc.what()));
                }
            }
        }
    }
    problems_report("Redis settings", &problems);
}

/// Bytes of a Kubernetes quantity (`4Gi`) or a Redis size (`3gb`).
fn bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits: String = lower.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "ki" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mi" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gi" => 1 << 30,
        _ => return None,
    };
    // Redis reads 1gb as 1 GiB.
    let unit = if lower.ends_with("gb") { 1 << 30 } else if lower.ends_with("mb") { 1 << 20 } else { unit };
    Some(n * unit)
}

#[test]
fn keda_scales_the_worker_on_the_job_stream() {
    let d = deploy();
    let mut problems = Vec::new();
    let objects: Vec<&Doc> = d.of_kind("ScaledObject").collect();
    assert!(!objects.is_empty(), "deploy/ has no KEDA ScaledObject");
    for so in objects {
        let v = &so.value;
        if so.api_version() != "keda.sh/v1alpha1" {
            problems.push(format!("{}: apiVersion must be keda.sh/v1alpha1", so.what()));
        }
        let target = v.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str);
        if target != Some(WORKER) {
            problems.push(format!("{}: spec.scaleTargetRef.name is {target:?}, expected {WORKER}", so.what()));
        }
        if let Some(kind) = v.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str)
            && kind != "Deployment"
        {
            problems.push(format!("{}: spec.scaleTargetRef.kind {kind} (the worker is a Deployment)", so.what()));
        }
        let min = v.pointer("/spec/minReplicaCount").and_then(Value::as_i64).unwrap_or(0);
        let max = v.pointer("/spec/maxReplicaCount").and_then(Value::as_i64).unwrap_or(100);
        if min > max {
            problems.push(format!("{}: minReplicaCount {min} > maxReplicaCount {max}", so.what()));
        }
        let triggers = v.pointer("/spec/triggers").and_then(Value::as_array).cloned().unwrap_or_default();
        if triggers.is_empty() {
            problems.push(format!("{}: spec.triggers is empty", so.what()));
        }
        let mut pending = false;
        for (i, trigger) in triggers.iter().enumerate() {
            let at = format!("{} spec.triggers[{i}]", so.what());
            if trigger.get("type").and_then(Value::as_str) != Some("redis-streams") {
                problems.push(format!("{at}: type must be redis-streams"));
            }
            let meta = trigger.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
            for (key, value) in &meta {
                if !value.is_string() {
                    problems.push(format!("{at}: metadata.{key} must be a string (KEDA metadata is a map of strings)"));
                }
            }
            let field = |k: &str| meta.get(k).and_then(Value::as_str);
            if field("address").is_none() && (field("host").is_none() || field("port").is_none()) {
                problems.push(format!("{at}: needs metadata.address (or host and port)"));
            }
            // The job stream with the workers' group, or the segment stream with theirs.
            let (stream, group) = match field("stream") {
                Some(job_model::layout::SEGMENT_STREAM) => (job_model::layout::SEGMENT_STREAM, job_model::layout::SEGMENT_GROUP),
                _ => (job_model::layout::JOB_STREAM, job_model::layout::WORKER_GROUP),
            };
            if field("stream") != Some(stream) {
                problems.push(format!("{at}: metadata.stream is {:?}, the job stream is {:?}", field("stream"), job_model::layout::JOB_STREAM));
            }
            if field("consumerGroup") != Some(group) {
                problems.push(format!("{at}: metadata.consumerGroup is {:?}, that stream's workers' group is {group:?}", field("consumerGroup")));
            }
            let counts = ["pendingEntriesCount", "lagCount", "streamLength"];
            let set: Vec<&str> = counts.iter().copied().filter(|k| field(k).is_some()).collect();
            if set.len() != 1 {
                problems.push(format!("{at}: set exactly one of {counts:?} per trigger, found {set:?}"));
            }
            for k in set {
                if field(k).and_then(|n| n.parse::<u32>().ok()).is_none_or(|n| n == 0) {
                    problems.push(format!("{at}: metadata.{k} must be a positive integer string"));
                }
            }
            pending |= field("pendingEntriesCount").is_some();
        }
        if !pending {
            problems.push(format!("{}: no trigger on pendingEntriesCount", so.what()));
        }
    }
    // The HPA alternative targets the same Deployment.
    for hpa in d.of_kind("HorizontalPodAutoscaler") {
        if hpa.value.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) != Some(WORKER) {
            problems.push(format!("{}: spec.scaleTargetRef.name must be {WORKER}", hpa.what()));
        }
    }
    problems_report("KEDA ScaledObject", &problems);
}

/// `name` and tag of an image reference (`registry:5000/a/b:tag`).
fn split_image(image: &str) -> (String, Option<String>) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rsplit_once(':') {
        Some((name, tag)) => (format!("{}{name}", &image[..slash]), Some(tag.to_string())),
        None => (image.to_string(), None),
    }
}

#[test]
fn images_agree_with_kustomization_and_readme() {
    let d = deploy();
    let k = d.kustomization();
    let readme = d.read("deploy/README.md");
    let mut problems = Vec::new();
    let entries: BTreeMap<String, (Option<String>, Option<String>)> = k
        .value
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |key: &str| e.get(key).and_then(Value::as_str).map(str::to_string);
            (s("name").unwrap_or_default(), (s("newName"), s("newTag")))
        })
        .collect();
    let (_, deployment) = d.worker();
    let worker_image = worker_container(&deployment).image.clone().unwrap_or_default();
    let spinapp = d.spinapp();
    let edge_image = spinapp.value.pointer("/spec/image").and_then(Value::as_str).unwrap_or("").to_string();
    for (what, image, how) in [
        (format!("{} (worker image)", d.one("Deployment", WORKER).what()), &worker_image, format!("docker build -f {DOCKERFILE} -t ")),
        (format!("{} (edge image)", spinapp.what()), &edge_image, "spin registry push ".to_string()),
    ] {
        let (name, tag) = split_image(image);
        let Some(tag) = tag else {
            problems.push(format!("{what}: {image} has no tag"));
            continue;
        };
        match entries.get(&name) {
            None => problems.push(format!("{}: no images entry named {name} (for {what})", k.file)),
            Some((new_name, new_tag)) => {
                if new_tag.as_deref().is_some_and(|t| t != tag) {
                    problems.push(format!("{}: images {name} newTag {new_tag:?} differs from {what}'s tag {tag}", k.file));
                }
                let effective = format!("{}:{}", new_name.as_deref().unwrap_or(&name), new_tag.as_deref().unwrap_or(&tag));
                if !readme.contains(&format!("{how}{effective}")) {
                    problems.push(format!("deploy/README.md does not show `{how}{effective}` (the image {what} uses)"));
                }
            }
        }
    }
    for name in entries.keys() {
        let used = [&worker_image, &edge_image].iter().any(|i| split_image(i).0 == *name);
        if !used {
            problems.push(format!("{}: images entry {name} matches no image of the worker or the edge", k.file));
        }
    }
    if !readme.contains("kubectl apply -k deploy/") {
        problems.push("deploy/README.md does not show `kubectl apply -k deploy/`".into());
    }
    problems_report("Images", &problems);
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
    let namespace = d.namespace();
    let mut problems = Vec::new();
    let mut config_maps = BTreeSet::new();
    for object in built.iter().filter(|v| !v.is_null()) {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if kind != "Namespace" && object.pointer("/metadata/namespace").and_then(Value::as_str) != Some(namespace.as_str()) {
            problems.push(format!("built {kind} {name} is not in namespace {namespace}"));
        }
        if kind == "ConfigMap" {
            config_maps.insert(name.to_string());
            match unknown_fields::<ConfigMap>(object) {
                Ok(unknown) if unknown.is_empty() => {}
                other => problems.push(format!("built ConfigMap {name}: {other:?}")),
            }
        }
    }
    for object in built.iter().filter(|v| v.get("kind").and_then(Value::as_str) == Some("Deployment")) {
        let deployment: Deployment = serde_json::from_value(object.clone()).expect("built Deployment");
        for volume in deployment.spec.unwrap().template.spec.unwrap().volumes.unwrap_or_default() {
            let mut names = Vec::new();
            if let Some(cm) = volume.config_map {
                names.push((cm.name, cm.optional));
            }
            for source in volume.projected.into_iter().flat_map(|p| p.sources.unwrap_or_default()) {
                if let Some(cm) = source.config_map {
                    names.push((cm.name, cm.optional));
                }
            }
            for (name, optional) in names {
                if optional != Some(true) && !config_maps.contains(&name) {
                    problems.push(format!("built Deployment: volume {} needs ConfigMap {name}, which the build does not contain", volume.name));
                }
            }
        }
    }
    problems_report("kubectl kustomize deploy/", &problems);
}
