//! Loading deploy/: every YAML document of every file under `deploy/` (parsed once, shared by
//! all tests), the TOML files of the workspace, and the small path language (`/a/0/[name=x]`)
//! the checks use to reach into them. Kept apart so that each check reads as what it checks.

use super::*;

/// One YAML document of a file under deploy/.
pub(crate) struct Doc {
    /// Path relative to the workspace root, e.g. `deploy/worker/deployment.yaml`.
    pub(crate) file: String,
    /// Index of the document in its file (0-based, empty documents counted).
    pub(crate) index: usize,
    pub(crate) value: Value,
}

impl Doc {
    pub(crate) fn str(&self, path: &str) -> Option<&str> {
        text(&self.value, path)
    }
    pub(crate) fn kind(&self) -> &str {
        self.str("/kind").unwrap_or("")
    }
    pub(crate) fn api_version(&self) -> &str {
        self.str("/apiVersion").unwrap_or("")
    }
    pub(crate) fn name(&self) -> &str {
        self.str("/metadata/name").unwrap_or("")
    }
    /// `deploy/x.yaml (document 2, Deployment mp3edge-worker)`, for messages.
    pub(crate) fn what(&self) -> String {
        format!("{} (document {}, {} {})", self.file, self.index + 1, self.kind(), self.name())
    }
    /// The part at `path` as its k8s-openapi type (its shape is the schema tests' business).
    pub(crate) fn typed<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let value = at(&self.value, path).cloned().unwrap_or_else(|| panic!("{}: no {path}", self.what()));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{} at {path}: {e}", self.what()))
    }
}

/// The value at `path`: the segments of a JSON pointer, plus `[key=value]` for the element of
/// an array whose `key` is `value`, and `[after=text]` for the element after `text` in an array
/// (the value of a flag in a command line).
pub(crate) fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
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

pub(crate) fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// The array at `path` (empty when absent).
pub(crate) fn items<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The entries of the object at `path` (none when absent).
pub(crate) fn fields<'a>(value: &'a Value, path: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    at(value, path).and_then(Value::as_object).into_iter().flatten()
}

/// The strings of the array at `path`.
pub(crate) fn strings<'a>(value: &'a Value, path: &str) -> Vec<&'a str> {
    items(value, path).iter().filter_map(Value::as_str).collect()
}

pub(crate) struct Deploy {
    pub(crate) root: PathBuf,
    pub(crate) docs: Vec<Doc>,
    pub(crate) parse_errors: Vec<String>,
    pub(crate) yaml_files: Vec<String>,
}

pub(crate) fn deploy() -> &'static Deploy {
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
pub(crate) fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
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
pub(crate) fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let documents = serde_norway::Deserializer::from_str(text).enumerate();
    documents.map(|(i, document)| Value::deserialize(document).map_err(|e| format!("document {}: {e}", i + 1))).collect()
}

/// The non-empty documents of `file`.
pub(crate) fn docs_of(file: &str, values: Vec<Value>) -> impl Iterator<Item = Doc> {
    let documents = values.into_iter().enumerate().filter(|(_, v)| !v.is_null());
    documents.map(move |(index, value)| Doc { file: file.to_string(), index, value })
}

impl Deploy {
    pub(crate) fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.root.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
    }

    /// A TOML file of the workspace, as JSON.
    pub(crate) fn toml(&self, file: &str) -> Value {
        let table: toml::Table = self.read(file).parse().unwrap_or_else(|e| panic!("{file} is not valid TOML: {e}"));
        serde_json::to_value(table).unwrap()
    }

    pub(crate) fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    /// The only object of `kind` named `name` (any name if empty).
    pub(crate) fn one(&self, kind: &str, name: &str) -> Result<&Doc, String> {
        let found: Vec<&Doc> = self.docs.iter().filter(|d| d.kind() == kind && (name.is_empty() || d.name() == name)).collect();
        match found[..] {
            [doc] => Ok(doc),
            _ => Err(format!("deploy/ must have one {kind} {name}, found {:?}", found.iter().map(|d| d.what()).collect::<Vec<_>>())),
        }
    }

    #[track_caller]
    pub(crate) fn only(&self, kind: &str, name: &str) -> &Doc {
        self.one(kind, name).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn kustomization(&self) -> &Doc {
        let k = self.only("Kustomization", "");
        assert_eq!(k.file, "deploy/kustomization.yaml", "the Kustomization must be deploy/kustomization.yaml");
        k
    }

    /// A list of files in the kustomization (`resources`, `configurations`), as deploy/ paths.
    pub(crate) fn kustomize_files(&self, field: &str) -> Vec<String> {
        strings(&self.kustomization().value, field).iter().map(|f| format!("deploy/{f}")).collect()
    }

    pub(crate) fn namespace(&self) -> String {
        self.kustomization().str("/namespace").expect("deploy/kustomization.yaml has a namespace").to_string()
    }

    pub(crate) fn worker(&self) -> &Doc {
        self.only("Deployment", "mp3edge-worker")
    }

    /// The worker's only container.
    pub(crate) fn worker_container(&self) -> Container {
        let containers: Vec<Container> = self.worker().typed("/spec/template/spec/containers");
        assert_eq!(containers.len(), 1, "{}: expected one container", self.worker().what());
        containers.into_iter().next().unwrap()
    }

    /// `configMapGenerator` entries of the kustomization: name -> (key -> file under deploy/).
    pub(crate) fn generated_config_maps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
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
pub(crate) fn required_config_maps(volume: &Value) -> Vec<&str> {
    let sources = items(volume, "/projected/sources").iter().filter_map(|s| s.get("configMap"));
    let maps = volume.get("configMap").into_iter().chain(sources).filter(|cm| cm.get("optional") != Some(&Value::Bool(true)));
    maps.filter_map(|cm| text(cm, "/name")).collect()
}
