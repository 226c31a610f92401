//! `/api/v1`: JSON for repositories, tags, image details and blob usage.
//! Paths carry repository names with slashes, so they are parsed by hand.

use crate::error::{ApiError, ApiResult};
use crate::paging::{self, parse_query, Page};
use crate::present::split_reference;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use storage::{ErrorCode, Registry};

use crate::api::AppState;

/// Rows to fetch for a browse page (always bounded: [`paging::BROWSE`] has a default).
pub fn fetch(page: &Page) -> i64 {
    page.fetch().unwrap_or(i64::MAX)
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
    let page = Page::parse(&query, paging::BROWSE)?;
    let path = uri
        .path()
        .strip_prefix("/api/v1/")
        .unwrap_or_default()
        .to_owned();
    if path == "repositories" {
        let filter = query.get("q").map(String::as_str).filter(|q| !q.is_empty());
        let repos = reg
            .repository_summaries(filter, page.last(), fetch(&page))
            .await?;
        let (repos, next) = page.split(repos, |r| r.name.clone());
        return Ok(
            Json(serde_json::json!({ "repositories": repos, "next": next })).into_response(),
        );
    }
    if let Some(name) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/tags"))
    {
        let tags = reg.tag_summaries(name, page.last(), fetch(&page)).await?;
        let (tags, next) = page.split(tags, |t| t.tag.clone());
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
