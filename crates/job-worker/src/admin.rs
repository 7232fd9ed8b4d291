//! The admin endpoints for orchestrators and operators, on their own address: `/healthz` (the
//! process is alive), `/readyz` (not shutting down; with a worker: Redis reachable) and
//! `/metrics` (Prometheus text: the edge's requests by component and status with latencies, and
//! the worker's jobs with the queue's depth read from Redis at scrape time). `mp3edge worker`
//! serves the worker's; `mp3edge up` serves both.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use spin_host::request_metrics::RequestMetrics;
use crate::trigger::RedisTrigger;

/// What the endpoints report on.
#[derive(Clone, Default)]
pub struct Probes {
    pub worker: Option<Arc<RedisTrigger>>,
    pub edge: Option<Arc<RequestMetrics>>,
}

impl Probes {
    pub fn worker(trigger: Arc<RedisTrigger>) -> Probes {
        Probes { worker: Some(trigger), edge: None }
    }

    async fn metrics(&self) -> String {
        let mut text = String::new();
        if let Some(edge) = &self.edge {
            text.push_str(&edge.render());
        }
        if let Some(worker) = &self.worker {
            text.push_str(&worker.metrics().render(worker.queue_depth().await.ok()));
        }
        text
    }
}

async fn answer(probes: &Probes, shutdown: &CancellationToken, path: &str) -> Response<Full<Bytes>> {
    let redis_down = || async {
        match &probes.worker {
            Some(worker) => !worker.redis_ok().await,
            None => false,
        }
    };
    let (status, content_type, body) = match path {
        "/healthz" => (200, "text/plain", "ok\n".to_string()),
        "/readyz" if shutdown.is_cancelled() => (503, "text/plain", "shutting down\n".to_string()),
        "/readyz" if redis_down().await => (503, "text/plain", "redis unreachable\n".to_string()),
        "/readyz" => (200, "text/plain", "ready\n".to_string()),
        "/metrics" => (200, "text/plain; version=0.0.4", probes.metrics().await),
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response")
}

/// Binds the admin address.
pub async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| format!("binding the admin endpoints on {listen} (--admin-listen)"))
}

/// Serves the admin endpoints until `stopped` is cancelled.
pub async fn serve(listener: TcpListener, probes: Probes, shutdown: CancellationToken, stopped: CancellationToken) -> Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "admin endpoints (/healthz, /readyz, /metrics)");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            _ = stopped.cancelled() => return Ok(()),
        };
        let (probes, shutdown) = (probes.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (probes, shutdown) = (probes.clone(), shutdown.clone());
                async move { Ok::<_, Infallible>(answer(&probes, &shutdown, req.uri().path()).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
