//! The one place requests are authorized: a middleware in front of every
//! route. It finds the route ([`crate::routes::endpoint`]), its
//! requirement ([`crate::gate::require`]), identifies the caller the way
//! the route accepts, decides ([`crate::gate::Access`]) and either answers
//! the refusal in the surface's own form or hands the request on with the
//! `Access` as an extension. Handlers never decide access themselves.

use crate::gate::{self, requirement, Need};
use crate::http::error::ApiError;
use crate::routes::{self, Endpoint, Surface};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use storage::ErrorCode;

pub async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if *req.method() == Method::POST
        && path == state.ecr.path
        && req.headers().contains_key("x-amz-target")
    {
        return authorize_ecr(state, client, req, next).await;
    }
    let v2 = routes::v2_path(&path);
    let endpoint = match &v2 {
        Some(rest) if !rest.is_empty() => {
            routes::parse(rest).map_or(Endpoint::Unknown(Surface::V2), Endpoint::V2)
        }
        _ => routes::endpoint(&path),
    };
    let Some(required) = requirement(req.method(), &endpoint) else {
        return unrouted(&endpoint, req.method());
    };
    // A name outside the grammar is a bad request whoever asks: answering
    // it before authentication spares clients a challenge for a scope the
    // token server must refuse.
    if let (Surface::V2, Some(name)) = (endpoint.surface(), endpoint.repository()) {
        if let Err(e) = storage::names::validate_name(name) {
            return ApiError(e).into_response();
        }
    }
    let gate = state.gate.clone();
    let access = match gate::identify(&gate, req.headers(), client, required.credentials).await {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let mut resp = if access.permits(&required.need) {
        req.extensions_mut().insert(access.clone());
        next.run(req).await
    } else {
        match gate::refusal(&gate, &access, &endpoint, &required, req.headers()).await {
            Some(refused) => refused,
            // A page a visitor may not see answers as one that does not
            // exist: its name must not leak.
            None => match &required.need {
                Need::On(name, _) => {
                    crate::web::not_found(Some((&access, storage::Error::name_unknown(name))))
                }
                _ => axum::http::StatusCode::FORBIDDEN.into_response(),
            },
        }
    };
    if let Some(u) = access.user() {
        resp.extensions_mut()
            .insert(crate::observe::access::User(u));
    }
    resp
}

/// A route that does not take this method, or no route at all: the
/// surface's own answer.
fn unrouted(endpoint: &Endpoint<'_>, method: &Method) -> Response {
    let known = !matches!(endpoint, Endpoint::Unknown(_));
    match endpoint.surface() {
        Surface::V2 | Surface::Api if known => ApiError::new(
            ErrorCode::Unsupported,
            format!("method {method} is not supported on this endpoint"),
        )
        .into_response(),
        Surface::V2 | Surface::Api => {
            ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response()
        }
        Surface::Ui | Surface::Other if known => {
            axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response()
        }
        Surface::Ui => crate::web::not_found(None),
        Surface::Other => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The ECR API: the whole body read (bounded), the signature checked over
/// it, then the operation and the repository it names looked up in the
/// same table as every route ([`requirement`]); refusals in ECR's shape.
/// The handler gets the call the gate checked, and the parsed body.
async fn authorize_ecr(state: AppState, client: SocketAddr, req: Request, next: Next) -> Response {
    use crate::http::ecr_error::EcrError;
    // Unsigned, or signed for another service, region or time: refused
    // before the body is read.
    if let Err(refusal) = state.gate.sigv4_presented(req.headers()) {
        return refusal.into_response();
    }
    let (parts, body) = req.into_parts();
    let limit = state.ecr.max_request_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return EcrError::new(
            "LimitExceededException",
            format!("The request body is over {limit} bytes, or was not received whole"),
        )
        .into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let access = match state
        .gate
        .identify_sigv4(
            parts.method.as_str(),
            &path_and_query,
            &parts.headers,
            &bytes,
            client.ip(),
        )
        .await
    {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    let input: serde_json::Value = if bytes.is_empty() {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return EcrError::new("SerializationException", "The body is not a JSON object")
                    .into_response()
            }
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let call = routes::EcrCall::parse(target, &input);
    // The access line names the operation, its repository and the user,
    // whatever the answer.
    let route = crate::observe::access::RouteOverride {
        route: call.operation.unwrap_or("ecr:{unknown}"),
        repository: call.repository.clone(),
    };
    let user = access.user();
    let mut resp = decide_ecr(state, parts, access, call, input, next).await;
    if let Some(u) = user {
        resp.extensions_mut()
            .insert(crate::observe::access::User(u));
    }
    resp.extensions_mut().insert(route);
    resp
}

/// The access decision on a parsed ECR call, then its handler.
async fn decide_ecr(
    state: AppState,
    mut parts: axum::http::request::Parts,
    access: crate::gate::Access,
    call: routes::EcrCall,
    input: serde_json::Value,
    next: Next,
) -> Response {
    use crate::api::ecr::EcrRequest;
    use crate::http::ecr_error::EcrError;
    // A name outside the grammar is a bad request whoever asks (as on
    // `/v2/`): no rule could allow it, and "denied" would mislead.
    if let Some(name) = &call.repository {
        if storage::names::validate_name(name).is_err() {
            return EcrError::invalid(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''; value '{name}'"
            ))
            .into_response();
        }
    }
    let endpoint = Endpoint::Ecr(call.clone());
    let Some(required) = requirement(&parts.method, &endpoint) else {
        return EcrError::new("UnknownOperationException", "not an ECR request").into_response();
    };
    if !access.permits(&required.need) {
        let who = access.user().unwrap_or_else(|| "anonymous".into());
        let on = call.repository.as_deref().map_or_else(
            || {
                format!(
                    "arn:aws:ecr:{}:{}:*",
                    state.ecr.region, state.ecr.registry_id
                )
            },
            |r| state.ecr.repository_arn(r),
        );
        return EcrError::new(
            "AccessDeniedException",
            format!(
                "User: {who} is not authorized to perform: ecr:{} on resource: {on} because no [access] rule allows it",
                call.operation.unwrap_or("?")
            ),
        )
        .into_response();
    }
    let base_url = match &state.external_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = parts
                .headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .unwrap_or("localhost");
            let scheme = if state.gate.https(&parts.headers) {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}")
        }
    };
    parts.extensions.insert(access);
    parts.extensions.insert(std::sync::Arc::new(EcrRequest {
        call,
        input,
        base_url,
    }));
    next.run(Request::from_parts(parts, axum::body::Body::empty()))
        .await
}
