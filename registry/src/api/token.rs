//! The token server of the Docker token spec: `GET /token` (anonymous, or
//! with Basic credentials; `offline_token=true` adds a refresh token),
//! `POST /token` with the OAuth2 form (`grant_type=password` and
//! `grant_type=refresh_token`, what `docker login` uses to store an identity
//! token), and the public keys at `/token/jwks.json`.

use crate::gate::{basic_pair, refuse_throttled as throttled, AuthError, Gate, Passed};
use crate::state::AppState;
use auth::scope::{format_scopes, parse_scopes};
use auth::token::IssuedToken;
use auth::Identity;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"registry\""),
        );
    }
    resp.extensions_mut()
        .insert(crate::observe::access::OciCode(code));
    resp
}

fn auth_error(e: AuthError) -> Response {
    match e {
        AuthError::Invalid(m) => error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m),
        AuthError::Throttled(s) => throttled(s),
        AuthError::Unavailable(e) => crate::http::error::ApiError(e).into_response(),
    }
}

/// The request's parameters (query string or form), repeated keys kept.
fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The token for `who`, granting what they may of `scopes`; `refresh` adds
/// a refresh token (bound to the account's credential generation). `oauth`:
/// the OAuth2 answer's field names.
fn answer(
    gate: &Gate,
    passed: &Passed,
    pairs: &[(String, String)],
    refresh: bool,
    oauth: bool,
) -> Response {
    let who = &*passed.id;
    let Some(issuer) = gate.issuer() else {
        return error(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "tokens are issued by an external token server",
        );
    };
    if let Some(service) = param(pairs, "service") {
        if service != gate.service() {
            return error(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                &format!("unknown service {service:?}; this is {:?}", gate.service()),
            );
        }
    }
    let requested = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str());
    let requested = match parse_scopes(requested) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                &format!("invalid scope: {e}"),
            )
        }
    };
    let granted = gate.policy().grant(who, &requested);
    let now = auth::now_unix();
    let Ok(access) = issuer.issue_access(who, &granted, now) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "could not sign a token",
        );
    };
    // An ECR login (no credential generation) gets none: its password
    // expires, and a refresh token would outlive it.
    let refresh_token = (refresh && !passed.generation.is_empty())
        .then(|| issuer.issue_refresh(who, &passed.generation, now).ok())
        .flatten();
    let mut body = body(&access, oauth);
    if let Some(r) = refresh_token {
        body["refresh_token"] = r.token.into();
    }
    if oauth {
        body["scope"] = format_scopes(&granted).into();
    }
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response();
    if let Some(user) = Some(who.subject_claim()).filter(|s| !s.is_empty()) {
        resp.extensions_mut()
            .insert(crate::observe::access::User(user));
    }
    resp
}

fn body(t: &IssuedToken, oauth: bool) -> serde_json::Value {
    let mut b = serde_json::json!({
        "access_token": t.token,
        "expires_in": t.expires_in(),
        "issued_at": t.issued_at_rfc3339(),
    });
    if !oauth {
        b["token"] = t.token.clone().into();
    }
    b
}

/// `GET /token?service=&scope=&scope=&offline_token=`.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let gate = &state.gate;
    let pairs = pairs(uri.query().unwrap_or_default().as_bytes());
    let who = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => Passed {
            id: Arc::new(Identity::Anonymous),
            generation: "".into(),
        },
        Some(v) => {
            let Some((user, secret)) = v
                .strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
                .and_then(|b| basic_pair(b.trim()))
            else {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "the token endpoint takes Basic credentials",
                );
            };
            match gate.check_credentials(&user, &secret, client.ip()).await {
                Ok(id) => id,
                Err(e) => return auth_error(e),
            }
        }
    };
    let offline = param(&pairs, "offline_token") == Some("true");
    answer(
        gate,
        &who,
        &pairs,
        offline && !matches!(*who.id, Identity::Anonymous),
        false,
    )
}

/// `POST /token`, `application/x-www-form-urlencoded` (OAuth2).
pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let gate = &state.gate;
    let pairs = pairs(&body);
    let offline = param(&pairs, "access_type") == Some("offline");
    match param(&pairs, "grant_type") {
        Some("password") => {
            let (Some(user), Some(password)) =
                (param(&pairs, "username"), param(&pairs, "password"))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    "grant_type=password needs username and password",
                );
            };
            match gate.check_credentials(user, password, client.ip()).await {
                Ok(who) => answer(gate, &who, &pairs, offline, true),
                Err(e) => auth_error(e),
            }
        }
        Some("refresh_token") => {
            let Some(token) = param(&pairs, "refresh_token") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    "grant_type=refresh_token needs refresh_token",
                );
            };
            match gate.refreshed(token).await {
                Ok(who) => answer(gate, &who, &pairs, true, true),
                Err(AuthError::Invalid(m)) => {
                    gate.login_failed(client.ip(), None);
                    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m)
                }
                Err(e) => auth_error(e),
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "grant_type must be password or refresh_token",
        ),
    }
}

/// `GET /token/jwks.json`: the public keys that verify our tokens.
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.gate.issuer() {
        Some(issuer) => (
            [(header::CONTENT_TYPE, "application/json")],
            issuer.verifier().keys().jwks().to_string(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "no token server here (authentication is off or external)",
        ),
    }
}
