//! The distribution API under `/v2/`: one dispatcher that finds the route
//! and hands off to thin handlers, which translate HTTP to domain calls and
//! back.

pub mod blobs;
mod discovery;
mod manifests;
pub mod uploads;

use crate::gate::{Access, Need};
use crate::http::error::{ApiError, ApiResult};
use crate::routes::{self, Route};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{StreamExt, TryStreamExt};
use storage::blobstore::ByteStream;
use storage::ErrorCode;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// `GET /v2/`: 200 for whoever may use the registry (the gate answers
/// the others with 401 and the challenge that tells clients where to get
/// a token).
pub async fn base() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

pub async fn dispatch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    match route(state, &access, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(state: AppState, access: &Access, req: Request) -> ApiResult {
    let (parts, body) = req.into_parts();
    let path = crate::routes::v2_path(parts.uri.path()).unwrap_or_default();
    let query = crate::http::paging::parse_query(&parts.uri);
    let Some(route) = routes::parse(&path) else {
        return Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"));
    };
    handle(
        &state,
        access,
        &parts.method,
        &parts.headers,
        &query,
        route,
        body,
    )
    .await
}

async fn handle(
    state: &AppState,
    access: &Access,
    m: &Method,
    headers: &HeaderMap,
    query: &crate::http::paging::Query,
    route: Route<'_>,
    body: Body,
) -> ApiResult {
    let reg = &state.registry;
    let proxy = &state.proxy;
    // Cached repositories take no pushes (deletes evict, as in ECR).
    if matches!(*m, Method::PUT | Method::POST | Method::PATCH) {
        if let Some(name) = route.name() {
            proxy.check_writable(name)?;
        }
    }
    match route {
        Route::Manifest { name, reference } => match *m {
            Method::GET | Method::HEAD => {
                manifests::get(reg, proxy, name, reference, headers, m).await
            }
            // Tag changes record who made them (the tag history).
            Method::PUT => {
                let by = reg.acting_as(access.user());
                manifests::put(&by, name, reference, headers, body).await
            }
            Method::DELETE => {
                manifests::delete(&reg.acting_as(access.user()), name, reference).await
            }
            _ => unsupported(m),
        },
        Route::Blob { name, digest } => match *m {
            Method::GET | Method::HEAD => blobs::get(reg, proxy, name, digest, headers, m).await,
            Method::DELETE => blobs::delete(reg, name, digest).await,
            _ => unsupported(m),
        },
        Route::UploadStart { name } => match *m {
            Method::POST => {
                // A mount source must be one the caller may pull: for a
                // token, one it names (clients ask for `repository:FROM:pull`
                // with the push scope when they mount).
                let may_pull =
                    |from: &str| access.permits(&Need::On(from.to_owned(), auth::Action::Pull));
                uploads::start(reg, name, query, headers, body, &may_pull).await
            }
            _ => unsupported(m),
        },
        Route::Upload { name, id } => match *m {
            // HEAD as GET (RFC 9110 §9.3.2; the CNCF registry does too).
            Method::GET | Method::HEAD => uploads::status(reg, name, id).await,
            Method::PATCH => uploads::patch(reg, name, id, headers, body).await,
            Method::PUT => uploads::put(reg, name, id, query, headers, body).await,
            Method::DELETE => uploads::cancel(reg, name, id).await,
            _ => unsupported(m),
        },
        Route::Tags { name } => match *m {
            Method::GET => discovery::tags(reg, name, query).await,
            _ => unsupported(m),
        },
        Route::Catalog => match *m {
            Method::GET => {
                // The listing is what the caller may pull.
                let visible = |r: &str| access.reads(r);
                discovery::catalog(reg, query, &visible).await
            }
            _ => unsupported(m),
        },
        Route::Referrers { name, digest } => match *m {
            Method::GET => discovery::referrers(reg, name, digest, query).await,
            _ => unsupported(m),
        },
    }
}

fn unsupported(m: &Method) -> ApiResult {
    Err(ApiError::new(
        ErrorCode::Unsupported,
        format!("method {m} is not supported on this endpoint"),
    ))
}

/// A request body as the byte stream the storage layer consumes.
pub fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map_err(std::io::Error::other)
        .boxed()
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, &header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

/// Build an empty-bodied response with the given status and headers.
pub fn empty(status: StatusCode, headers: &[(HeaderName, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name.clone(), v);
        }
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// `true` when an `If-None-Match` header lists `etag` (or `*`).
pub fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    header_str(headers, &header::IF_NONE_MATCH).is_some_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag || t.trim_matches('"') == etag.trim_matches('"'))
    })
}
