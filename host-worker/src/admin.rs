//! The worker's admin endpoints for orchestrators: `/healthz` (the process is alive),
//! `/readyz` (connected to Redis, converter loaded, not shutting down) and `/metrics`
//! (Prometheus text, with the queue's depth read from Redis at scrape time).

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
use tokio_util::sync::CancellationToken;

use crate::trigger::RedisTrigger;

async fn answer(trigger: &RedisTrigger, shutdown: &CancellationToken, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/healthz" => (200, "text/plain", "ok\n".to_string()),
        "/readyz" if shutdown.is_cancelled() => (503, "text/plain", "shutting down\n".to_string()),
        "/readyz" if !trigger.redis_ok().await => (503, "text/plain", "redis unreachable\n".to_string()),
        "/readyz" => (200, "text/plain", "ready\n".to_string()),
        "/metrics" => (200, "text/plain; version=0.0.4", trigger.metrics().render(trigger.queue_depth().await.ok())),
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response")
}

/// Serves the admin endpoints until `stopped` is cancelled.
pub async fn serve(listen: SocketAddr, trigger: Arc<RedisTrigger>, shutdown: CancellationToken, stopped: CancellationToken) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding admin endpoints on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "admin endpoints (/healthz, /readyz, /metrics)");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            _ = stopped.cancelled() => return Ok(()),
        };
        let (trigger, shutdown) = (trigger.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (trigger, shutdown) = (trigger.clone(), shutdown.clone());
                async move { Ok::<_, Infallible>(answer(&trigger, &shutdown, req.uri().path()).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
