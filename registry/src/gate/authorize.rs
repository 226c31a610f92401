//! The one place requests are authorized: a middleware in front of every
//! route. It finds the route ([`crate::routes::endpoint`]), its
//! requirement ([`super::require`]), identifies the caller the way the
//! route accepts, decides ([`super::Access`]) and either answers the
//! refusal in the surface's own form or hands the request on with the
//! [`Access`] as an extension. Handlers never decide access themselves.

use super::decide::{Access, Subject};
use super::require::{requirement, Credentials, Need, Requirement};
use super::{AuthError, Caller, Gate};
use crate::api::AppState;
use crate::error::ApiError;
use crate::routes::{self, Endpoint, Surface};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
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
    let access = match identify(&gate, req.headers(), client, required.credentials).await {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let mut resp = if access.permits(&required.need) {
        req.extensions_mut().insert(access.clone());
        next.run(req).await
    } else {
        refuse(&gate, &access, &endpoint, &required, req.headers()).await
    };
    if let Some(u) = access.user() {
        resp.extensions_mut().insert(crate::access::User(u));
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

/// Who is asking, identified the way the route accepts.
async fn identify(
    gate: &Arc<Gate>,
    headers: &HeaderMap,
    client: SocketAddr,
    credentials: Credentials,
) -> Result<Access, Response> {
    if !gate.enabled() {
        return Ok(Access::open(gate.clone()));
    }
    let known = |caller, session| Access {
        gate: gate.clone(),
        caller,
        subject: Subject::NotOurs,
        session,
    };
    let session = match credentials {
        Credentials::Session | Credentials::SessionOrHeader => gate.web_session(headers).await,
        Credentials::Header | Credentials::None => None,
    };
    if let Some((id, session)) = session {
        return Ok(known(Caller::Known(id), Some(session)));
    }
    if matches!(credentials, Credentials::Session | Credentials::None) {
        return Ok(known(Caller::anonymous(), None));
    }
    let caller = match gate.caller(headers, client.ip()).await {
        Ok(c) => c,
        Err(AuthError::Invalid(m)) => {
            return Err(super::unauthorized(gate, headers, None, false, m))
        }
        Err(AuthError::Throttled(s)) => return Err(super::refuse_throttled(s)),
        Err(AuthError::Unavailable(e)) => return Err(ApiError(e).into_response()),
    };
    let subject = match &caller {
        Caller::Token { token } if gate.issuer().is_some() => {
            match gate.identity_of(&token.subject).await {
                Ok(Some(id)) => Subject::Now(id),
                Ok(None) => Subject::Gone,
                Err(_) => Subject::Unknown,
            }
        }
        _ => Subject::NotOurs,
    };
    Ok(Access {
        gate: gate.clone(),
        caller,
        subject,
        session: None,
    })
}

/// The refusal of `required` to `access`, in the surface's form.
async fn refuse(
    gate: &Gate,
    access: &Access,
    endpoint: &Endpoint<'_>,
    required: &Requirement,
    headers: &HeaderMap,
) -> Response {
    let scope = required.scope.as_deref();
    let unknown = |name: &str| ApiError(storage::Error::name_unknown(name)).into_response();
    match endpoint.surface() {
        // The token spec's answers: who are you? / ask for more / no.
        Surface::V2 => {
            if access.presented_nothing() || access.is_anonymous() {
                return super::unauthorized(gate, headers, scope, false, "authentication required");
            }
            if gate.subject_could(access.caller(), &required.need).await {
                return super::unauthorized(gate, headers, scope, true, "insufficient scope");
            }
            super::denied(scope)
        }
        Surface::Api => match &required.need {
            // A repository the caller may not read answers as one that does
            // not exist: its name must not leak.
            Need::On(name, auth::Action::Pull) => unknown(name),
            Need::On(name, _) if access.is_anonymous() => {
                let _ = name;
                super::unauthorized(gate, headers, scope, false, "authentication required")
            }
            Need::On(name, _) if !access.reads(name) => unknown(name),
            _ if access.is_anonymous() => {
                super::unauthorized(gate, headers, scope, false, "authentication required")
            }
            _ => super::denied(scope),
        },
        Surface::Ui => match &required.need {
            Need::On(name, _) => {
                crate::web::not_found(Some((access, storage::Error::name_unknown(name))))
            }
            _ => axum::http::StatusCode::FORBIDDEN.into_response(),
        },
        Surface::Other => axum::http::StatusCode::FORBIDDEN.into_response(),
    }
}
