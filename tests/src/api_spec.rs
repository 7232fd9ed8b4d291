//! The API description as a test reads it: which documented operation a request is, and
//! whether an answer is one that operation documents — its status, its content type, and its
//! body validated against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 has it).

use serde_json::Value;

/// The served `/openapi.json`.
pub struct ApiSpec(pub Value);

/// An operation found for a request: its path template and its description.
pub struct Operation<'a> {
    pub template: &'a str,
    pub method: String,
    pub op: &'a Value,
}

/// A path fits a template when every `{param}` stands for one non-empty segment and every
/// other segment is equal.
pub fn fits(template: &str, path: &str) -> bool {
    let (parts, segments): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    parts.len() == segments.len()
        && parts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s)
}

impl ApiSpec {
    /// Every (method, template) the description documents, methods upper-case.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (template, item) in self.0["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                    all.push((method.to_ascii_uppercase(), template.clone()));
                }
            }
        }
        all
    }

    /// The operation `method path` is (path without its query). A literal template wins over
    /// one with parameters (`/users/me` over `/users/{email}`).
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let path = path.split('?').next().unwrap_or(path);
        let paths = self.0["paths"].as_object()?;
        let mut fitting: Vec<(&String, &Value)> = paths.iter().filter(|(t, _)| fits(t, path)).collect();
        fitting.sort_by_key(|(t, _)| t.matches('{').count());
        let (template, item) = fitting.into_iter().next()?;
        let op = item.get(method.to_ascii_lowercase())?;
        Some(Operation { template, method: method.to_ascii_uppercase(), op })
    }

    /// Checks an answer against the operation's documented response for its status: the status
    /// is listed; a body comes with a documented content type (`audio/*` covers `audio/mpeg`);
    /// a JSON body validates against the documented schema; an empty response documents none.
    pub fn check_answer(&self, op: &Operation<'_>, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
        let what = format!("{} {} → {status}", op.method, op.template);
        let response = op.op["responses"].get(status.to_string()).ok_or_else(|| format!("{what}: status not documented"))?;
        let content = response.get("content").and_then(Value::as_object);
        if body.is_empty() || op.method == "HEAD" || status == 304 {
            return Ok(());
        }
        let content = content.ok_or_else(|| format!("{what}: a body of {} bytes, but no content is documented", body.len()))?;
        let media = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let (_, documented) = content
            .iter()
            .find(|(ct, _)| **ct == media || ct.strip_suffix("/*").is_some_and(|main| media.starts_with(&format!("{main}/"))))
            .ok_or_else(|| format!("{what}: content type {media:?} is not one of {:?}", content.keys().collect::<Vec<_>>()))?;
        if media != "application/json" {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{what}: not JSON ({e})"))?;
        self.validate(&documented["schema"], &value).map_err(|e| format!("{what}: {e}\nbody: {value}"))
    }

    /// Validates `value` against a schema of the description (its `$ref`s resolve in it).
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let mut root = schema.clone();
        let object = root.as_object_mut().ok_or("the documented schema is not an object")?;
        object.insert("$schema".into(), "https://json-schema.org/draft/2020-12/schema".into());
        object.insert("components".into(), self.0["components"].clone());
        let validator = jsonschema::validator_for(&root).map_err(|e| format!("the documented schema does not compile: {e}"))?;
        let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}
