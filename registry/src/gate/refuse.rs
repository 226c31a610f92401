//! The two refusals of the token spec: 401 with a `WWW-Authenticate`
//! challenge (who are you? / ask for a token with this scope), and 403
//! `DENIED` (you are known, and not allowed).

use super::Gate;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

fn body(code: &str, message: &str) -> String {
    serde_json::json!({ "errors": [{ "code": code, "message": message }] }).to_string()
}

/// 401 `UNAUTHORIZED` with the Bearer challenge for `scope` (and, for a
/// token that lacks it, `error="insufficient_scope"`).
pub fn unauthorized(
    gate: &Gate,
    headers: &HeaderMap,
    scope: Option<&str>,
    insufficient: bool,
    message: &str,
) -> Response {
    let mut challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        gate.realm(headers),
        gate.service()
    );
    if let Some(s) = scope {
        challenge.push_str(&format!(",scope=\"{s}\""));
    }
    if insufficient {
        challenge.push_str(",error=\"insufficient_scope\"");
    }
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        body("UNAUTHORIZED", message),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.extensions_mut()
        .insert(crate::access::OciCode("UNAUTHORIZED"));
    resp
}

/// 403 `DENIED`: Docker shows `denied: requested access to the resource is
/// denied`.
pub fn denied() -> Response {
    let mut resp = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body("DENIED", "requested access to the resource is denied"),
    )
        .into_response();
    resp.extensions_mut()
        .insert(crate::access::OciCode("DENIED"));
    resp
}

/// 429 after too many failed logins, with when to try again.
pub fn throttled(seconds: u64) -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::RETRY_AFTER, seconds.to_string()),
        ],
        body(
            "TOOMANYREQUESTS",
            "too many failed logins from this address or for this user; try again later",
        ),
    )
        .into_response();
    resp.extensions_mut()
        .insert(crate::access::OciCode("TOOMANYREQUESTS"));
    resp
}
