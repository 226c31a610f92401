//! `/ui/login` and `/ui/logout`: a form that signs a user in with their
//! password (rate-limited like every login) and a session cookie; both
//! forms carry a CSRF token (before sign-in a double-submit cookie, after
//! it the session's own token).

use super::render;
use super::views::{LoginPage, Viewer};
use crate::gate::session::{cookie, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::gate::AuthError;
use crate::state::AppState;
use auth::password::{ct_eq, random_token};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;

/// How long the login form's CSRF cookie lives.
const LOGIN_FORM_TTL: u64 = 3600;

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The form, with a fresh CSRF token in a cookie and a hidden field.
fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user: &str,
    error: Option<String>,
) -> Response {
    let csrf = random_token(24);
    let page = LoginPage {
        viewer: Viewer {
            auth_on: true,
            ..Viewer::default()
        },
        csrf: csrf.clone(),
        error,
        user: user.to_owned(),
    };
    let mut resp = (status, render(&page)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        state
            .gate
            .cookie_header(headers, LOGIN_CSRF_COOKIE, &csrf, LOGIN_FORM_TTL),
    );
    resp
}

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.gate.enabled() {
        return Redirect::to("/ui/repos").into_response();
    }
    form_page(&state, &headers, StatusCode::OK, "", None)
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gate = &state.gate;
    if !gate.enabled() {
        return Redirect::to("/ui/repos").into_response();
    }
    let form = form(&body);
    let user = field(&form, "user");
    let sent = field(&form, "csrf");
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if sent.is_empty() || !ct_eq(sent.as_bytes(), expected.as_bytes()) {
        return form_page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            user,
            Some("The form expired or came from another site; please sign in again.".into()),
        );
    }
    match gate
        .check_credentials(user, field(&form, "password"), client.ip())
        .await
    {
        Ok(passed) if matches!(*passed.id, auth::Identity::User(_)) => {
            let Ok(set) = gate.sign_in(&headers, user, state.session_ttl).await else {
                return form_page(
                    &state,
                    &headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    user,
                    Some("The accounts database is busy; try again.".into()),
                );
            };
            let mut resp = Redirect::to("/ui/repos").into_response();
            resp.headers_mut().append(header::SET_COOKIE, set);
            resp.headers_mut().append(
                header::SET_COOKIE,
                gate.cookie_header(&headers, LOGIN_CSRF_COOKIE, "", 0),
            );
            resp.extensions_mut()
                .insert(crate::observe::access::User(user.to_owned()));
            resp
        }
        // Robots sign in with docker, not with a browser.
        Ok(_) | Err(AuthError::Invalid(_)) => form_page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            user,
            Some("Incorrect user name or password.".into()),
        ),
        Err(AuthError::Throttled(s)) => {
            let mut resp = form_page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                user,
                Some(format!(
                    "Too many failed sign-ins; try again in {s} seconds."
                )),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, s.to_string().parse().expect("number"));
            resp
        }
        Err(AuthError::Unavailable(_)) => {
            let mut resp = form_page(
                &state,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                user,
                Some("The server is busy; try again in a moment.".into()),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            resp
        }
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let gate = &state.gate;
    if let Some((_, session)) = gate.web_session(&headers).await {
        let form = form(&body);
        if !ct_eq(field(&form, "csrf").as_bytes(), session.csrf.as_bytes()) {
            return (StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
        }
        let _ = gate
            .registry()
            .accounts()
            .delete_session(&session.id_hash)
            .await;
    }
    let mut resp = Redirect::to("/ui/repos").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        gate.cookie_header(&headers, SESSION_COOKIE, "", 0),
    );
    resp
}
