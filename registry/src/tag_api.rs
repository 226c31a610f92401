//! `POST /api/v1/repositories/<name>/tags/<tag>/rollback`: move a tag back
//! (a blue/green rollback), with `{"to": "<digest>"}` or `{"steps": N}`
//! (default: one step). Needs push on the repository, by Basic credentials
//! or a bearer token; a browser's session cookie is not enough (no
//! cross-site request can move a tag).

use crate::api::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;
use storage::{Digest, ErrorCode, Rollback};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    to: Option<String>,
    steps: Option<u32>,
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let caller = match state.gate.caller(req.headers(), client.ip()).await {
        Ok(c) => c,
        Err(crate::gate::AuthError::Invalid(m)) => {
            return crate::gate::unauthorized(&state.gate, req.headers(), None, false, m)
        }
        Err(crate::gate::AuthError::Throttled(s)) => return crate::gate::refuse_throttled(s),
        Err(crate::gate::AuthError::Unavailable(e)) => return ApiError(e).into_response(),
    };
    let subject = state.gate.subject(&caller).await;
    let path = req.uri().path().to_owned();
    let Some((name, tag)) = path
        .strip_prefix("/api/v1/repositories/")
        .and_then(|p| p.strip_suffix("/rollback"))
        .and_then(|p| p.rsplit_once("/tags/"))
    else {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    };
    if !state.gate.allows(&subject, name, auth::Action::Push) {
        if !state.gate.allows(&subject, name, auth::Action::Pull) {
            return ApiError(storage::Error::name_unknown(name)).into_response();
        }
        return crate::gate::denied(Some(&format!("repository:{name}:push")));
    }
    let bytes = match axum::body::to_bytes(req.into_body(), 4096).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(ErrorCode::Unsupported, format!("request body: {e}"))
                .into_response()
        }
    };
    let body: RollbackBody = if bytes.is_empty() {
        RollbackBody::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => {
                return ApiError::new(
                    ErrorCode::Unsupported,
                    format!("expected {{\"to\": \"<digest>\"}} or {{\"steps\": N}}: {e}"),
                )
                .into_response()
            }
        }
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
    match state.registry.rollback_tag(name, tag, target).await {
        Ok((from, to)) => {
            tracing::info!(repository = name, tag, from = from.as_deref(), to = %to, user = caller.user().as_deref(), "tag rolled back");
            Json(serde_json::json!({ "name": name, "tag": tag, "from": from, "to": to }))
                .into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}
