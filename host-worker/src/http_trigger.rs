//! The HTTP trigger: serves the manifest's `[[trigger.http]]` routes with their components.
//!
//! Each component is pre-instantiated once (`ProxyPre`); every request gets a fresh instance from
//! the pooling allocator, Spin's request headers (`spin-full-url`, `spin-path-info`,
//! `spin-path-match-<name>`, `spin-client-addr`, …), a memory cap and a wall-clock deadline
//! that counts waiting too. Each component serves a bounded number of requests at once behind a
//! short queue (`admission`); a full queue, or a full instance pool, is a `503` with
//! `Retry-After`, never a `500`. The host's own answers are JSON for the mp3edge application and
//! Spin's for any other (`host_errors`). A request
//! body that goes silent ends with a read timeout (`idle_body`). Shutdown stops accepting, lets
//! in-flight requests finish, then returns.
//!
//! `spin-client-addr` is appended after any copies the client sent, as Spin does, so components
//! are tested against what they meet under Spin: only the LAST value is the runtime's. The
//! routing headers (`spin-path-match-<name>` included) are replaced (client copies removed), so
//! they always have one right value.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission::{Admission, AdmissionConfig, Admitted};
use crate::app::{App, LoadedComponent};
use crate::idle_body::IdleTimeoutBody;
use crate::engine::Runtime;
use crate::host_errors::HostErrorStyle;
use crate::request_metrics::RequestMetrics;
use crate::router::{RouteMatch, Router};
use crate::state::ComponentState;

/// Routing headers Spin sets on every request; client copies are removed.
const SPIN_HEADERS: &[&str] = &[
    "spin-full-url",
    "spin-path-info",
    "spin-matched-route",
    "spin-raw-component-route",
    "spin-component-route",
    "spin-base-path",
];

/// Prefix of the headers that carry a route's named segments; client copies are removed.
const PATH_MATCH_HEADER_PREFIX: &str = "spin-path-match-";

/// The header Spin sets for named segment `name` (`:path_end` gives `spin-path-match-path-end`).
fn path_match_header(name: &str) -> String {
    format!("{PATH_MATCH_HEADER_PREFIX}{}", name.replace('_', "-").to_ascii_lowercase())
}

/// The client's address, appended after any copies the client sent (as Spin does).
const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

struct HttpComponent {
    loaded: Arc<LoadedComponent>,
    pre: ProxyPre<ComponentState>,
}

pub struct HttpTrigger {
    runtime: Arc<Runtime>,
    app: Arc<App>,
    router: Router,
    components: BTreeMap<String, HttpComponent>,
    /// Requests whose component still runs (including streaming response bodies).
    tasks: TaskTracker,
    admission: Admission,
    /// A request body silent this long ends with a read timeout.
    body_idle_timeout: Duration,
    error_style: HostErrorStyle,
    metrics: Arc<RequestMetrics>,
}

/// How the trigger serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub admission: AdmissionConfig,
    pub body_idle_timeout: Duration,
    /// How the host's own 404, 500 and 503 answers look.
    pub error_style: HostErrorStyle,
    /// Where answered requests are counted (for `/metrics`).
    pub metrics: Arc<RequestMetrics>,
}

/// Response headers a component may set to name, in the host's request log line, the user it
/// served and the job the request concerned. The host logs and removes them; under Spin they
/// reach the client, who is that user.
const LOG_USER_HEADER: &str = "mp3edge-log-user";
const LOG_JOB_HEADER: &str = "mp3edge-log-job";

/// Seconds a client is asked to wait before trying again when the host is at capacity.
const RETRY_AFTER_SECS: u64 = 2;

/// The host's answer when a component has no place for one more request.
fn busy(style: HostErrorStyle, component: &str) -> hyper::Response<HyperOutgoingBody> {
    let mut response = style.answer(503, "busy", &format!("the server is at capacity for {component}; retry shortly"));
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(RETRY_AFTER_SECS));
    response
}

impl HttpTrigger {
    pub fn new(runtime: Arc<Runtime>, app: Arc<App>, config: &ServeConfig) -> Result<Arc<HttpTrigger>> {
        let router = Router::new(app.manifest.http_triggers.iter().map(|t| (t.route.as_str(), t.component.as_str())));
        let mut components = BTreeMap::new();
        for trigger in &app.manifest.http_triggers {
            if components.contains_key(&trigger.component) {
                continue;
            }
            let loaded = app.components.get(&trigger.component).cloned().context("component not loaded")?;
            let instance_pre = runtime
                .linker
                .instantiate_pre(&loaded.component)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component {:?} imports something this host does not provide", loaded.name))?;
            let pre = ProxyPre::new(instance_pre)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component {:?} does not export wasi:http/incoming-handler", loaded.name))?;
            components.insert(trigger.component.clone(), HttpComponent { loaded, pre });
        }
        let admission = Admission::new(&config.admission, components.keys().map(String::as_str));
        Ok(Arc::new(HttpTrigger {
            runtime,
            app,
            router,
            components,
            tasks: TaskTracker::new(),
            admission,
            body_idle_timeout: config.body_idle_timeout,
            error_style: config.error_style,
            metrics: config.metrics.clone(),
        }))
    }

