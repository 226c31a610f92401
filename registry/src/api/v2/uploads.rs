//! Blob uploads: `POST` (session, monolithic or mount), `PATCH` chunks,
//! `GET` status, `PUT` to finish, `DELETE` to cancel.

use super::{
    body_stream, content_length, empty, header_str, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::paging::Query;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use storage::{ChunkSpec, Digest, ErrorCode, Registry};

fn session_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// Distribution's convention: `0-<last byte>`, and `0-0` while empty.
fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn session_headers(name: &str, id: &str, size: u64) -> [(HeaderName, String); 3] {
    [
        (header::LOCATION, session_location(name, id)),
        (header::RANGE, range_header(size)),
        (DOCKER_UPLOAD_UUID, id.to_owned()),
    ]
}

fn created(name: &str, digest: &Digest) -> axum::response::Response {
    empty(
        StatusCode::CREATED,
        &[
            (header::LOCATION, format!("/v2/{name}/blobs/{digest}")),
            (DOCKER_CONTENT_DIGEST, digest.to_string()),
        ],
    )
}

fn digest_param(query: &Query) -> Result<Digest, ApiError> {
    let d = query.get("digest").ok_or_else(|| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required",
        )
    })?;
    Ok(d.parse()?)
}

/// The start and length of a `Content-Range: <start>-<end>` value (some
/// clients prefix `bytes ` or `bytes=`, some append `/<total>`); `None` when
/// malformed, reversed, or too long to count in 64 bits.
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let spec = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or_default();
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (
        start.trim().parse::<u64>().ok()?,
        end.trim().parse::<u64>().ok()?,
    );
    // `0-18446744073709551615` is well formed but its length does not fit.
    let len = end.checked_sub(start)?.checked_add(1)?;
    Some((start, len))
}

/// The chunk a request declares with `Content-Range` and `Content-Length`.
fn chunk_spec(headers: &HeaderMap) -> Result<ChunkSpec, ApiError> {
    let len = content_length(headers);
    let Some(value) = header_str(headers, &header::CONTENT_RANGE) else {
        return Ok(ChunkSpec { start: None, len });
    };
    match parse_content_range(value) {
        Some((start, range_len)) => {
            if len.is_some_and(|l| l != range_len) {
                return Err(ApiError::new(
                    ErrorCode::SizeInvalid,
                    format!("Content-Range {value} disagrees with Content-Length"),
                ));
            }
            Ok(ChunkSpec {
                start: Some(start),
                len: Some(range_len),
            })
        }
        None => Err(ApiError::new(
            ErrorCode::RangeInvalid,
            format!("malformed Content-Range {value:?}"),
        )),
    }
}

/// `POST /v2/<name>/blobs/uploads/`: a mount (`mount` with or without
/// `from`), a single-request upload (`digest`), or a new session. A mount
/// happens only from a repository the caller may pull (`may_pull`); else,
/// as the spec says, a session is opened instead (202).
pub async fn start(
    reg: &Registry,
    name: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    may_pull: &(dyn Fn(&str) -> bool + Send + Sync),
) -> ApiResult {
    if let Some(mount) = query.get("mount") {
        let digest: Digest = mount.parse()?;
        let sources = match query.get("from") {
            Some(from) => vec![from.clone()],
            // The spec's automatic mount: any repository the caller may
            // read that has the blob.
            None => reg.repos_with_blob(&digest).await?,
        };
        for from in sources.iter().filter(|f| f.as_str() != name && may_pull(f)) {
            if reg.mount(name, &digest, from).await? {
                return Ok(created(name, &digest));
            }
        }
        // Not mountable: fall back to a normal session, as the spec says.
    } else if query.contains_key("digest") {
        let digest = digest_param(query)?;
        reg.upload_monolithic(name, &digest, body_stream(body), content_length(headers))
            .await?;
        return Ok(created(name, &digest));
    }
    let id = reg.start_upload(name).await?;
    Ok(empty(StatusCode::ACCEPTED, &session_headers(name, &id, 0)))
}

pub async fn status(reg: &Registry, name: &str, id: &str) -> ApiResult {
    let size = reg.upload_status(name, id).await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        &session_headers(name, id, size),
    ))
}

pub async fn patch(
    reg: &Registry,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let spec = chunk_spec(headers)?;
    let _uploading = crate::observe::metrics::Uploading::start();
    match reg.upload_chunk(name, id, body_stream(body), spec).await {
        Ok(size) => Ok(empty(
            StatusCode::ACCEPTED,
            &session_headers(name, id, size),
        )),
        Err(e) if e.code == ErrorCode::RangeInvalid => {
            // Tell the client where the upload really stands.
            let size = reg.upload_status(name, id).await.unwrap_or(0);
            let mut resp = axum::response::IntoResponse::into_response(ApiError(e));
            for (k, v) in session_headers(name, id, size) {
                if let Ok(v) = v.parse() {
                    resp.headers_mut().insert(k, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn put(
    reg: &Registry,
    name: &str,
    id: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let digest = digest_param(query)?;
    let spec = chunk_spec(headers)?;
    let _uploading = crate::observe::metrics::Uploading::start();
    let has_body = spec.len != Some(0)
        && (spec.len.is_some() || headers.contains_key(header::TRANSFER_ENCODING));
    let last = has_body.then(|| (body_stream(body), spec));
    reg.finish_upload(name, id, &digest, last).await?;
    Ok(created(name, &digest))
}

pub async fn cancel(reg: &Registry, name: &str, id: &str) -> ApiResult {
    reg.cancel_upload(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-1023"), Some((0, 1024)));
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 10)));
        assert_eq!(parse_content_range("bytes=5-5"), Some((5, 1)));
        assert_eq!(parse_content_range("0-18446744073709551615"), None);
        assert_eq!(
            parse_content_range("1-18446744073709551615"),
            Some((1, u64::MAX))
        );
        assert_eq!(parse_content_range("9-3"), None);
        assert_eq!(parse_content_range("-3"), None);
        assert_eq!(parse_content_range("a-b"), None);
        assert_eq!(parse_content_range(""), None);
    }
}
