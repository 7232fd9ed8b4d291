//! Redis and autoscaling: the Redis StatefulSet and Service against the settings the edge and the
//! worker use (memory, persistence, address), and KEDA's ScaledObject against the job stream
//! `job-model` names.

use super::*;

pub(crate) fn redis_settings_agree() {
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
pub(crate) fn bytes(text: &str) -> Option<u64> {
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

pub(crate) fn keda_scales_the_worker_on_the_job_stream() {
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
