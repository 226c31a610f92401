//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use super::{content_length, empty, etag_matches, header_str, DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use crate::http::error::{ApiError, ApiResult};
use crate::proxy::Proxy;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use storage::{ErrorCode, Registry};

pub async fn get(
    reg: &Registry,
    proxy: &Proxy,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult {
    let m = match proxy.upstream_of(name) {
        Some(up) => proxy.manifest(reg, &up, name, reference).await?,
        None => reg.manifest_shared(name, reference).await?,
    };
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
        // A pull, for lifecycle policies' `sinceImagePulled`.
        reg.note_pull(name, &m.digest);
        Body::from(bytes::Bytes::copy_from_slice(&m.content))
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type.as_str())
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
    // Refused before a byte of the body is read; the rest is read and
    // discarded after the answer, within bounds (`crate::http::linger`).
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = read_limited(body, limit).await?;
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

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("manifest exceeds the limit of {limit} bytes"),
    )
}

/// Read a manifest body of at most `limit` bytes; reading stops at the
/// first byte past it (a body without `Content-Length` cannot be refused
/// sooner).
async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::ManifestInvalid,
                format!("reading manifest body: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

pub async fn delete(reg: &Registry, name: &str, reference: &str) -> ApiResult {
    reg.delete_manifest(name, reference).await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
