//! The two refusals of the token spec: 401 with a `WWW-Authenticate`
//! challenge (who are you? / ask for a token with this scope), and 403
//! `DENIED` (you are known, and not allowed).

use super::Gate;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The error body; `detail` says what access was needed, as the CNCF
/// registry does (and Docker prints the message only when a detail is
/// there: `unauthorized: authentication required`).
fn body(code: &str, message: &str, scope: Option<&str>) -> String {
    let mut e = serde_json::json!({ "code": code, "message": message });
    if let Some(scope) = scope {
        e["detail"] = detail(scope);
    }
    serde_json::json!({ "errors": [e] }).to_string()
}

/// `repository:team/app:pull,push` as `[{Type, Name, Action}, ...]`.
fn detail(scope: &str) -> serde_json::Value {
    let mut parts = scope.splitn(2, ':');
    let kind = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    let (name, actions) = rest.rsplit_once(':').unwrap_or((rest, ""));
    serde_json::Value::Array(
        actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| serde_json::json!({ "Type": kind, "Name": name, "Action": a }))
            .collect(),
    )
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
    crate::observe::metrics::auth_failure(if insufficient {
        "insufficient_scope"
    } else if headers.contains_key(header::AUTHORIZATION) {
        "invalid_credentials"
    } else {
        "no_credentials"
    });
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        body("UNAUTHORIZED", message, scope),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.extensions_mut()
        .insert(crate::observe::access::OciCode("UNAUTHORIZED"));
    resp
}

/// 403 `DENIED`: Docker shows `denied: requested access to the resource is
/// denied`.
pub fn denied(scope: Option<&str>) -> Response {
    crate::observe::metrics::auth_failure("denied");
    let mut resp = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body(
            "DENIED",
            "requested access to the resource is denied",
            scope,
        ),
    )
        .into_response();
    resp.extensions_mut()
        .insert(crate::observe::access::OciCode("DENIED"));
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
            None,
        ),
    )
        .into_response();
    resp.extensions_mut()
        .insert(crate::observe::access::OciCode("TOOMANYREQUESTS"));
    resp
}
