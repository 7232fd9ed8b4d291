//! The worker: its Deployment against its image (deploy/worker/Dockerfile), the flags
//! `mp3edge worker` really has, its ports and probes, its mounted config, and the packages and
//! plugins the image must build (against the Makefile and `scripts/setup.sh`).

use super::*;

/// Stages of deploy/worker/Dockerfile: (base image, instructions (KEYWORD, arguments)).
pub(crate) struct Dockerfile(Vec<(String, Vec<(String, String)>)>);

pub(crate) fn dockerfile() -> Dockerfile {
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
    pub(crate) fn runtime(&self) -> &(String, Vec<(String, String)>) {
        self.0.last().unwrap()
    }
    /// Arguments of the runtime stage's `keyword` instructions, last first.
    pub(crate) fn runtime_args(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.runtime().1.iter().rev().filter(move |(k, _)| k == keyword).map(|(_, a)| a.as_str())
    }
    /// The last `keyword` instruction of the runtime stage, exec form (JSON array).
    pub(crate) fn exec_form(&self, keyword: &str) -> Vec<String> {
        let args = self.runtime_args(keyword).next().unwrap_or_else(|| panic!("{DOCKERFILE}: the runtime stage has no {keyword}"));
        let why = "so that SIGTERM reaches mp3edge, not a shell";
        serde_json::from_str(args).unwrap_or_else(|_| panic!("{DOCKERFILE}: {keyword} must be in exec form (a JSON array) {why}: {args}"))
    }
    /// The (source, destination) pairs of the runtime stage's COPY instructions.
    pub(crate) fn copies(&self) -> impl Iterator<Item = (&str, &str)> {
        let parts = self.runtime_args("COPY").map(|args| args.split_whitespace().filter(|p| !p.starts_with("--")).collect::<Vec<_>>());
        parts.filter_map(|p| match p[..] {
            [src, dest] => Some((src, dest)),
            _ => None,
        })
    }
}

/// Packages named by `apt-get install` in the RUN instructions of a stage.
pub(crate) fn apt_packages(instructions: &[(String, String)]) -> BTreeSet<String> {
    let runs = instructions.iter().filter(|(k, _)| k == "RUN");
    let installs = runs.flat_map(|(_, args)| args.split("apt-get install").skip(1));
    let words = installs.flat_map(|rest| rest.split_whitespace().take_while(|t| !matches!(*t, "&&" | ";" | "||")));
    words.filter(|t| !t.starts_with('-')).map(str::to_string).collect()
}

/// `APT_PACKAGES=( ... )` of scripts/setup.sh, and what it adds only when needed
/// (`missing+=(nodejs)`).
pub(crate) fn setup_sh_packages() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = deploy().read("scripts/setup.sh");
    let body = text.split_once("APT_PACKAGES=(").expect("scripts/setup.sh has APT_PACKAGES=(").1;
    let body = body.split_once("\n)").expect("APT_PACKAGES=( ... ) is closed").0;
    let always = body.lines().flat_map(|l| l.split('#').next().unwrap().split_whitespace()).map(str::to_string).collect();
    let added = text.split("missing+=(").skip(1).filter_map(|rest| rest.split(')').next()).flat_map(str::split_whitespace);
    (always, added.filter(|p| !p.starts_with('"') && !p.starts_with('$')).map(str::to_string).collect())
}

/// Debian 12 -dev packages of scripts/setup.sh and the runtime library package the binary
/// then links.
pub(crate) const RUNTIME_LIBRARIES: &[(&str, &str)] = &[
    ("libavformat-dev", "libavformat59"),
    ("libavcodec-dev", "libavcodec59"),
    ("libswresample-dev", "libswresample4"),
    ("libswscale-dev", "libswscale6"),
    ("libavutil-dev", "libavutil57"),
    ("libssl-dev", "libssl3"),
];

/// A Makefile variable (`NAME := a b c`), split.
pub(crate) fn makefile_list(name: &str) -> Vec<String> {
    let text = deploy().read("Makefile");
    let line = text.lines().find_map(|l| l.split_once(":=").filter(|(n, _)| n.trim() == name));
    line.unwrap_or_else(|| panic!("the Makefile has no `{name} :=`")).1.split_whitespace().map(str::to_string).collect()
}

/// Flags of `mp3edge worker` (kebab-case): the fields of `WorkerArgs` and of the structs it
/// flattens, found in the sources of the workspace's crates (wherever the split puts them).
pub(crate) fn known_worker_flags() -> BTreeSet<String> {
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
pub(crate) fn worker_flags(d: &Deploy) -> BTreeMap<String, String> {
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
pub(crate) fn mounted_config_file(d: &Deploy, path: &str) -> Result<String, String> {
    let (dir, key) = path.rsplit_once('/').ok_or_else(|| format!("{path:?} is no absolute file path"))?;
    let container = d.worker_container();
    let mount = container.volume_mounts.iter().flatten().find(|m| m.mount_path.trim_end_matches('/') == dir);
    let mount = mount.ok_or_else(|| format!("{path} is in no mounted volume of the worker (no volumeMount at {dir})"))?;
    let volume = at(&d.worker().value, &format!("/spec/template/spec/volumes/[name={}]", mount.name)).unwrap_or(&Value::Null);
    let (config_maps, generated) = (required_config_maps(volume), d.generated_config_maps());
    let file = config_maps.iter().find_map(|name| generated.get(*name)?.get(key)).cloned();
    file.ok_or_else(|| format!("{path}: no ConfigMap of volume {} ({config_maps:?}) is generated with key {key}", mount.name))
}

pub(crate) fn worker_ports_probes_and_flags_agree() {
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

pub(crate) fn worker_image_builds_what_the_plugins_need() {
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
