//! Listings: tags, the catalog, and the referrers API.

use super::OCI_FILTERS_APPLIED;
use crate::http::error::ApiResult;
use crate::http::paging::{self, Page, Query};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use storage::manifest::OCI_INDEX;
use storage::{Digest, Registry};

/// The page and, when another follows, the RFC 5988 `Link` header to it.
fn paginate(page: &Page, items: Vec<String>, base: &str) -> (Vec<String>, Option<HeaderValue>) {
    let (items, next) = page.split(items, String::clone);
    let link = next.zip(page.n).map(|(last, n)| {
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
    let page = Page::parse(query, paging::TAGS)?;
    let tags = reg.tags(name, page.last(), page.fetch()).await?;
    let (tags, link) = paginate(&page, tags, &format!("/v2/{name}/tags/list"));
    Ok(with_link(
        serde_json::json!({ "name": name, "tags": tags }),
        link,
    ))
}

/// `_catalog`, listing only the repositories `visible` says the caller may
/// pull: pages are filled from as many database pages as that takes.
pub async fn catalog(
    reg: &Registry,
    query: &Query,
    visible: &(dyn Fn(&str) -> bool + Send + Sync),
) -> ApiResult {
    let page = Page::parse(query, paging::CATALOG)?;
    let want = page.fetch().unwrap_or(i64::MAX);
    let mut repos = Vec::new();
    let mut last = page.last.clone();
    loop {
        let batch = reg.catalog(last.as_deref(), Some(want.max(100))).await?;
        let done = (batch.len() as i64) < want.max(100);
        last = batch.last().cloned();
        repos.extend(batch.into_iter().filter(|r| visible(r)));
        if done || repos.len() as i64 >= want {
            break;
        }
    }
    repos.truncate(want as usize);
    let (repos, link) = paginate(&page, repos, "/v2/_catalog");
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
