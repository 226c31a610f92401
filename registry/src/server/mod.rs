//! The HTTP server: router, middleware, background housekeeping and
//! graceful shutdown.

mod authorize;
pub mod preflight;
use crate::api::v2;
use crate::config::Config;
use crate::failure::{listen_failure, Failure};
use crate::gate::Gate;
use crate::http::conn::{self, ConnLimits};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use storage::Registry;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

pub fn router(
    registry: Registry,
    gate: Arc<Gate>,
    cfg: &Config,
    proxy: Arc<crate::proxy::Proxy>,
) -> Router {
    let state = AppState {
        registry,
        gate,
        session_ttl: cfg.session_ttl_secs,
        gc: cfg.gc.clone(),
        proxy,
        ecr: Arc::new(cfg.ecr.clone()),
        external_url: cfg.external_url.clone(),
    };
    // The ECR API's path: `/` shares its route with the web view's
    // redirect (GET), another path has one of its own.
    let ecr_path = cfg.ecr.path.clone();
    let root = if ecr_path == "/" {
        get(crate::web::index).post(crate::api::ecr::handle)
    } else {
        get(crate::web::index)
    };
    let router = Router::new();
    let router = if ecr_path == "/" {
        router
    } else {
        router.route(&ecr_path, post(crate::api::ecr::handle))
    };
    router
        .route("/v2", get(v2::base).head(v2::base))
        .route("/v2/", get(v2::base).head(v2::base))
        .route("/v2/{*path}", any(v2::dispatch))
        .route(
            "/api/v1/{*path}",
            get(crate::api::admin::inspect::dispatch)
                .post(crate::api::admin::write::post)
                .put(crate::api::admin::write::put)
                .delete(crate::api::admin::write::delete),
        )
        .route("/", root)
        .route("/ui", get(crate::web::index))
        .route(
            "/ui/login",
            get(crate::web::login_form).post(crate::web::login),
        )
        .route("/ui/logout", post(crate::web::logout))
        .route("/ui/{*path}", get(crate::web::dispatch))
        .route(
            "/token",
            get(crate::api::token::get).post(crate::api::token::post),
        )
        .route("/token/jwks.json", get(crate::api::token::jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(ready))
        // Every route above passes the gate: its requirement is in one
        // table (`gate::require`), checked before any handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize::authorize,
        ))
        .with_state(state)
        .layer(axum::middleware::map_request(
            |req: axum::extract::Request| async move { req.map(crate::http::linger::Lingering::wrap) },
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        // On every answer, blobs included: no content sniffing (a blob is
        // anyone's bytes), no framing, no scripts, styles only from our
        // own stylesheet, forms only to us.
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// The pages need nothing but their own stylesheet and forms to
/// themselves; everything else is refused.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /metrics` (404 with metrics off).
async fn metrics() -> Response {
    let Some(body) = crate::observe::metrics::render() else {
        return crate::http::error::ApiError::new(
            storage::ErrorCode::NotFound,
            "metrics are off (metrics = false)",
        )
        .into_response();
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Ready when the metadata database and the blob store both answer, within
/// a time a load balancer's or Kubernetes' probe waits (their retries
/// would be slower than its own).
/// Set on SIGTERM: the node is on its way out (see [`shutdown_signal`]).
static DRAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn ready(State(state): State<AppState>) -> Response {
    let unready = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    if DRAINING.load(std::sync::atomic::Ordering::Relaxed) {
        return unready("draining: this node is shutting down".into());
    }
    match tokio::time::timeout(READY_TIMEOUT, state.registry.health()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => unready(e.to_string()),
        Err(_) => unready(format!(
            "UNAVAILABLE: the metadata database or blob store did not answer within {READY_TIMEOUT:?}"
        )),
    }
}

const READY_TIMEOUT: Duration = Duration::from_millis(900);

/// Resolves when the server should stop taking requests. On SIGTERM (an
/// orchestrator's stop) `/readyz` fails at once and the node keeps serving
/// for `drain`, so the load balancer takes it out of rotation before it
/// stops listening; then in-flight requests finish. Ctrl-C (a person at a
/// terminal) skips the drain.
async fn shutdown_signal(drain: Duration) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {
            DRAINING.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(drain_secs = drain.as_secs(), "SIGTERM: /readyz fails now; serving on until the drain ends");
            tokio::time::sleep(drain).await;
        },
    }
}

/// Raise this process's soft limit on open files to its hard limit: every
/// connection and every blob being read or written holds a descriptor, and
/// a distribution's default soft limit (1024) is hit by a fleet's pulls long
/// before memory or CPU. Returns the limit in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a stack value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

/// Descriptors kept back from connections: the database, logs, listeners.
const RESERVED_FDS: u64 = 64;

/// The connection cap that fits in `nofile` descriptors: each connection
/// may hold its socket and a blob file (two while an upload writes).
fn connection_cap(wanted: usize, nofile: u64) -> usize {
    let fits = (nofile.saturating_sub(RESERVED_FDS) / 3).max(1);
    wanted.min(usize::try_from(fits).unwrap_or(usize::MAX))
}

/// Return freed heap memory to the system every so often: after a flood
/// of connections glibc keeps what they used (per-thread arenas), and the
/// process would look as large as its busiest minute forever.
fn spawn_memory_trim() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            // SAFETY: glibc's malloc_trim has no preconditions.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    });
}

/// Write noted manifest pulls to the database every few seconds (in one
/// batch, whatever the number of pulls).
fn spawn_pull_flusher(registry: Registry) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            if let Err(e) = registry.flush_pulls().await {
                tracing::warn!(error = %e, "pull times could not be written (kept for the next try)");
            }
        }
    });
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

