//! The writes of `/api/v1`, which need credentials in a header (Basic or a
//! bearer token; a browser's session cookie is not enough, so no cross-site
//! request can make them):
//! - `POST /api/v1/repositories/<name>/tags/<tag>/rollback` with
//!   `{"to": "<digest>"}` or `{"steps": N}` (default one step): move a tag
//!   back (a blue/green rollback); needs push.
//! - `POST /api/v1/gc`: collect garbage now (see `gc_api`); administrators.
//! - lifecycle policies: `PUT`/`DELETE .../lifecycle`, `POST
//!   .../lifecycle/preview|run` (see `lifecycle_api`).
//! - `PUT /api/v1/repositories/<name>/immutability` with `{"immutable":
//!   true, "exclude": ["latest"]}`: ECR's tag immutability; needs delete
//!   (the strongest per-repository right: it decides what pushes may do).

use crate::api::AppState;
use crate::error::ApiError;
use crate::gate::{AuthError, Caller};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use storage::metadata::Immutability;
use storage::{Digest, ErrorCode, Rollback};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    to: Option<String>,
    steps: Option<u32>,
}

/// The caller by header credentials, and what its subject may do.
async fn caller(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    client: SocketAddr,
) -> Result<(Caller, Caller), Response> {
    let caller = match state.gate.caller(headers, client.ip()).await {
        Ok(c) => c,
        Err(AuthError::Invalid(m)) => {
            return Err(crate::gate::unauthorized(
                &state.gate,
                headers,
                None,
                false,
                m,
            ))
        }
        Err(AuthError::Throttled(s)) => return Err(crate::gate::refuse_throttled(s)),
        Err(AuthError::Unavailable(e)) => return Err(ApiError(e).into_response()),
    };
    let subject = state.gate.subject(&caller).await;
    Ok((caller, subject))
}

/// None when `action` on `name` is allowed; else the refusal: 401 with a
/// challenge for a caller without credentials, 403, or unknown for a
/// repository the caller may not even read (no name leaks).
fn refusal(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    (caller, subject): (&Caller, &Caller),
    name: &str,
    action: auth::Action,
) -> Option<Response> {
    if state.gate.allows(subject, name, action) {
        return None;
    }
    let scope = format!("repository:{name}:{}", action.as_str());
    if caller.is_anonymous() {
        return Some(crate::gate::unauthorized(
            &state.gate,
            headers,
            Some(&scope),
            false,
            "authentication required",
        ));
    }
    if !state.gate.allows(subject, name, auth::Action::Pull) {
        return Some(ApiError(storage::Error::name_unknown(name)).into_response());
    }
    Some(crate::gate::denied(Some(&scope)))
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

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let (caller, subject) = match caller(&state, &headers, client).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = req.uri().path().to_owned();
    match crate::lifecycle_api::route(&path) {
        Some(crate::lifecycle_api::Op::Preview(name)) => {
            if let Some(r) = refusal(
                &state,
                &headers,
                (&caller, &subject),
                name,
                auth::Action::Pull,
            ) {
                return r;
            }
            let body = match crate::lifecycle_api::body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            return crate::lifecycle_api::preview(&state.registry, name, &body).await;
        }
        Some(crate::lifecycle_api::Op::Run(name)) => {
            if let Some(r) = refusal(
                &state,
                &headers,
                (&caller, &subject),
                name,
                auth::Action::Delete,
            ) {
                return r;
            }
            let by = state.registry.acting_as(caller.user());
            return crate::lifecycle_api::run(&by, name, caller.user().as_deref()).await;
        }
        _ => {}
    }
    if path == "/api/v1/gc" {
        let body: crate::gc_api::GcBody =
            match json(req, "{\"dry_run\": true, \"grace_secs\": 3600}").await {
                Ok(b) => b,
                Err(r) => return r,
            };
        return crate::gc_api::collect(&state, &headers, (&caller, &subject), body).await;
    }
    let Some((name, tag)) = path
        .strip_prefix("/api/v1/repositories/")
        .and_then(|p| p.strip_suffix("/rollback"))
        .and_then(|p| p.rsplit_once("/tags/"))
    else {
        return not_found();
    };
    if let Some(r) = refusal(
        &state,
        &headers,
        (&caller, &subject),
        name,
        auth::Action::Push,
    ) {
        return r;
    }
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
        .acting_as(caller.user())
        .rollback_tag(name, tag, target)
        .await
    {
        Ok((from, to)) => {
            tracing::info!(repository = name, tag, from = from.as_deref(), to = %to, user = caller.user().as_deref(), "tag rolled back");
            Json(serde_json::json!({ "name": name, "tag": tag, "from": from, "to": to }))
                .into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

pub async fn put(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let (caller, subject) = match caller(&state, &headers, client).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = req.uri().path().to_owned();
    if let Some(crate::lifecycle_api::Op::Policy(name)) = crate::lifecycle_api::route(&path) {
        if let Some(r) = refusal(
            &state,
            &headers,
            (&caller, &subject),
            name,
            auth::Action::Delete,
        ) {
            return r;
        }
        let body = match crate::lifecycle_api::body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        return crate::lifecycle_api::put(&state.registry, name, &body, caller.user().as_deref())
            .await;
    }
    let Some(name) = path
        .strip_prefix("/api/v1/repositories/")
        .and_then(|p| p.strip_suffix("/immutability"))
    else {
        return not_found();
    };
    if let Some(r) = refusal(
        &state,
        &headers,
        (&caller, &subject),
        name,
        auth::Action::Delete,
    ) {
        return r;
    }
    let setting: Immutability =
        match json(req, "{\"immutable\": true, \"exclude\": [\"latest\"]}").await {
            Ok(b) => b,
            Err(r) => return r,
        };
    match state.registry.set_immutability(name, &setting).await {
        Ok(()) => {
            tracing::info!(repository = name, immutable = setting.immutable, exclude = ?setting.exclude, user = caller.user().as_deref(), "tag immutability set");
            Json(serde_json::json!({ "name": name, "immutability": setting })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// `DELETE /api/v1/repositories/<name>/lifecycle`: remove the policy.
pub async fn delete(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let (caller, subject) = match caller(&state, &headers, client).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = req.uri().path().to_owned();
    let Some(crate::lifecycle_api::Op::Policy(name)) = crate::lifecycle_api::route(&path) else {
        return not_found();
    };
    if let Some(r) = refusal(
        &state,
        &headers,
        (&caller, &subject),
        name,
        auth::Action::Delete,
    ) {
        return r;
    }
    crate::lifecycle_api::delete(&state.registry, name, caller.user().as_deref()).await
}
