//! The HTTP trigger: serves the manifest's `[[trigger.http]]` routes with their components.
//!
//! Each component is pre-instantiated once (`ProxyPre`); every request gets a fresh instance from
//! the pooling allocator, Spin's request headers (`spin-full-url`, `spin-path-info`,
//! `spin-path-match-<name>`, `spin-client-addr`, …) and a memory cap. Each component serves a
//! bounded number of requests at once behind a short queue (`admission`); a full queue, or a
//! full instance pool, is a `503` with `Retry-After`, never a `500`. The host's own answers are
//! JSON for the mp3edge application and Spin's for any other (`host_errors`). Shutdown stops
//! accepting and lets in-flight requests finish for as long as one request may work; what is
//! still running then (an event stream, a slow transfer) ends with the process.
//!
//! What ends a request, and what does not:
//! - **Its component's own work** (`--request-timeout-secs`, 600 s): the time the host's
//!   threads spend running the component — its wasm and the host functions that run in place,
//!   by the threads' CPU clock once a poll outlasts a tick (`work_clock`). Waiting is never
//!   work: not for the client's bytes, not for the client to take the response's bytes, not for
//!   a timer, not for a backend. So a transfer on a slow link spends next to nothing, and so
//!   does the event stream, which sleeps between reads of its job record: 93 ms of work in a
//!   minute (measured), so the default budget would last it four days, past its token's day.
//!   A component that loops busily is stopped within a 10 ms tick of its budget. Past it the
//!   answer is `503 deadline exceeded` with `Retry-After`, or, once the response has begun,
//!   the response is ended as an incomplete one; either way the host logs `component stopped`.
//! - **Its client's pace** (`transfer`): a request body, or a response, whose client moves no
//!   byte for `--body-idle-timeout-secs` (30 s) while the transfer waits on it, or fewer than
//!   `--transfer-min-bytes-per-sec` (16 KiB/s) in a window of `--transfer-rate-window-secs`
//!   (30 s) of such waiting, ends: the request body with a read timeout (the gateway answers
//!   `408`), the response by resetting the connection. Both are logged. A transfer that keeps
//!   the pace goes on for as long as it takes.
//! - **An absolute bound** (`--request-max-secs`, 48 h; 0: none) on the wall-clock time of one
//!   request, waiting included: a backstop for a component that waits for something that never
//!   comes (a timer, a backend), which neither rule above sees, and which would otherwise hold
//!   its instance, its memory and its admission place for good. It is far above what honest
//!   requests take: a 2 GiB transfer at the rate floor takes 36 h, and the event stream ends
//!   when its token expires (24 h by default).
//!
//! `spin-client-addr` is appended after any copies the client sent, as Spin does, so components
//! are tested against what they meet under Spin: only the LAST value is the runtime's. The
//! routing headers (`spin-path-match-<name>` included) are replaced (client copies removed), so
//! they always have one right value.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::BodyExt;
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
use crate::engine::Runtime;
use crate::host_errors::HostErrorStyle;
use crate::request_metrics::RequestMetrics;
use crate::router::{RouteMatch, Router};
use crate::state::ComponentState;
use crate::transfer::TransferRules;
use crate::transfer::request::RequestTransfer;
use crate::transfer::response::{ConnectionWatch, MeteredIo, ResponseEnd, WatchedConnection};
use crate::work_clock::{Stopped, WorkClock};

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
    limits: RequestLimits,
    error_style: HostErrorStyle,
    metrics: Arc<RequestMetrics>,
}

/// What ends a request (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// The work one request's component may do.
    pub work: Duration,
    /// The wall-clock bound of one request, waiting included (`None`: none).
    pub time_limit: Option<Duration>,
    /// How slow a client may be, in either direction.
    pub transfer: TransferRules,
}

/// How the trigger serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub admission: AdmissionConfig,
    pub limits: RequestLimits,
    /// How the host's own 404, 500 and 503 answers look.
    pub error_style: HostErrorStyle,
    /// Where answered requests are counted (for `/metrics`).
    pub metrics: Arc<RequestMetrics>,
}

