//! The request line and headers, copied out of the request before its body is taken (query and
//! media-type parsing itself is pure and lives, with its tests, in `edge-http`).

use spin_sdk::http::{IncomingRequest, Method};

/// The request line and headers, copied out of the request. (A header `Fields` handle is a child
/// of the request and must not outlive it, which `into_body_stream` consumes.)
pub struct Head {
    pub method: Method,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
}

impl Head {
    pub fn of(req: &IncomingRequest) -> Head {
        let path_and_query = req.path_with_query().unwrap_or_default();
        let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
        let headers = req
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
            .collect();
        Head { method: req.method(), path: path.to_string(), query: query.to_string(), headers }
    }

    /// The first value of a header (if it is valid UTF-8). For a header a client may repeat to
    /// smuggle a value in front of the runtime's (`spin-client-addr`), use [`Head::last_header`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Every value of a header, in the order received (values that are not UTF-8 are skipped).
    pub fn header_values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The last value of a header: for the `spin-*` headers, the one the runtime added (Spin
    /// appends its values after any copies the client sent).
    pub fn last_header(&self, name: &str) -> Option<&str> {
        self.header_values(name).last()
    }

    /// `?limit=` and `?offset=` of a list route (400 when out of range).
    pub fn page(&self, default_limit: u32, max_limit: u32) -> Result<(u32, u32), crate::ApiError> {
        edge_http::query::page(&self.query, default_limit, max_limit)
            .map_err(|detail| crate::ApiError::bad_request("invalid query", detail))
    }

    /// The first, percent-decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

pub use edge_http::query::{media_type, query_param};
