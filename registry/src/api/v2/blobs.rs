//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

use super::{empty, etag_matches, header_str, DOCKER_CONTENT_DIGEST};
use crate::http::error::ApiResult;
use crate::proxy::{BlobAnswer, Proxy};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use std::ops::Range;
use storage::{Digest, ErrorCode, Registry};

pub async fn get(
    reg: &Registry,
    proxy: &Proxy,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult {
    let digest: Digest = digest.parse()?;
    let blob = match (reg.blob(name, &digest).await, proxy.upstream_of(name)) {
        (Ok(blob), Some(_)) => {
            crate::proxy::count("blob", "hit");
            blob
        }
        (Ok(blob), None) => blob,
        (Err(e), Some(up)) if e.code == ErrorCode::BlobUnknown => {
            let head = method == Method::HEAD;
            let ranged = headers.contains_key(header::RANGE);
            match proxy.blob(reg, &up, name, &digest, head, ranged).await? {
                BlobAnswer::Stored(blob) => blob,
                BlobAnswer::Size(size) => return Ok(arriving(&digest, Some(size), Body::empty())),
                BlobAnswer::Arriving { size, body } => {
                    return Ok(arriving(&digest, size, Body::from_stream(body)))
                }
            }
        }
        (Err(e), _) => return Err(e.into()),
    };
    let size = blob.size;
    let etag = format!("\"{digest}\"");
    let common = [
        (DOCKER_CONTENT_DIGEST, digest.to_string()),
        (header::ETAG, etag.clone()),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        // Content-addressed bytes never change.
        (
            header::CACHE_CONTROL,
            "max-age=31536000, immutable".to_owned(),
        ),
    ];
    if etag_matches(headers, &etag) {
        return Ok(empty(StatusCode::NOT_MODIFIED, &common));
    }
    // A store that serves downloads itself (S3): the client fetches the
    // bytes there (Docker and containerd follow, `Range` included).
    if method == Method::GET {
        if let Some(url) = reg.blob_redirect(&digest, &blob).await? {
            let mut h = common.to_vec();
            h.push((header::LOCATION, url));
            return Ok(empty(StatusCode::TEMPORARY_REDIRECT, &h));
        }
    }
    let range = match header_str(headers, &header::RANGE).map(|r| parse_range(r, size)) {
        Some(Ok(r)) => r,
        Some(Err(Unsatisfiable)) => {
            // RFC 9110 §15.5.17: the size, and no body to misread.
            let mut resp = empty(StatusCode::RANGE_NOT_SATISFIABLE, &common);
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                format!("bytes */{size}").parse().expect("valid header"),
            );
            return Ok(resp);
        }
        None => None,
    };
    let (status, len) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, size),
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(reg.blob_bytes(&digest, &blob, range.clone()).await?)
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len);
    for (k, v) in common {
        builder = builder.header(k, v);
    }
    if let Some(r) = &range {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", r.start, r.end - 1),
        );
    }
    Ok(builder.body(body).expect("valid response"))
}

/// A blob the pull-through cache is fetching: its bytes as they arrive
/// (no range, no redirect: it is not stored yet).
fn arriving(digest: &Digest, size: Option<u64>, body: Body) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(DOCKER_CONTENT_DIGEST, digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""));
    if let Some(size) = size {
        builder = builder.header(header::CONTENT_LENGTH, size);
    }
    builder.body(body).expect("valid response")
}

pub async fn delete(reg: &Registry, name: &str, digest: &str) -> ApiResult {
    let digest: Digest = digest.parse()?;
    reg.delete_blob(name, &digest).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        &[(DOCKER_CONTENT_DIGEST, digest.to_string())],
    ))
}

/// A `Range` that lies wholly outside the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parse a single-range `Range` header against a blob of `size` bytes.
/// `Ok(None)`: serve the whole blob (absent, multi-range or malformed
/// headers are ignored, as RFC 9110 allows); `Err`: unsatisfiable (416).
pub fn parse_range(value: &str, size: u64) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        // Suffix range: the last N bytes.
        let Ok(n) = end.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(Unsatisfiable);
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(first) = start.parse::<u64>() else {
            return Ok(None);
        };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(l) if l >= first => l.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(Unsatisfiable);
        }
        first..last + 1
    };
    if range.start >= range.end {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=10-19", 100), Ok(Some(10..20)));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(parse_range("bytes=-5", 100), Ok(Some(95..100)));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some(50..100)));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=200-300", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=9-3", 100), Ok(None));
        assert_eq!(parse_range("bytes=0-", 0), Err(Unsatisfiable));
    }
}
