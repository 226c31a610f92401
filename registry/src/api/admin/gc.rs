//! `POST /api/v1/gc` with `{"dry_run": bool, "grace_secs": N}`: collect
//! garbage now (an administrator's action: it acts on every repository).
//! The answer streams one JSON line per batch (`{"progress": ...}`) and
//! ends with `{"report": ...}` (or `{"error": ...}`), so a client can show
//! progress; a collection already running elsewhere is a 503 up front.
//! `GET /api/v1/gc` answers what collections on this node have done since
//! it started (runs, removed, freed, the last run's report).

use crate::http::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use storage::{ErrorCode, GcOptions};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcBody {
    #[serde(default)]
    dry_run: bool,
    grace_secs: Option<u64>,
}

/// Collect now, for an administrator (the gate has checked).
pub async fn collect(state: &AppState, user: Option<String>, body: GcBody) -> Response {
    let defaults = &state.gc;
    let opts = GcOptions {
        grace: Duration::from_secs(body.grace_secs.unwrap_or(defaults.grace_secs)),
        retention: Duration::from_secs(defaults.retention_secs),
        dry_run: body.dry_run,
        now: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let registry = state.registry.clone();
    // Runs to the end even if the client goes away.
    tokio::spawn(async move {
        let progress = {
            let tx = tx.clone();
            move |r: &storage::GcReport| {
                let _ = tx.send(serde_json::json!({ "progress": summary(r) }));
            }
        };
        let line = match registry.gc(opts, &progress).await {
            Ok(report) => {
                tracing::info!(
                    dry_run = opts.dry_run,
                    user = user.as_deref(),
                    blobs = report.blobs_removed,
                    bytes = report.bytes_freed,
                    "garbage collection requested"
                );
                serde_json::json!({ "report": report })
            }
            Err(e) => {
                serde_json::json!({ "error": { "code": e.code.as_str(), "message": e.message, "unavailable": e.code == ErrorCode::Unavailable } })
            }
        };
        let _ = tx.send(line);
    });
    // The first line decides the status: a refusal is an error response.
    let Some(first) = rx.recv().await else {
        return ApiError::new(
            ErrorCode::Internal,
            "garbage collection ended without a report",
        )
        .into_response();
    };
    if let Some(err) = first.get("error") {
        let code = if err["unavailable"].as_bool() == Some(true) {
            ErrorCode::Unavailable
        } else {
            ErrorCode::Internal
        };
        return ApiError::new(
            code,
            err["message"]
                .as_str()
                .unwrap_or("garbage collection failed"),
        )
        .into_response();
    }
    let lines = futures::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        let next = match first {
            Some(v) => v,
            None => rx.recv().await?,
        };
        let mut line = serde_json::to_vec(&next).unwrap_or_default();
        line.push(b'\n');
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from(line)),
            (None, rx),
        ))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// The counts of a report, without its lists (for progress lines).
fn summary(r: &storage::GcReport) -> serde_json::Value {
    serde_json::json!({
        "reviewed": r.reviewed,
        "manifests_removed": r.manifests_removed,
        "links_removed": r.links_removed,
        "blobs_removed": r.blobs_removed,
        "bytes_freed": r.bytes_freed,
        "seconds": r.seconds,
    })
}
