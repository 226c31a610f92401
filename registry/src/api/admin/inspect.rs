//! `/api/v1` reads: JSON for repositories, tags, image details, blob usage,
//! settings and collections. Routes come from [`crate::routes`]; the gate
//! has checked the caller may read what a route names, and listings show
//! only what the caller may read.

use crate::gate::Access;
use crate::http::error::{ApiError, ApiResult};
use crate::http::paging::{self, parse_query, Page};
use crate::present::split_reference;
use crate::routes::{Api, Endpoint};
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use storage::{ErrorCode, Registry};

use crate::state::AppState;

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

/// `GET /api/v1/...` (the gate has let the request through).
pub async fn dispatch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    let readable = |r: &str| access.reads(r);
    let endpoint = crate::routes::endpoint(req.uri().path());
    let Endpoint::Api(api) = endpoint else {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    };
    match route(&state, &access, api, req.uri(), &readable).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
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
    access: &Access,
) -> Result<Vec<storage::NamespaceUsage>, ApiError> {
    let mut usage = reg.quota_usage().await?;
    usage.retain(|u| access.reads_all_of(&u.namespace));
    Ok(usage)
}

async fn route(
    state: &AppState,
    access: &Access,
    api: Api<'_>,
    uri: &Uri,
    readable: Readable<'_>,
) -> ApiResult {
    let reg = &state.registry;
    let query = parse_query(uri);
    let page = Page::parse(&query, paging::BROWSE)?;
    match api {
        Api::Gc => Ok(Json(reg.gc_totals()).into_response()),
        Api::Namespaces => {
            let usage = namespaces(reg, access).await?;
            Ok(Json(serde_json::json!({ "namespaces": usage })).into_response())
        }
        Api::Repositories => {
            let filter = query.get("q").map(String::as_str).filter(|q| !q.is_empty());
            let (repos, next) = repos_page(reg, filter, &page, readable).await?;
            Ok(Json(serde_json::json!({ "repositories": repos, "next": next })).into_response())
        }
        Api::Lifecycle { name } => Ok(crate::api::admin::lifecycle::get(reg, name).await),
        Api::Immutability { name } => {
            let setting = reg.immutability(name).await?;
            Ok(Json(serde_json::json!({ "name": name, "immutability": setting })).into_response())
        }
        Api::History { name, tag } => {
            let limit = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(100);
            let changes = reg.tag_history(name, tag, limit).await?;
            Ok(
                Json(serde_json::json!({ "name": name, "tag": tag, "changes": changes }))
                    .into_response(),
            )
        }
        Api::Tags { name } => {
            let (tags, next) = tags_page(reg, name, &page, readable).await?;
            Ok(
                Json(serde_json::json!({ "name": name, "tags": tags, "next": next }))
                    .into_response(),
            )
        }
        Api::Image { full, .. } => {
            let platform = query.get("platform").map(String::as_str);
            let detail = image(reg, full, platform, readable).await?;
            Ok(Json(detail).into_response())
        }
        Api::Blob { digest } => {
            let digest: storage::Digest = digest.parse()?;
            Ok(Json(blob(reg, &digest, readable).await?).into_response())
        }
        Api::LayerFiles { name, digest } => {
            crate::api::admin::contents::layer_files(reg, name, digest, &query).await
        }
        Api::ImageContents {
            name,
            reference,
            view,
            ..
        } => crate::api::admin::contents::image(reg, access, (name, reference), view, &query).await,
        // Writes reach `write_api`; their GETs are not routes (the gate
        // answers 405 first).
        Api::Rollback { .. } | Api::LifecyclePreview { .. } | Api::LifecycleRun { .. } => {
            Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
        }
    }
}
