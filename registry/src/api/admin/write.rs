//! The writes of `/api/v1`, which need credentials in a header (Basic or a
//! bearer token; a browser's session cookie is not enough, so no cross-site
//! request can make them). What each needs is in the gate's table
//! ([`crate::gate::require`]), checked before these handlers run:
//! - `POST /api/v1/repositories/<name>/tags/<tag>/rollback` with
//!   `{"to": "<digest>"}` or `{"steps": N}` (default one step): move a tag
//!   back (a blue/green rollback); needs push.
//! - `POST /api/v1/gc`: collect garbage now (see `gc_api`); administrators.
//! - lifecycle policies: `PUT`/`DELETE .../lifecycle`, `POST
//!   .../lifecycle/preview|run` (see `lifecycle_api`).
//! - `PUT /api/v1/repositories/<name>/immutability` with `{"immutable":
//!   true, "exclude": ["latest"]}`: ECR's tag immutability; needs delete
//!   (the strongest per-repository right: it decides what pushes may do).

use crate::gate::Access;
use crate::http::error::ApiError;
use crate::routes::{Api, Endpoint};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use storage::metadata::Immutability;
use storage::{Digest, ErrorCode, Rollback};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    to: Option<String>,
    steps: Option<u32>,
}

/// A small JSON body (an empty one is the default).
async fn json<T: DeserializeOwned + Default>(req: Request, expected: &str) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), 4096)
        .await
        .map_err(|e| {
            ApiError::new(ErrorCode::Unsupported, format!("request body: {e}")).into_response()
        })?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(ErrorCode::Unsupported, format!("expected {expected}: {e}")).into_response()
    })
}

fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response()
}

/// The `/api/v1` route of a request.
fn api_route(path: &str) -> Option<Api<'_>> {
    match crate::routes::endpoint(path) {
        Endpoint::Api(a) => Some(a),
        _ => None,
    }
}

pub async fn post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    let user = access.user();
    match api_route(&path) {
        Some(Api::LifecyclePreview { name }) => {
            let body = match crate::api::admin::lifecycle::body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            crate::api::admin::lifecycle::preview(&state.registry, name, &body).await
        }
        Some(Api::LifecycleRun { name }) => {
            let by = state.registry.acting_as(user.clone());
            crate::api::admin::lifecycle::run(&by, name, user.as_deref()).await
        }
        Some(Api::Gc) => {
            let body: crate::api::admin::gc::GcBody =
                match json(req, "{\"dry_run\": true, \"grace_secs\": 3600}").await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
            crate::api::admin::gc::collect(&state, user, body).await
        }
        Some(Api::Rollback { name, tag }) => rollback(&state, user, name, tag, req).await,
        _ => not_found(),
    }
}

/// `POST .../tags/<tag>/rollback`.
async fn rollback(
    state: &AppState,
    user: Option<String>,
    name: &str,
    tag: &str,
    req: Request,
) -> Response {
    let body: RollbackBody = match json(req, "{\"to\": \"<digest>\"} or {\"steps\": N}").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let target = match (body.to, body.steps) {
        (Some(_), Some(_)) => {
            return ApiError::new(ErrorCode::Unsupported, "give either to or steps, not both")
                .into_response()
        }
        (Some(d), None) => match d.parse::<Digest>() {
            Ok(d) => Rollback::To(d),
            Err(e) => return ApiError(e).into_response(),
        },
        (None, Some(0)) => {
            return ApiError::new(ErrorCode::Unsupported, "steps must be at least 1")
                .into_response()
        }
        (None, steps) => Rollback::Steps(steps.unwrap_or(1)),
    };
    match state
        .registry
        .acting_as(user.clone())
        .rollback_tag(name, tag, target)
        .await
    {
        Ok((from, to)) => {
            tracing::info!(repository = name, tag, from = from.as_deref(), to = %to, user = user.as_deref(), "tag rolled back");
            Json(serde_json::json!({ "name": name, "tag": tag, "from": from, "to": to }))
                .into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn put(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    let user = access.user();
    match api_route(&path) {
        Some(Api::Lifecycle { name }) => {
            let body = match crate::api::admin::lifecycle::body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            crate::api::admin::lifecycle::put(&state.registry, name, &body, user.as_deref()).await
        }
        Some(Api::Immutability { name }) => {
            // A pull-through cache's tags follow its upstream.
            if let Err(e) = state.proxy.check_writable(name) {
                return ApiError(e).into_response();
            }
            let setting: Immutability =
                match json(req, "{\"immutable\": true, \"exclude\": [\"latest\"]}").await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
            match state.registry.set_immutability(name, &setting).await {
                Ok(()) => {
                    tracing::info!(repository = name, immutable = setting.immutable, exclude = ?setting.exclude, user = user.as_deref(), "tag immutability set");
                    Json(serde_json::json!({ "name": name, "immutability": setting }))
                        .into_response()
                }
                Err(e) => ApiError(e).into_response(),
            }
        }
        _ => not_found(),
    }
}

/// `DELETE /api/v1/repositories/<name>/lifecycle`: remove the policy.
pub async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    match api_route(req.uri().path()) {
        Some(Api::Lifecycle { name }) => {
            crate::api::admin::lifecycle::delete(&state.registry, name, access.user().as_deref())
                .await
        }
        _ => not_found(),
    }
}
