//! The gate at the edge of every request: who is asking, identified the
//! way the route accepts (a header, a web session), and the refusals of the
//! machine-facing surfaces in the forms their clients expect.

use super::decide::{Access, Subject};
use super::require::{Credentials, Need, Requirement};
use super::{AuthError, Caller, Gate};
use crate::http::error::ApiError;
use crate::routes::{Endpoint, Surface};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is asking, identified the way the route accepts.
pub async fn identify(
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
        access_key: None,
    };
    let session = match credentials {
        Credentials::Session | Credentials::SessionOrHeader => gate.web_session(headers).await,
        // SigV4 needs the body: `Gate::identify_sigv4`, not here.
        Credentials::Header | Credentials::None | Credentials::SigV4 => None,
    };
    if let Some((id, session)) = session {
        return Ok(known(Caller::Known(id), Some(session)));
    }
    if matches!(
        credentials,
        Credentials::Session | Credentials::None | Credentials::SigV4
    ) {
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
        access_key: None,
    })
}

/// The refusal of `required` to `access` on `/v2` or `/api/v1`; `None`
/// for the other surfaces, whose pages refuse in their own form.
pub async fn refusal(
    gate: &Gate,
    access: &Access,
    endpoint: &Endpoint<'_>,
    required: &Requirement,
    headers: &HeaderMap,
) -> Option<Response> {
    let scope = required.scope.as_deref();
    let unknown = |name: &str| ApiError(storage::Error::name_unknown(name)).into_response();
    Some(match endpoint.surface() {
        // The token spec's answers: who are you? / ask for more / no.
        Surface::V2 => {
            if access.presented_nothing() || access.is_anonymous() {
                return Some(super::unauthorized(
                    gate,
                    headers,
                    scope,
                    false,
                    "authentication required",
                ));
            }
            if gate.subject_could(access.caller(), &required.need).await {
                return Some(super::unauthorized(
                    gate,
                    headers,
                    scope,
                    true,
                    "insufficient scope",
                ));
            }
            super::denied(scope)
        }
        Surface::Api => match &required.need {
            // A repository the caller may not read answers as one that does
            // not exist: its name must not leak.
            Need::On(name, auth::Action::Pull) => unknown(name),
            Need::On(_, _) if access.is_anonymous() => {
                super::unauthorized(gate, headers, scope, false, "authentication required")
            }
            Need::On(name, _) if !access.reads(name) => unknown(name),
            _ if access.is_anonymous() => {
                super::unauthorized(gate, headers, scope, false, "authentication required")
            }
            _ => super::denied(scope),
        },
        Surface::Ui | Surface::Other => return None,
    })
}
