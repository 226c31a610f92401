//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use super::{empty, etag_matches, header_str, DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use storage::{ErrorCode, Registry};

pub async fn get(
    reg: &Registry,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult {
    let m = reg.manifest_shared(name, reference).await?;
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

/// Read a manifest body of at most `limit` bytes. An oversized body is
/// still read (up to a cap) and discarded, so the client, which is usually
/// still sending, receives the 413 instead of a reset connection.
async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    const DRAIN_CAP: usize = 64 << 20;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::ManifestInvalid,
                format!("reading manifest body: {e}"),
            )
        })?;
        seen += chunk.len();
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > limit + DRAIN_CAP {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("manifest exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(buf.freeze())
}

pub async fn delete(reg: &Registry, name: &str, reference: &str) -> ApiResult {
    reg.delete_manifest(name, reference).await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
