//! [`Problems`]: what one test finds, reported all at once, and [`Problems::agree`], the table of
//! values that two places (deploy/ objects, TOML files of the workspace, the worker's command
//! line, literals) must share, so that every cross-file agreement is one row.

use super::*;

/// The problems one test finds; `report` fails the test with all of them at once.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl Problems {
    pub(crate) fn push(&mut self, problem: String) {
        self.0.push(problem);
    }
    /// Records `problem` unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, problem: String) {
        if !ok {
            self.push(problem);
        }
    }
    /// Records `{what} is {got:?}, expected {want:?}{why}` unless they are equal.
    pub(crate) fn expect<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T, why: &str) {
        self.check(got == want, format!("{what} is {got:?}, expected {want:?}{why}"));
    }
    /// Checks a table of agreements: rows `(place, place or =literal, why)` (see [`place`]); the
    /// first place must hold a value, and the second the same.
    pub(crate) fn agree(&mut self, d: &Deploy, rows: &[(&str, &str, &str)]) {
        for (a, b, why) in rows {
            let (x, y) = (place(d, a), place(d, b));
            let shown = |v: &Option<String>| v.as_ref().map_or("missing".to_string(), |v| format!("{v:?}"));
            let other = b.strip_prefix('=').map_or(format!("{b} is {}", shown(&y)), |want| format!("expected {want:?}"));
            self.check(x.is_some() && x == y, format!("{a} is {}, {other}: {why}", shown(&x)));
        }
    }
    #[track_caller]
    pub(crate) fn report(self, title: &str) {
        let mut seen = BTreeSet::new();
        let unique: Vec<&str> = self.0.iter().map(String::as_str).filter(|p| seen.insert(*p)).collect();
        assert!(unique.is_empty(), "{title}:\n  - {}", unique.join("\n  - "));
    }
}

/// The value at a place of deploy/ or the project, as text: `Kind [name] /path` (the object of
/// deploy/ of that kind and name), `file.toml /path` (a TOML file of the workspace), `--flag`
/// (the worker's command line: the image's ENTRYPOINT and the Deployment's args) or `=text`.
pub(crate) fn place(d: &Deploy, place: &str) -> Option<String> {
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
