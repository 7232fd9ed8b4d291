//! Spin's HTTP routing. A route is a sequence of `/`-separated segments, each exact text or a
//! named segment (`:name`, matching any one non-empty segment), optionally ending in a trailing
//! wildcard (`/...`, matching any rest, including none). Repeated and trailing slashes in the
//! path do not count.
//!
//! When several routes match, the most specific wins, compared segment by segment from the
//! left: exact text beats a named segment, which beats the wildcard; when one route is a prefix
//! of the other, the shorter one wins (so `/jobs` beats `/jobs/...`). Of two identical routes,
//! the last one in the manifest wins, as in Spin.

use std::cmp::Ordering;

/// A route that matched, with what Spin tells the component about it (its `spin-*` headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route under the application's base `/`, one trailing slash removed
    /// (`spin-matched-route`).
    pub based_route: String,
    /// The route as written, without its trailing wildcard (`spin-component-route`).
    pub component_route: String,
    /// What the trailing wildcard matched, with its leading (and any trailing) slash
    /// (`spin-path-info`); empty for a route without a wildcard.
    pub path_info: String,
    /// The named segments' values (`spin-path-match-<name>`), in route order.
    pub named: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Exact(String),
    Named(String),
}

impl Segment {
    /// Exact text is more specific than a named segment.
    fn specificity(&self) -> u8 {
        match self {
            Segment::Exact(_) => 2,
            Segment::Named(_) => 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    raw_route: String,
    based_route: String,
    segments: Vec<Segment>,
    wildcard: bool,
    component: String,
}

impl Entry {
    fn parse(raw_route: &str, component: &str) -> Entry {
        let absolute = if raw_route.starts_with('/') { raw_route.to_string() } else { format!("/{raw_route}") };
        // Spin joins the application base `/` and the route, each without one trailing slash.
        let based_route = absolute.strip_suffix('/').unwrap_or(&absolute).to_string();
        let (pattern, wildcard) = match based_route.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None => (based_route.as_str(), false),
        };
        let segments = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Named(name.to_string()),
                None => Segment::Exact(s.to_string()),
            })
            .collect();
        Entry { raw_route: raw_route.to_string(), based_route, segments, wildcard, component: component.to_string() }
    }

    /// The kinds of this route's segments, most specific first, a wildcard counting least.
    fn specificity(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments.iter().map(Segment::specificity).chain(self.wildcard.then_some(0))
    }

    /// Which of two routes matching the same path is the more specific (`Greater` = `self`).
    fn compare_specificity(&self, other: &Entry) -> Ordering {
        self.specificity()
            .zip(other.specificity())
            .map(|(a, b)| a.cmp(&b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| other.specificity().count().cmp(&self.specificity().count()))
    }

    /// The named values and the wildcard's rest (without leading slash), if `path` matches.
    fn matches<'p>(&self, path: &'p str) -> Option<(Vec<(String, String)>, &'p str)> {
        let trimmed = path.trim_matches('/');
        let mut rest = trimmed;
        let mut named = Vec::new();
        for segment in &self.segments {
            rest = rest.trim_start_matches('/');
            if rest.is_empty() {
                return None;
            }
            let (value, after) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match segment {
                Segment::Exact(text) if text == value => {}
                Segment::Exact(_) => return None,
                Segment::Named(name) => named.push((name.clone(), value.to_string())),
            }
            rest = after;
        }
        let rest = rest.trim_start_matches('/');
        (self.wildcard || rest.is_empty()).then_some((named, rest))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

impl Router {
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Router {
        let mut entries: Vec<Entry> = Vec::new();
        for (route, component) in routes {
            let entry = Entry::parse(route, component);
            // A later identical route replaces the earlier one, as in Spin.
            entries.retain(|e| e.raw_route != entry.raw_route);
            entries.push(entry);
        }
        Router { entries }
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let (entry, (named, rest)) = self
            .entries
            .iter()
            .filter_map(|e| e.matches(path).map(|m| (e, m)))
            .reduce(|best, next| if next.0.compare_specificity(best.0).is_gt() { next } else { best })?;
        let path_info = match (entry.wildcard, rest.is_empty(), path.ends_with('/')) {
            (false, ..) => String::new(),
            (true, true, false) => String::new(),
            (true, true, true) => "/".to_string(),
            (true, false, false) => format!("/{rest}"),
            (true, false, true) => format!("/{rest}/"),
        };
        let component_route = entry.raw_route.strip_suffix("/...").unwrap_or(&entry.raw_route).to_string();
        Some(RouteMatch {
            component: entry.component.clone(),
            raw_route: entry.raw_route.clone(),
            based_route: entry.based_route.clone(),
            component_route,
            path_info,
            named,
        })
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

    #[test]
    fn named_segments_are_captured_and_rank_between_exact_and_wildcard() {
        let r = Router::new([("/base/:path_segment/:path_end/...", "shape")]);
        let m = r.route("/base/path/end/rest").unwrap();
        assert_eq!(m.named, vec![("path_segment".into(), "path".into()), ("path_end".into(), "end".into())]);
        assert_eq!(m.path_info, "/rest");
        assert_eq!(m.component_route, "/base/:path_segment/:path_end");
        assert_eq!(m.based_route, "/base/:path_segment/:path_end/...");
        assert!(r.route("/base/path").is_none());

        let r = Router::new([("/users/:id", "one"), ("/users/me", "me"), ("/users/...", "any"), ("/:a/:b", "pair")]);
        assert_eq!(r.route("/users/me").unwrap().component, "me");
        assert_eq!(r.route("/users/42").unwrap().component, "one");
        assert_eq!(r.route("/users/42").unwrap().named, vec![("id".into(), "42".into())]);
        assert_eq!(r.route("/users/42/x").unwrap().component, "any");
        assert_eq!(r.route("/other/42").unwrap().component, "pair");
        assert!(r.route("/other").is_none());
    }

    #[test]
    fn path_info_keeps_the_trailing_slash_like_spin() {
        let r = Router::new([("/foo/...", "foo")]);
        assert_eq!(r.route("/foo").unwrap().path_info, "");
        assert_eq!(r.route("/foo/").unwrap().path_info, "/");
        assert_eq!(r.route("/foo/hello").unwrap().path_info, "/hello");
        assert_eq!(r.route("/foo/hello/").unwrap().path_info, "/hello/");
        let root = Router::new([("/...", "all")]);
        let m = root.route("/1/2/3").unwrap();
        assert_eq!((m.path_info.as_str(), m.component_route.as_str(), m.based_route.as_str()), ("/1/2/3", "", "/..."));
    }

    #[test]
    fn routes_are_reported_as_spin_reports_them() {
        let r = Router::new([("/", "root"), ("/foo/", "foo")]);
        let root = r.route("/").unwrap();
        assert_eq!((root.raw_route.as_str(), root.based_route.as_str(), root.component_route.as_str()), ("/", "", "/"));
        let foo = r.route("/foo").unwrap();
        assert_eq!((foo.raw_route.as_str(), foo.based_route.as_str()), ("/foo/", "/foo"));
    }

    #[test]
    fn the_last_of_two_identical_routes_wins() {
        let r = Router::new([("/a", "first"), ("/a", "second")]);
        assert_eq!(r.route("/a").unwrap().component, "second");
    }
}