    /// Serves until `shutdown` is cancelled, then waits for in-flight requests.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
        let local = listener.local_addr()?;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                },
                _ = shutdown.cancelled() => break,
            };
            let this = self.clone();
            let service = service_fn(move |req| {
                let this = this.clone();
                async move { Ok::<_, Infallible>(this.handle(req, client, local).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive(true)
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %client, "connection ended with an error");
                }
            });
        }
        tracing::info!("shutting down: finishing in-flight requests");
        drop(listener);
        if tokio::time::timeout(self.runtime.limits.deadline, graceful.shutdown()).await.is_err() {
            tracing::warn!("some connections did not finish before the deadline");
        }
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }

    async fn handle(&self, req: hyper::Request<Incoming>, client: SocketAddr, local: SocketAddr) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let Some(matched) = self.router.route(&path) else {
            let response = self.error_style.answer(404, "not found", &format!("no route for {path}"));
            self.log(&method, "-", "-", &response, started);
            return response;
        };
        let component = &self.components[&matched.component];
        let req = add_spin_headers(req, &matched, client, local);
        let response = match self.admission.admit(&matched.component).await {
            Err(refusal) => {
                tracing::warn!(component = %matched.component, ?refusal, "at capacity; answered 503");
                busy(self.error_style, &matched.component)
            }
            Ok(admitted) => match self.run(component, req, admitted).await {
                Ok(response) => response,
                Err(e) if format!("{e:#}").contains("deadline of") => {
                    tracing::warn!(component = %matched.component, error = %format!("{e:#}"), "request deadline exceeded");
                    let mut response = self.error_style.answer(503, "deadline exceeded", "the request took longer than the server allows");
                    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(RETRY_AFTER_SECS));
                    response
                }
                Err(e) if is_pool_exhausted(&e) => {
                    tracing::warn!(component = %matched.component, error = %format!("{e:#}"), "instance pool exhausted; answered 503");
                    busy(self.error_style, &matched.component)
                }
                Err(e) => {
                    tracing::error!(component = %matched.component, error = %format!("{e:#}"), "request failed");
                    self.error_style.answer(500, "internal error", "the component failed to answer; see the server log")
                }
            },
        };
        let mut response = response;
        let headers = response.headers_mut();
        let user = headers.remove(LOG_USER_HEADER);
        let job = headers.remove(LOG_JOB_HEADER);
        let text = |value: &Option<http::HeaderValue>| value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
        let (user, job) = (text(&user), text(&job));
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.record(&matched.component, method.as_str(), status, elapsed);
        tracing::info!(
            %method, route = %matched.raw_route, %path, status, elapsed_ms = elapsed.as_millis() as u64,
            component = %matched.component, %user, %job, "request"
        );
        response
    }

    /// The log line and count of a request no component served.
    fn log(&self, method: &http::Method, component: &str, route: &str, response: &hyper::Response<HyperOutgoingBody>, started: Instant) {
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.record(component, method.as_str(), status, elapsed);
        tracing::info!(
            %method, %route, status, elapsed_ms = elapsed.as_millis() as u64, %component, user = "-", job = "-", "request"
        );
    }

    async fn run(
        &self,
        component: &HttpComponent,
        req: hyper::Request<Incoming>,
        admitted: Admitted,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        let loaded = &component.loaded;
        let idle = self.body_idle_timeout;
        let req = req.map(|body| IdleTimeoutBody::new(body, idle));
        let mut store = self.runtime.new_store(loaded.grants.clone(), self.app.services.clone(), &loaded.environment);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = {
            use wasmtime_wasi_http::WasiHttpView;
            let mut http = store.data_mut().http();
            let incoming = http.new_incoming_request(Scheme::Http, req)?;
            let out = http.new_response_outparam(sender)?;
            (incoming, out)
        };
        let pre = component.pre.clone();
        let name = loaded.name.clone();
        let deadline = self.runtime.limits.deadline;
        let task = self.tasks.spawn(async move {
            let started = Instant::now();
            // The deadline counts waiting (for a body, a client, a backend) as well as running:
            // the epoch deadline only sees the guest while it executes.
            let result = tokio::time::timeout(deadline, async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming.0, incoming.1).await
            })
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::msg(format!("deadline of {}s exceeded", deadline.as_secs()))));
            drop(admitted);
            let peak = store.data().memory.peak_memory_bytes;
            tracing::debug!(
                component = %name, peak_memory_bytes = peak,
                instance_ms = started.elapsed().as_millis() as u64, "instance finished"
            );
            result
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(anyhow::anyhow!("component answered with error {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow::anyhow!("component returned without setting a response")),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// Whether an instantiation failed because the pooling allocator had no free slot.
fn is_pool_exhausted(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("maximum concurrent")
}

fn add_spin_headers(
    mut req: hyper::Request<Incoming>,
    matched: &RouteMatch,
    client: SocketAddr,
    local: SocketAddr,
) -> hyper::Request<Incoming> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    let headers = req.headers_mut();
    for name in SPIN_HEADERS {
        headers.remove(*name);
    }
    let client_copies: Vec<http::HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with(PATH_MATCH_HEADER_PREFIX)).cloned().collect();
    for name in client_copies {
        headers.remove(name);
    }
    if !headers.contains_key(http::header::HOST) {
        headers.insert(http::header::HOST, http::HeaderValue::from_str(&local.to_string()).expect("an address is a valid header"));
    }
    let mut set = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &matched.path_info);
    set("spin-matched-route", &matched.based_route);
    set("spin-raw-component-route", &matched.raw_route);
    set("spin-component-route", &matched.component_route);
    set("spin-base-path", "/");
    for (name, value) in &matched.named {
        set(&path_match_header(name), value);
    }
    let client = http::HeaderValue::from_str(&client.to_string()).expect("an address is a valid header");
    headers.append(CLIENT_ADDR_HEADER, client);
    req
}
