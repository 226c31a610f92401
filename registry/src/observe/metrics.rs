//! Prometheus metrics at `/metrics`, in the text exposition format: the
//! `metrics` facade records (here and in the storage crate), the
//! Prometheus exporter renders. Labels have bounded values only: route
//! templates (`/v2/{name}/blobs/{digest}`), methods, status codes, cache
//! names; never a path, a repository or a user.
//!
//! - `registry_http_requests_total{route,method,status}`,
//!   `registry_http_request_duration_seconds{route,method}` (histogram),
//!   `registry_http_received_bytes_total{route}`,
//!   `registry_http_sent_bytes_total{route}`;
//! - `registry_uploads_in_progress` (requests writing an upload now);
//! - `registry_cache_requests_total{cache,result}` (tag, manifest and link
//!   caches: hit or miss);
//! - `registry_gc_runs_total`, `registry_gc_removed_total{kind}`,
//!   `registry_gc_freed_bytes_total`, `registry_gc_duration_seconds`;
//! - `registry_auth_failures_total{reason}`;
//! - `registry_pullthrough_requests_total{kind,result}`,
//!   `registry_pullthrough_refusals_total{reason}`,
//!   `registry_upstream_fetches_total{kind}`,
//!   `registry_upstream_fetches_in_progress`,
//!   `registry_upstream_received_bytes_total` (pull-through caches);
//! - `registry_events_delivered_total{endpoint}`,
//!   `registry_event_delivery_failures_total{endpoint}` (webhooks).
//!
//! - `registry_password_checks_total` (argon2id checks run),
//!   `registry_password_checks_busy_total` (attempts refused 503 for want
//!   of a check slot).
//!
//! Each has its HELP text in [`describe`]: `promtool check metrics` fails
//! on a family without one.

use axum::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Request latency buckets, seconds: from a cached manifest GET (well under
/// a millisecond) to a large blob transfer.
const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Install the recorder (once per process; later calls are no-ops) and
/// keep its histograms drained.
pub fn install() {
    if HANDLE.get().is_some() {
        return;
    }
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY)
        .and_then(|b| b.install_recorder());
    match built {
        Ok(handle) => {
            let upkeep = handle.clone();
            if HANDLE.set(handle).is_ok() {
                describe();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        upkeep.run_upkeep();
                    }
                });
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off: the recorder could not be installed")
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "registry_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "registry_http_request_duration_seconds",
        Unit::Seconds,
        "Time from the request to its last response byte"
    );
    describe_counter!(
        "registry_http_received_bytes_total",
        Unit::Bytes,
        "Request body bytes received"
    );
    describe_counter!(
        "registry_http_sent_bytes_total",
        Unit::Bytes,
        "Response body bytes sent"
    );
    describe_gauge!(
        "registry_uploads_in_progress",
        "Requests writing to an upload session right now"
    );
    describe_counter!(
        "registry_cache_requests_total",
        "Lookups of the in-memory metadata caches, by cache and result"
    );
    describe_counter!(
        "registry_gc_runs_total",
        "Garbage collections run on this node"
    );
    describe_counter!(
        "registry_gc_removed_total",
        "Manifests, blob links and blobs removed by garbage collection"
    );
    describe_counter!(
        "registry_gc_freed_bytes_total",
        Unit::Bytes,
        "Blob bytes freed by garbage collection"
    );
    describe_histogram!(
        "registry_gc_duration_seconds",
        Unit::Seconds,
        "Duration of garbage collections"
    );
    describe_counter!(
        "registry_auth_failures_total",
        "Requests refused for their credentials, by reason"
    );
    describe_counter!(
        "registry_pullthrough_requests_total",
        "Manifest and blob requests to pull-through caches, by kind and result (hit, miss, joined, linked, revalidated, stale)"
    );
    describe_counter!(
        "registry_pullthrough_refusals_total",
        "Pull-through fetches refused or cut off by a limit, by reason (busy, low_disk, too_large, bad_bytes)"
    );
    describe_counter!(
        "registry_upstream_fetches_total",
        "Requests made to pull-through upstreams, by kind (manifest, blob, head)"
    );
    describe_gauge!(
        "registry_upstream_fetches_in_progress",
        "Upstream fetches of pull-through caches running on this node (bounded by max_fetches)"
    );
    describe_counter!(
        "registry_upstream_received_bytes_total",
        Unit::Bytes,
        "Blob bytes received from pull-through upstreams and verified"
    );
    describe_counter!(
        "registry_events_delivered_total",
        "Push and delete events delivered to webhook endpoints, by endpoint"
    );
    describe_counter!(
        "registry_event_delivery_failures_total",
        "Failed deliveries of events to webhook endpoints (retried), by endpoint"
    );
    describe_counter!(
        "registry_password_checks_total",
        "Password and robot secret hash checks run (unknown names included)"
    );
    describe_counter!(
        "registry_password_checks_busy_total",
        "Sign-in attempts refused with 503: every password check slot stayed taken"
    );
}

