//! The HTTP server: router, middleware, background housekeeping and
//! graceful shutdown.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::sendfile::SendfileListener;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use std::time::{Duration, Instant};
use storage::Registry;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

pub fn router(registry: Registry) -> Router {
    let state = AppState { registry };
    Router::new()
        .route("/v2", get(api::base).head(api::base))
        .route("/v2/", get(api::base).head(api::base))
        .route("/v2/{*path}", any(api::dispatch))
        .route("/api/v1/{*path}", get(crate::inspect_api::dispatch))
        .route("/", get(crate::web::index))
        .route("/ui", get(crate::web::index))
        .route("/ui/{*path}", get(crate::web::dispatch))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        .layer(middleware::from_fn(log_request))
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.registry.health().await {
        Ok(()) => "ready".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// One structured line per request: what operators grep and tests count.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        method = %method,
        uri = %uri,
        status = resp.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}

/// Periodically discard abandoned upload sessions.
fn spawn_upload_purger(registry: Registry, ttl: Duration) {
    tokio::spawn(async move {
        let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match registry.purge_uploads(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "discarded abandoned upload sessions"),
                Err(e) => tracing::warn!(error = %e, "upload purge failed"),
            }
        }
    });
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let registry = Registry::open_local(&cfg.data_dir, cfg.policy()).await?;
    spawn_upload_purger(registry.clone(), Duration::from_secs(cfg.upload_ttl_secs));
    let listener = TcpListener::bind(cfg.listen).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        data_dir = %cfg.data_dir.display(),
        "registry listening"
    );
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let listener = SendfileListener(listener);
    let server = axum::serve(listener, router(registry)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = done_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res??,
        _ = async { let _ = done_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!("grace period over: exiting with requests still open");
        }
    }
    tracing::info!("registry stopped");
    Ok(())
}