/// Which request a log line is about.
#[derive(Debug)]
pub struct RequestLabel {
    pub component: String,
    pub route: String,
    pub path: String,
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
            limits: config.limits,
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
            // The connection's responses are held to the transfer rules: its socket reports what
            // the client takes, and its task cuts a client that stops taking anything.
            let watch = ConnectionWatch::new(self.limits.transfer);
            let fd = stream.as_raw_fd();
            let io = TokioIo::new(MeteredIo::new(stream, watch.clone()));
            let this = self.clone();
            let connection_watch = watch.clone();
            let service = service_fn(move |req| {
                let this = this.clone();
                let watch = connection_watch.clone();
                async move { Ok::<_, Infallible>(this.handle(req, client, local, &watch).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive(true)
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(io, service);
            let conn = WatchedConnection::new(graceful.watch(conn), fd, watch);
            tokio::spawn(async move {
                match conn.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, %client, "connection ended with an error"),
                    // Logged where it was decided; dropping the connection resets it.
                    Err(_cut) => {}
                }
            });
        }
        tracing::info!("shutting down: finishing in-flight requests");
        drop(listener);
        // As long as one request may work; transfers and event streams may last longer, and
        // nothing else would end them.
        let deadline = tokio::time::Instant::now() + self.limits.work;
        let connections_done = tokio::time::timeout_at(deadline, graceful.shutdown()).await.is_ok();
        self.tasks.close();
        let components_done = tokio::time::timeout_at(deadline, self.tasks.wait()).await.is_ok();
        if !(connections_done && components_done) {
            tracing::warn!(components = self.tasks.len(), "requests still in flight at shutdown; they end with the process");
        }
        Ok(())
    }

    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        client: SocketAddr,
        local: SocketAddr,
        watch: &ConnectionWatch,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let Some(matched) = self.router.route(&path) else {
            let response = self.error_style.answer(404, "not found", &format!("no route for {path}"));
            watch.begin(Arc::new(RequestLabel { component: "-".into(), route: "-".into(), path }));
            self.log(&method, "-", "-", &response, started);
            return response;
        };
        let label = Arc::new(RequestLabel { component: matched.component.clone(), route: matched.raw_route.clone(), path });
        watch.begin(label.clone());
        let component = &self.components[&matched.component];
        let req = add_spin_headers(req, &matched, client, local);
        let response = match self.admission.admit(&matched.component).await {
            Err(refusal) => {
                tracing::warn!(component = %matched.component, ?refusal, "at capacity; answered 503");
                busy(self.error_style, &matched.component)
            }
            Ok(admitted) => match self.run(component, req, admitted, label.clone()).await {
                Ok(response) => response,
                // Logged by the component's task (`component stopped`).
                Err(e) if e.is::<Stopped>() => self.stopped_answer(*e.downcast_ref::<Stopped>().expect("checked")),
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
            %method, route = %matched.raw_route, path = %label.path, status, elapsed_ms = elapsed.as_millis() as u64,
            component = %matched.component, %user, %job, "request"
        );
        response
    }

    /// The host's answer for a request whose component it stopped before it answered.
    fn stopped_answer(&self, stopped: Stopped) -> hyper::Response<HyperOutgoingBody> {
        let mut response = match stopped {
            Stopped::WorkBudget(budget) => self.error_style.answer(
                503,
                "deadline exceeded",
                &format!("the request took more work than the server allows ({} s)", budget.as_secs_f64()),
            ),
            Stopped::TimeLimit(limit) => self.error_style.answer(
                503,
                "deadline exceeded",
                &format!("the request took longer than the server allows ({} s)", limit.as_secs_f64()),
            ),
        };
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(RETRY_AFTER_SECS));
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
        label: Arc<RequestLabel>,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        let loaded = &component.loaded;
        let limits = self.limits;
        let req = req.map(|body| RequestTransfer::new(body, limits.transfer, label.clone()));
        let work = WorkClock::new(limits.work);
        let mut store = self.runtime.new_request_store(loaded.grants.clone(), self.app.services.clone(), &loaded.environment, work.clone());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = {
            use wasmtime_wasi_http::WasiHttpView;
            let mut http = store.data_mut().http();
            let incoming = http.new_incoming_request(Scheme::Http, req)?;
            let out = http.new_response_outparam(sender)?;
            (incoming, out)
        };
        let pre = component.pre.clone();
        // Set, before the component's store goes, when the host stops it: its response body
        // then ends as an incomplete one.
        let stopped = Arc::new(OnceLock::new());
        let task = self.tasks.spawn({
            let stopped = stopped.clone();
            async move {
                let started = Instant::now();
                let call = work.meter(async {
                    let proxy = pre.instantiate_async(&mut store).await?;
                    proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming.0, incoming.1).await
                });
                let result = match limits.time_limit {
                    Some(limit) => {
                        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| Err(wasmtime::Error::new(Stopped::TimeLimit(limit))))
                    }
                    None => call.await,
                };
                let result = result.map_err(|e| match stopped_by_host(&e) {
                    Some(why) => {
                        let _ = stopped.set(why);
                        tracing::warn!(
                            component = %label.component, route = %label.route, path = %label.path, reason = %why,
                            work_ms = work.spent().as_millis() as u64, elapsed_ms = started.elapsed().as_millis() as u64,
                            "component stopped"
                        );
                        anyhow::Error::new(why)
                    }
                    None => anyhow::Error::from(e),
                });
                let peak = store.data().memory.peak_memory_bytes;
                drop(store);
                drop(admitted);
                tracing::debug!(
                    component = %label.component, peak_memory_bytes = peak, work_ms = work.spent().as_millis() as u64,
                    instance_ms = started.elapsed().as_millis() as u64, "instance finished"
                );
                result
            }
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response.map(|body| ResponseEnd::new(body, stopped).boxed_unsync())),
            Ok(Err(code)) => Err(anyhow::anyhow!("component answered with error {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow::anyhow!("component returned without setting a response")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// Why the host stopped a component, when it did (the error of its call says so).
fn stopped_by_host(e: &wasmtime::Error) -> Option<Stopped> {
    e.downcast_ref::<Stopped>().copied().or_else(|| e.chain().find_map(|cause| cause.downcast_ref::<Stopped>().copied()))
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