/// Apply lifecycle policies and collect garbage every `interval` (a run
/// another node holds the lease for is skipped: that node collects for all).
fn spawn_collector(registry: Registry, gc: crate::config::GcConfig) {
    if gc.interval_secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(gc.interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: give a starting node a moment's peace.
        tick.tick().await;
        loop {
            tick.tick().await;
            let opts = storage::GcOptions {
                grace: Duration::from_secs(gc.grace_secs),
                retention: Duration::from_secs(gc.retention_secs),
                dry_run: false,
                now: None,
            };
            // Policies first: what they expire, this collection frees.
            if let Err(e) = registry.lifecycle_run_all().await {
                tracing::warn!(error = %e, "lifecycle policies could not run");
            }
            match registry.gc(opts, &|_| {}).await {
                Ok(_) => {}
                Err(e) if e.code == storage::ErrorCode::Unavailable => {
                    tracing::debug!(error = %e, "garbage collection skipped")
                }
                Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
            }
        }
    });
}

pub async fn serve(cfg: Config) -> Result<(), Failure> {
    // First: handles made before the recorder is in place would record
    // nothing.
    if cfg.metrics {
        crate::observe::metrics::install();
    }
    // The address first: a busy port is the commonest mistake, and says so
    // before anything is touched.
    let listener = preflight::listen(cfg.listen)?;
    preflight::data_dir(&cfg.data_dir)?;
    let nofile = raise_nofile_limit();
    let max_connections = connection_cap(cfg.max_connections, nofile);
    if max_connections < cfg.max_connections {
        tracing::warn!(
            max_connections,
            configured = cfg.max_connections,
            open_files_limit = nofile,
            "max_connections lowered to fit the open-files limit (raise `ulimit -n` / LimitNOFILE)"
        );
    }
    let registry = cfg.open_registry().await.map_err(|e| {
        Failure::operational(format!(
            "cannot open the registry in {}: {}",
            cfg.stores(),
            e.message
        ))
    })?;
    let gate = Arc::new(Gate::new(&cfg, registry.clone(), cfg.tls_cert.is_some())?);
    let proxy = Arc::new(
        crate::proxy::Proxy::new(&cfg.cache, &cfg.pull_through, &cfg.data_dir)
            .map_err(Failure::operational)?,
    );
    // Rules made through the ECR API, kept in the database for every node.
    crate::api::ecr::spawn_rule_reloader(registry.clone(), proxy.clone());
    spawn_upload_purger(registry.clone(), Duration::from_secs(cfg.upload_ttl_secs));
    let base_url = cfg
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.listen));
    crate::observe::notify::spawn(
        registry.clone(),
        cfg.notifications.clone(),
        cfg.listen.to_string(),
        base_url.trim_end_matches('/').to_owned(),
        Duration::from_secs(cfg.notifications_max_age_secs),
    );
    spawn_collector(registry.clone(), cfg.gc.clone());
    spawn_pull_flusher(registry.clone());
    spawn_memory_trim();
    let listener = TcpListener::from_std(listener).map_err(|e| listen_failure(&cfg.listen, &e))?;
    tracing::info!(
        listen = %cfg.listen,
        data_dir = %cfg.data_dir.display(),
        max_connections,
        open_files_limit = nofile,
        version = crate::VERSION,
        "registry listening"
    );
    let limits = ConnLimits {
        timeouts: cfg.timeouts(),
        max_connections,
        proxies: Arc::new(crate::http::forwarded::TrustedProxies::new(
            &cfg.trusted_proxies,
            cfg.forwarded_header,
        )),
    };
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let transport = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = crate::http::tls::Tls::new(cert, key)?;
            tls.spawn_reload_on_sighup();
            conn::Transport::Tls(tls)
        }
        _ => conn::Transport::Plain,
    };
    conn::serve(
        listener,
        router(registry.clone(), gate, &cfg, proxy),
        limits,
        transport,
        shutdown_signal(Duration::from_secs(cfg.shutdown_drain_secs)),
        grace,
    )
    .await;
    // The last pulls noted, before the process goes.
    if let Err(e) = registry.flush_pulls().await {
        tracing::warn!(error = %e, "the last pull times could not be written");
    }
    tracing::info!("registry stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_fits_the_descriptor_limit() {
        assert_eq!(connection_cap(4096, 1 << 20), 4096);
        assert_eq!(connection_cap(4096, 1024), 320);
        assert_eq!(connection_cap(4096, 128), 21);
        assert_eq!(connection_cap(4096, 10), 1);
    }

    #[test]
    fn nofile_soft_limit_is_raised_to_the_hard_limit() {
        let limit = raise_nofile_limit();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system call on a stack value.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(limit, lim.rlim_cur);
    }
}
