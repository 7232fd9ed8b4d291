//! The `web` component: the browser app, a few static files compiled into the wasm and served on
//! the catch-all route (`/...`). Exact and longer routes (`/login`, `/jobs/...`...) still reach
//! `auth` and `gateway`; everything else lands here.

use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

/// One embedded file.
struct Asset {
    body: &'static [u8],
    /// `fnv1a(body)`, its ETag: the files are compiled in, so it is computed at compile time.
    hash: u64,
    content_type: &'static str,
    cache_control: &'static str,
}

impl Asset {
    const fn embed(body: &'static [u8], content_type: &'static str, cache_control: &'static str) -> Asset {
        Asset { body, hash: fnv1a(body), content_type, cache_control }
    }
}

/// The page and its scripts change with every release under the same names: always revalidate
/// (cheap, thanks to the ETag).
const REVALIDATE: &str = "no-cache";

const INDEX: Asset = Asset::embed(include_bytes!("../assets/index.html"), "text/html; charset=utf-8", REVALIDATE);
/// The page's script: ES modules, one per concern, served as they are (no bundler).
macro_rules! module {
    ($name:literal) => {
        Asset::embed(include_bytes!(concat!("../assets/js/", $name)), "text/javascript; charset=utf-8", REVALIDATE)
    };
}
static MODULES: [(&str, Asset); 11] = [
    ("/js/main.js", module!("main.js")),
    ("/js/api.js", module!("api.js")),
    ("/js/ui.js", module!("ui.js")),
    ("/js/nav.js", module!("nav.js")),
    ("/js/options.js", module!("options.js")),
    ("/js/presets.js", module!("presets.js")),
    ("/js/upload.js", module!("upload.js")),
    ("/js/jobs.js", module!("jobs.js")),
    ("/js/account.js", module!("account.js")),
    ("/js/tokens.js", module!("tokens.js")),
    ("/js/users.js", module!("users.js")),
];
const APP_CSS: Asset = Asset::embed(include_bytes!("../assets/app.css"), "text/css; charset=utf-8", REVALIDATE);
/// The API's OpenAPI 3.1 description.
const OPENAPI: Asset = Asset::embed(include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json")), "application/json", REVALIDATE);
const FAVICON: Asset = Asset::embed(include_bytes!("../assets/favicon.svg"), "image/svg+xml", "public, max-age=86400");
/// tus-js-client's browser build (npm, copied in by `build.rs`): the page's resumable uploads.
const TUS_JS: Asset = Asset::embed(include_bytes!(concat!(env!("OUT_DIR"), "/tus.min.js")), "text/javascript; charset=utf-8", REVALIDATE);

fn asset(path: &str) -> Option<&'static Asset> {
    Some(match path {
        "/" | "/index.html" => &INDEX,
        "/app.css" => &APP_CSS,
        "/openapi.json" => &OPENAPI,
        "/favicon.svg" | "/favicon.ico" => &FAVICON,
        "/tus.min.js" => &TUS_JS,
        _ => return MODULES.iter().find(|(name, _)| *name == path).map(|(_, asset)| asset),
    })
}

/// The page may only load what it ships and talk to its own origin; it is never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A strong validator: FNV-1a (64 bit) of the bytes. Hashing the 10 KiB page byte by byte on
/// every request took 7% of a static request's CPU, hence `Asset::embed`.
const fn fnv1a(body: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < body.len() {
        hash = (hash ^ body[i] as u64).wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

fn etag(hash: u64) -> String {
    format!("\"{hash:016x}\"")
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, as RFC 9110 asks for).
fn none_match(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// HEAD: the headers of the GET, no body.
    head_only: bool,
}

fn error(status: u16, error: &str, detail: &str) -> Reply {
    let body = format!(
        "{{\"error\":{},\"detail\":{}}}",
        json_string(error),
        json_string(detail)
    )
    .into_bytes();
    Reply {
        status,
        headers: vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())],
        body,
        head_only: false,
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn respond(method: &Method, path: &str, if_none_match: Option<&str>) -> Reply {
    let head_only = matches!(method, Method::Head);
    if !matches!(method, Method::Get | Method::Head) {
        let mut reply = error(405, "method not allowed", "the web app only answers GET and HEAD");
        reply.headers.push(("allow", "GET, HEAD".into()));
        return reply;
    }
    let Some(asset) = asset(path) else {
        let mut reply = error(404, "not found", &format!("nothing is served at {path}"));
        reply.head_only = head_only;
        return reply;
    };
    let tag = etag(asset.hash);
    let mut headers = vec![
        ("content-type", asset.content_type.to_string()),
        ("cache-control", asset.cache_control.to_string()),
        ("etag", tag.clone()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if asset.content_type.starts_with("text/html") {
        headers.push(("content-security-policy", CSP.to_string()));
        headers.push(("referrer-policy", "no-referrer".to_string()));
    }
    if if_none_match.is_some_and(|h| none_match(h, &tag)) {
        return Reply { status: 304, headers, body: Vec::new(), head_only: true };
    }
    headers.push(("content-length", asset.body.len().to_string()));
    Reply { status: 200, headers, body: asset.body.to_vec(), head_only }
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let path_and_query = req.path_with_query().unwrap_or_default();
    let path = path_and_query.split(['?', '#']).next().unwrap_or("/");
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .into_iter()
        .next()
        .and_then(|v| String::from_utf8(v).ok());
    let reply = respond(&req.method(), if path.is_empty() { "/" } else { path }, if_none_match.as_deref());

    let fields: Vec<(String, Vec<u8>)> =
        reply.headers.into_iter().map(|(name, value)| (name.to_string(), value.into_bytes())).collect();
    let response = OutgoingResponse::new(Fields::from_list(&fields).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(reply.status);
    if reply.head_only {
        out.set(response);
    } else if let Err(e) = out.set_with_body(response, reply.body).await {
        eprintln!("could not send the response body: {e:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_validators() {
        assert_eq!(respond(&Method::Get, "/", None).status, 200);
        for (name, _) in &MODULES {
            let reply = respond(&Method::Get, name, None);
            assert_eq!(reply.status, 200, "{name}");
            assert!(reply.headers.contains(&("content-type", "text/javascript; charset=utf-8".into())), "{name}");
        }
        assert_eq!(respond(&Method::Get, "/app.js", None).status, 404);
        assert_eq!(respond(&Method::Get, "/js/nope.js", None).status, 404);
        assert_eq!(respond(&Method::Get, "/nope", None).status, 404);
        assert_eq!(respond(&Method::Post, "/", None).status, 405);
        let tag = etag(fnv1a(INDEX.body));
        assert_eq!(respond(&Method::Get, "/", Some(&format!("W/{tag}"))).status, 304);
        assert!(none_match("\"a\", *", "\"b\""));
        assert_eq!(json_string("a\"b\n"), "\"a\\\"b\\u000a\"");
    }
}
