//! Cross-origin access from the origins named by the component's `cors_allowed_origins`
//! variable (the decisions are `edge_http::cors`'s): CORS headers on every answer, and `OPTIONS`
//! preflights answered without authentication.

use crate::head::Head;
use crate::reply::Reply;
use edge_http::cors::Policy;

pub struct Cors {
    policy: Policy,
    origin: Option<String>,
}

impl Cors {
    /// The policy and the request's `Origin`. An unreadable variable allows no origin (and is
    /// logged), so a configuration mistake never opens the API.
    pub fn of(head: &Head) -> Cors {
        let list = spin_sdk::variables::get("cors_allowed_origins").unwrap_or_else(|e| {
            eprintln!("variable cors_allowed_origins is not available ({e}); no cross-origin access");
            String::new()
        });
        Cors { policy: Policy::parse(&list), origin: head.header("origin").map(str::to_string) }
    }

    /// Adds the CORS headers to an answer.
    pub fn apply(&self, reply: Reply) -> Reply {
        let headers = self.policy.response_headers(self.origin.as_deref());
        headers.into_iter().fold(reply, |reply, (name, value)| reply.header(name, value))
    }

    /// `204` to an `OPTIONS` request for a resource supporting `methods`.
    pub fn preflight(&self, methods: &str) -> Reply {
        let headers = self.policy.preflight_headers(self.origin.as_deref(), methods);
        headers.into_iter().fold(Reply::empty(204), |reply, (name, value)| reply.header(name, value))
    }
}
