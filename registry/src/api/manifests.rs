//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use super::{content_length, empty, etag_matches, header_str, DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use storage::{ErrorCode, Registry};

pub async fn get(
    reg: &Registry,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult {
    let m = reg.manifest(name, reference).await?;
    let etag = format!("\"{}\"", m.digest);
    if etag_matches(headers, &etag) {
        return Ok(empty(
            StatusCode::NOT_MODIFIED,
            &[
                (DOCKER_CONTENT_DIGEST, m.digest.to_string()),
                (header::ETAG, etag),
            ],
        ));
    }
    let len = m.content.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(m.content)
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header(DOCKER_CONTENT_DIGEST, m.digest.to_string())
        .header(header::ETAG, etag)
        .body(body)
        .expect("valid response"))
}

pub async fn put(
    reg: &Registry,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let limit = reg.policy().max_manifest_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("manifest exceeds the limit of {limit} bytes"),
        )
    };
    if content_length(headers).is_some_and(|l| l > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let content_type = header_str(headers, &header::CONTENT_TYPE);
    let pushed = reg
        .put_manifest(name, reference, content_type, &bytes)
        .await?;
    let mut h = vec![
        (
            header::LOCATION,
            format!("/v2/{name}/manifests/{}", pushed.digest),
        ),
        (DOCKER_CONTENT_DIGEST, pushed.digest.to_string()),
    ];
    if let Some(subject) = pushed.subject {
        h.push((OCI_SUBJECT, subject.to_string()));
    }
    Ok(empty(StatusCode::CREATED, &h))
}

pub async fn delete(reg: &Registry, name: &str, reference: &str) -> ApiResult {
    reg.delete_manifest(name, reference).await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
