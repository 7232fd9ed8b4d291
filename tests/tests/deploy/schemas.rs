//! Syntax and schemas: every YAML file parses, SpinKube objects validate against the
//! spin-operator CRDs and core objects against Kubernetes' OpenAPI definitions (both made
//! strict), plus what the API server checks beyond its schema (names, selectors, ports).

use super::*;

pub(crate) fn every_yaml_file_parses() {
    let d = deploy();
    Problems(d.parse_errors.clone()).report("YAML under deploy/ that does not parse");
    assert!(!d.docs.is_empty(), "no YAML document under deploy/");
}

/// Makes a schema strict: every object schema that lists `properties` and says nothing about
/// others rejects unknown fields, as the API server does with strict field validation (the
/// default of `kubectl apply`).
pub(crate) fn strict(schema: &mut Value) {
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
pub(crate) fn validators() -> &'static Validators {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};

    pub(crate) fn core<T: JsonSchema>(api_version: &str, kind: &str) -> ((String, String), Value) {
        let schema = SchemaGenerator::default().into_root_schema_for::<T>();
        ((api_version.to_string(), kind.to_string()), serde_json::to_value(schema).unwrap())
    }
    pub(crate) fn resource<T: JsonSchema + k8s_openapi::Resource>() -> ((String, String), Value) {
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
pub(crate) fn validate(doc: &Doc, problems: &mut Problems) {
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

pub(crate) fn spinapps_validate_against_the_spin_operator_crd() {
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

pub(crate) fn core_objects_match_the_kubernetes_api() {
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

pub(crate) fn labels_match(selector: &BTreeMap<String, String>, pod: &PodTemplateSpec) -> bool {
    let labels = pod.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub(crate) fn pod_containers(pod: &PodTemplateSpec) -> &[Container] {
    pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default()
}

/// The container port a Service/probe port refers to.
pub(crate) fn resolve_port(containers: &[Container], port: &IntOrString) -> Option<i32> {
    let mut ports = containers.iter().flat_map(|c| c.ports.iter().flatten());
    match port {
        IntOrString::Int(n) => ports.map(|p| p.container_port).find(|p| p == n),
        IntOrString::String(name) => ports.find(|p| p.name.as_deref() == Some(name)).map(|p| p.container_port),
    }
}
