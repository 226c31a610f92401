//! `/api/v1`: JSON for repositories, tags, image details and blob usage.
//! Paths carry repository names with slashes, so they are parsed by hand.

use crate::error::{ApiError, ApiResult};
use crate::present::split_reference;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use storage::{ErrorCode, Registry};

use crate::api::AppState;

pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 1000;

pub fn page_size(query: &HashMap<String, String>) -> Result<i64, ApiError> {
    match query.get("n") {
        None => Ok(DEFAULT_PAGE),
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| n.min(MAX_PAGE))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PaginationInvalid,
                    format!("n={n:?} is not a valid page size"),
                )
            }),
    }
}

pub fn parse_query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Fetch `n + 1` to know whether a next page exists; return the page and the
/// cursor for it.
pub fn split_page<T>(
    mut items: Vec<T>,
    n: i64,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() as i64 > n {
        items.truncate(n as usize);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    match route(&state.registry, req.uri()).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The image list, optionally narrowed to one platform (`linux/arm64`
/// matches `linux/arm64/v8`).
pub async fn image(
    reg: &Registry,
    reference: &str,
    platform: Option<&str>,
) -> Result<storage::inspect::ImageDetail, ApiError> {
    let (name, reference) = split_reference(reference);
    let mut detail = reg.image_detail(name, reference).await?;
    if let Some(p) = platform {
        detail
            .images
            .retain(|i| i.platform == p || i.platform.starts_with(&format!("{p}/")));
    }
    Ok(detail)
}

async fn route(reg: &Registry, uri: &Uri) -> ApiResult {
    let query = parse_query(uri);
    let path = uri
        .path()
        .strip_prefix("/api/v1/")
        .unwrap_or_default()
        .to_owned();
    let last = query.get("last").map(String::as_str);
    if path == "repositories" {
        let n = page_size(&query)?;
        let filter = query.get("q").map(String::as_str).filter(|q| !q.is_empty());
        let repos = reg.repository_summaries(filter, last, n + 1).await?;
        let (repos, next) = split_page(repos, n, |r| r.name.clone());
        return Ok(
            Json(serde_json::json!({ "repositories": repos, "next": next })).into_response(),
        );
    }
    if let Some(name) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/tags"))
    {
        let n = page_size(&query)?;
        let tags = reg.tag_summaries(name, last, n + 1).await?;
        let (tags, next) = split_page(tags, n, |t| t.tag.clone());
        return Ok(
            Json(serde_json::json!({ "name": name, "tags": tags, "next": next })).into_response(),
        );
    }
    if let Some(reference) = path.strip_prefix("images/") {
        let detail = image(reg, reference, query.get("platform").map(String::as_str)).await?;
        return Ok(Json(detail).into_response());
    }
    if let Some(digest) = path.strip_prefix("blobs/") {
        let digest: storage::Digest = digest.parse()?;
        return Ok(Json(reg.blob_detail(&digest).await?).into_response());
    }
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}
