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