/// A bounded method label.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The handles one kind of request records into.
struct Handles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    received: metrics::Counter,
    sent: metrics::Counter,
}

type HandleKey = (&'static str, &'static str, u16);

thread_local! {
    /// Handles by (route, method, status), per worker thread: a metric's
    /// key (labels hashed, the status formatted) is built once, and each
    /// request then only touches atomics.
    static HANDLES: std::cell::RefCell<std::collections::HashMap<HandleKey, Handles>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Record one answered request.
pub fn request(
    route: &'static str,
    method: &Method,
    status: u16,
    secs: f64,
    bytes_in: u64,
    bytes_out: u64,
) {
    let method = method_label(method);
    HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        let handles = h.entry((route, method, status)).or_insert_with(|| Handles {
            requests: metrics::counter!("registry_http_requests_total", "route" => route, "method" => method, "status" => status.to_string()),
            duration: metrics::histogram!("registry_http_request_duration_seconds", "route" => route, "method" => method),
            received: metrics::counter!("registry_http_received_bytes_total", "route" => route),
            sent: metrics::counter!("registry_http_sent_bytes_total", "route" => route),
        });
        handles.requests.increment(1);
        handles.duration.record(secs);
        if bytes_in > 0 {
            handles.received.increment(bytes_in);
        }
        if bytes_out > 0 {
            handles.sent.increment(bytes_out);
        }
    });
}

/// Counts a request writing to an upload session while it lives.
pub struct Uploading(());

impl Uploading {
    pub fn start() -> Uploading {
        metrics::gauge!("registry_uploads_in_progress").increment(1.0);
        Uploading(())
    }
}

impl Drop for Uploading {
    fn drop(&mut self) {
        metrics::gauge!("registry_uploads_in_progress").decrement(1.0);
    }
}

/// A request refused for its credentials (`reason`: a fixed word).
pub fn auth_failure(reason: &'static str) {
    metrics::counter!("registry_auth_failures_total", "reason" => reason).increment(1);
}

/// One password hash check run.
pub fn password_check() {
    metrics::counter!("registry_password_checks_total").increment(1);
}

/// A sign-in attempt refused for want of a check slot.
pub fn password_check_busy() {
    metrics::counter!("registry_password_checks_busy_total").increment(1);
}

/// The exposition text of every metric, `None` with metrics off.
pub fn render() -> Option<String> {
    HANDLE.get().map(|h| h.render())
}

#[cfg(test)]
mod tests {
    /// Every metric family the workspace records has a HELP text here (a
    /// family without one fails `promtool check metrics`; the end-to-end
    /// test only sees the families its traffic makes appear).
    #[test]
    fn every_recorded_metric_is_described() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let described = include_str!("metrics.rs");
        let mut missing = Vec::new();
        for dir in ["registry/src", "storage/src", "auth/src"] {
            for name in recorded_names(&root.join(dir)) {
                if !described.contains(&format!("\n        \"{name}\",")) {
                    missing.push(name);
                }
            }
        }
        assert!(missing.is_empty(), "no HELP text for {missing:?}");
    }

    /// The first argument of each `counter!`, `gauge!` and `histogram!`
    /// under `dir`.
    fn recorded_names(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                out.extend(recorded_names(&path));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for call in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in text.match_indices(call) {
                    let rest = text[at + call.len()..].trim_start();
                    if let Some(name) = rest
                        .strip_prefix('"')
                        .and_then(|r| r.split('"').next())
                        .filter(|n| n.starts_with("registry_"))
                    {
                        out.push(name.to_owned());
                    }
                }
            }
        }
        out
    }
}
