//! Listings: tags, the catalog, and the referrers API.

use super::{Query, OCI_FILTERS_APPLIED};
use crate::error::{ApiError, ApiResult};
use crate::inspect_api::split_page;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use storage::manifest::OCI_INDEX;
use storage::{Digest, ErrorCode, Registry};

/// Catalog pages are capped so one request cannot dump 100k names at once.
const MAX_CATALOG_PAGE: i64 = 1000;

fn page_size(query: &Query) -> Result<Option<i64>, ApiError> {
    match query.get("n") {
        None => Ok(None),
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PaginationInvalid,
                    format!("n={n:?} is not a valid page size"),
                )
            }),
    }
}

/// Fetch one more than asked to learn whether a next page exists, and add
/// the RFC 5988 `Link` header when it does.
fn paginate(items: Vec<String>, n: Option<i64>, base: &str) -> (Vec<String>, Option<HeaderValue>) {
    let Some(n) = n else { return (items, None) };
    let (items, next) = split_page(items, n, String::clone);
    let link = next.map(|last| {
        let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
        format!("<{base}?n={n}&last={last}>; rel=\"next\"")
    });
    (items, link.and_then(|l| HeaderValue::from_str(&l).ok()))
}

fn with_link(body: serde_json::Value, link: Option<HeaderValue>) -> Response {
    let mut resp = Json(body).into_response();
    if let Some(link) = link {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp
}

pub async fn tags(reg: &Registry, name: &str, query: &Query) -> ApiResult {
    let n = page_size(query)?;
    let last = query.get("last").map(String::as_str);
    let tags = reg.tags(name, last, n.map(|n| n + 1)).await?;
    let (tags, link) = paginate(tags, n, &format!("/v2/{name}/tags/list"));
    Ok(with_link(
        serde_json::json!({ "name": name, "tags": tags }),
        link,
    ))
}

pub async fn catalog(reg: &Registry, query: &Query) -> ApiResult {
    let n = page_size(query)?
        .unwrap_or(MAX_CATALOG_PAGE)
        .min(MAX_CATALOG_PAGE);
    let last = query.get("last").map(String::as_str);
    let repos = reg.catalog(last, Some(n + 1)).await?;
    let (repos, link) = paginate(repos, Some(n), "/v2/_catalog");
    Ok(with_link(
        serde_json::json!({ "repositories": repos }),
        link,
    ))
}

pub async fn referrers(reg: &Registry, name: &str, digest: &str, query: &Query) -> ApiResult {
    let subject: Digest = digest.parse()?;
    let filter = query.get("artifactType").map(String::as_str);
    let found = reg.referrers(name, &subject, filter).await?;
    let manifests: Vec<serde_json::Value> = found
        .into_iter()
        .map(|r| {
            let mut d = serde_json::json!({
                "mediaType": r.media_type, "digest": r.digest, "size": r.size,
            });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = t.into();
            }
            if let Some(a) = r.annotations {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body =
        serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut resp = ([(header::CONTENT_TYPE, OCI_INDEX)], body.to_string()).into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
