//! Spin's HTTP routing: exact routes (`/login`) and wildcard routes (`/jobs/...`); an exact
//! match wins over a wildcard, and a longer wildcard prefix over a shorter one.

/// A route that matched, with what Spin tells the component about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// The route as written in the manifest (`spin-matched-route`).
    pub route: String,
    /// The route without its wildcard (`spin-component-route`).
    pub base: String,
    /// The path after the route's base (`spin-path-info`).
    pub path_info: String,
}

#[derive(Debug, Clone)]
struct Entry {
    route: String,
    base: String,
    wildcard: bool,
    component: String,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

impl Router {
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Router {
        let mut entries: Vec<Entry> = routes
            .into_iter()
            .map(|(route, component)| {
                let (base, wildcard) = match route.strip_suffix("/...") {
                    Some(base) => (base.to_string(), true),
                    None => (route.trim_end_matches('/').to_string(), false),
                };
                Entry { route: route.to_string(), base, wildcard, component: component.to_string() }
            })
            .collect();
        // Exact before wildcard, then longest base first.
        entries.sort_by(|a, b| a.wildcard.cmp(&b.wildcard).then(b.base.len().cmp(&a.base.len())));
        Router { entries }
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        for e in &self.entries {
            let hit = if e.wildcard {
                trimmed == e.base || path.starts_with(&format!("{}/", e.base))
            } else {
                trimmed == e.base || (e.base.is_empty() && path == "/")
            };
            if hit {
                let path_info = if e.wildcard { path[e.base.len()..].to_string() } else { String::new() };
                return Some(RouteMatch {
                    component: e.component.clone(),
                    route: e.route.clone(),
                    base: if e.base.is_empty() { "/".into() } else { e.base.clone() },
                    path_info,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = Router::new([("/jobs", "list"), ("/jobs/...", "job"), ("/...", "fallback"), ("/login", "auth")]);
        assert_eq!(r.route("/jobs").unwrap().component, "list");
        let m = r.route("/jobs/abc/audio").unwrap();
        assert_eq!((m.component.as_str(), m.path_info.as_str()), ("job", "/abc/audio"));
        assert_eq!(r.route("/login").unwrap().component, "auth");
        assert_eq!(r.route("/login/").unwrap().component, "auth");
        assert_eq!(r.route("/loginx").unwrap().component, "fallback");
        assert_eq!(r.route("/").unwrap().component, "fallback");
        assert!(Router::new([("/login", "auth")]).route("/other").is_none());
        assert!(Router::new([("/jobs/...", "job")]).route("/jobsx").is_none());
    }
}
