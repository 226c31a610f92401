//! `/api/v1`: JSON for repositories, tags, image details and blob usage.
//! Paths carry repository names with slashes, so they are parsed by hand.

use crate::error::{ApiError, ApiResult};
use crate::paging::{self, parse_query, Page};
use crate::present::split_reference;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;
use storage::{ErrorCode, Registry};

use crate::api::AppState;

/// Rows to fetch for a browse page (always bounded: [`paging::BROWSE`] has a default).
pub fn fetch(page: &Page) -> i64 {
    page.fetch().unwrap_or(i64::MAX)
}

/// Which repositories the caller may read (pull).
pub type Readable<'a> = &'a (dyn Fn(&str) -> bool + Send + Sync);

/// A repository the caller may not read is answered as if it did not
/// exist: its name must not leak.
fn readable_or_unknown(name: &str, readable: Readable<'_>) -> Result<(), ApiError> {
    if readable(name) {
        Ok(())
    } else {
        Err(ApiError(storage::Error::name_unknown(name)))
    }
}

pub async fn dispatch(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let caller = match state.gate.api_caller(req.headers(), client.ip()).await {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    // What a bearer token's subject may read, not only what it names.
    let subject = state.gate.subject(&caller).await;
    if req.uri().path() == "/api/v1/gc" {
        // What collections did: an administrator's view, like running one.
        let mut resp = if crate::gc_api::may_collect(&subject) {
            Json(state.registry.gc_totals()).into_response()
        } else if caller.is_anonymous() {
            crate::gate::unauthorized(
                &state.gate,
                req.headers(),
                None,
                false,
                "authentication required",
            )
        } else {
            crate::gate::denied(None)
        };
        if let Some(u) = caller.user() {
            resp.extensions_mut().insert(crate::access::User(u));
        }
        return resp;
    }
    let readable = |r: &str| state.gate.allows(&subject, r, auth::Action::Pull);
    let mut resp = match route(&state.registry, req.uri(), &readable).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(u) = caller.user() {
        resp.extensions_mut().insert(crate::access::User(u));
    }
    resp
}

/// A page of repository summaries the caller may read: filled from as
/// many database pages as that takes.
pub async fn repos_page(
    reg: &Registry,
    filter: Option<&str>,
    page: &Page,
    readable: Readable<'_>,
) -> Result<(Vec<storage::metadata::RepoSummary>, Option<String>), ApiError> {
    let want = fetch(page);
    let mut out = Vec::new();
    let mut last = page.last.clone();
    loop {
        let batch = reg
            .repository_summaries(filter, last.as_deref(), want.max(100))
            .await?;
        let done = (batch.len() as i64) < want.max(100);
        last = batch.last().map(|r| r.name.clone());
        out.extend(batch.into_iter().filter(|r| readable(&r.name)));
        if done || out.len() as i64 >= want {
            break;
        }
    }
    out.truncate(want as usize);
    Ok(page.split(out, |r| r.name.clone()))
}

/// A page of a readable repository's tags.
pub async fn tags_page(
    reg: &Registry,
    name: &str,
    page: &Page,
    readable: Readable<'_>,
) -> Result<(Vec<storage::inspect::TagSummary>, Option<String>), ApiError> {
    readable_or_unknown(name, readable)?;
    let tags = reg.tag_summaries(name, page.last(), fetch(page)).await?;
    Ok(page.split(tags, |t| t.tag.clone()))
}

/// A blob and the readable images that use it (unknown if none is).
pub async fn blob(
    reg: &Registry,
    digest: &storage::Digest,
    readable: Readable<'_>,
) -> Result<storage::inspect::BlobDetail, ApiError> {
    let mut detail = reg.blob_detail(digest).await?;
    detail.used_by.retain(|u| readable(&u.repository));
    if detail.used_by.is_empty() {
        return Err(ApiError(storage::Error::blob_unknown(digest)));
    }
    Ok(detail)
}

/// The image list, optionally narrowed to one platform (`linux/arm64`
/// matches `linux/arm64/v8`).
pub async fn image(
    reg: &Registry,
    reference: &str,
    platform: Option<&str>,
    readable: Readable<'_>,
) -> Result<storage::inspect::ImageDetail, ApiError> {
    let (name, reference) = split_reference(reference);
    readable_or_unknown(name, readable)?;
    let mut detail = reg.image_detail(name, reference).await?;
    // "Used by" names other repositories: only readable ones.
    for img in &mut detail.images {
        for layer in &mut img.layers {
            layer.used_by.retain(|u| readable(&u.repository));
        }
    }
    if let Some(p) = platform {
        detail
            .images
            .retain(|i| i.platform == p || i.platform.starts_with(&format!("{p}/")));
    }
    Ok(detail)
}

/// Usage of the namespaces with a quota the caller may read all of.
pub async fn namespaces(
    reg: &Registry,
    readable: Readable<'_>,
) -> Result<Vec<storage::NamespaceUsage>, ApiError> {
    let mut usage = reg.quota_usage().await?;
    // Whoever may pull any repository of the namespace (`ns/**`).
    usage.retain(|u| readable(&format!("{}/_", u.namespace)));
    Ok(usage)
}

async fn route(reg: &Registry, uri: &Uri, readable: Readable<'_>) -> ApiResult {
    let query = parse_query(uri);
    let page = Page::parse(&query, paging::BROWSE)?;
    let path = uri
        .path()
        .strip_prefix("/api/v1/")
        .unwrap_or_default()
        .to_owned();
    if path == "namespaces" {
        let usage = namespaces(reg, readable).await?;
        return Ok(Json(serde_json::json!({ "namespaces": usage })).into_response());
    }
    if path == "repositories" {
        let filter = query.get("q").map(String::as_str).filter(|q| !q.is_empty());
        let (repos, next) = repos_page(reg, filter, &page, readable).await?;
        return Ok(
            Json(serde_json::json!({ "repositories": repos, "next": next })).into_response(),
        );
    }
    if let Some(name) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/lifecycle"))
    {
        if !readable(name) {
            return Err(storage::Error::name_unknown(name).into());
        }
        return Ok(crate::lifecycle_api::get(reg, name).await);
    }
    if let Some(name) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/immutability"))
    {
        if !readable(name) {
            return Err(storage::Error::name_unknown(name).into());
        }
        let setting = reg.immutability(name).await?;
        return Ok(
            Json(serde_json::json!({ "name": name, "immutability": setting })).into_response(),
        );
    }
    if let Some((name, tag)) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/history"))
        .and_then(|p| p.rsplit_once("/tags/"))
    {
        // Unreadable is unknown: no name leaks through the history.
        if !readable(name) {
            return Err(storage::Error::name_unknown(name).into());
        }
        let limit = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(100);
        let changes = reg.tag_history(name, tag, limit).await?;
        return Ok(
            Json(serde_json::json!({ "name": name, "tag": tag, "changes": changes }))
                .into_response(),
        );
    }
    if let Some(name) = path
        .strip_prefix("repositories/")
        .and_then(|p| p.strip_suffix("/tags"))
    {
        let (tags, next) = tags_page(reg, name, &page, readable).await?;
        return Ok(
            Json(serde_json::json!({ "name": name, "tags": tags, "next": next })).into_response(),
        );
    }
    if let Some(reference) = path.strip_prefix("images/") {
        let platform = query.get("platform").map(String::as_str);
        let detail = image(reg, reference, platform, readable).await?;
        return Ok(Json(detail).into_response());
    }
    if let Some(digest) = path.strip_prefix("blobs/") {
        let digest: storage::Digest = digest.parse()?;
        return Ok(Json(blob(reg, &digest, readable).await?).into_response());
    }
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}
