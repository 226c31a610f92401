//! `/api/v1` reads of what layers contain: a layer's files
//! (`repositories/{name}/layers/{digest}/files`), an image's stacked files,
//! what its layers wasted, and what changed from it to another image
//! (`images/{reference}/files|waste|diff`).
//!
//! A layer nobody asked about before is indexed first; a request waits up
//! to `wait` seconds (default 10, at most 30) and then gets `202` with how
//! far the indexing has got and `Retry-After`, so clients show progress
//! instead of holding a connection open for minutes.

use crate::gate::Access;
use crate::http::error::{ApiError, ApiResult};
use crate::http::paging::{self, Page, Query};
use crate::present::split_reference;
use crate::routes::Contents;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::time::Duration;
use storage::layers::{Pending, Row};
use storage::{ErrorCode, Indexing, Registry};

/// How long a request waits for an indexing by default, and at most.
const WAIT_DEFAULT: Duration = Duration::from_secs(10);
const WAIT_MAX: Duration = Duration::from_secs(30);
/// Directory levels a listing may go down (`depth`); the default is 1.
const DEPTH_MAX: usize = 64;

/// What a contents request asks: the directory, how deep, how long to
/// wait, and the page.
pub struct Ask {
    pub path: String,
    pub depth: usize,
    pub wait: Duration,
}

impl Ask {
    pub fn parse(query: &Query) -> Result<Ask, ApiError> {
        let bad = |what: &str| ApiError::new(ErrorCode::PaginationInvalid, what.to_owned());
        let depth = match query.get("depth") {
            None => 1,
            Some(d) => d
                .parse::<usize>()
                .ok()
                .filter(|d| (1..=DEPTH_MAX).contains(d))
                .ok_or_else(|| bad("depth: a number from 1 to 64"))?,
        };
        let wait = match query.get("wait") {
            None => WAIT_DEFAULT,
            Some(w) => Duration::from_secs_f64(
                w.parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| bad("wait: seconds"))?,
            )
            .min(WAIT_MAX),
        };
        Ok(Ask {
            path: query.get("path").cloned().unwrap_or_else(|| "/".into()),
            depth,
            wait,
        })
    }
}

/// `202 Accepted`: still indexing, with how far it got.
pub fn pending(p: Pending) -> axum::response::Response {
    (
        StatusCode::ACCEPTED,
        [(header::RETRY_AFTER, "1")],
        Json(serde_json::json!({
            "state": "indexing",
            "read": p.read,
            "size": p.size,
            "entries": p.entries,
        })),
    )
        .into_response()
}

/// `listing` (its rows taken out) as JSON with a page of `rows` and the
/// cursor of the next.
fn paged(listing: &impl serde::Serialize, rows: Vec<Row>, page: &Page) -> ApiResult {
    let (rows, next) = page_of(rows, page);
    let mut v = serde_json::to_value(listing).map_err(internal)?;
    v["rows"] = serde_json::to_value(rows).map_err(internal)?;
    v["next"] = next.into();
    Ok(Json(v).into_response())
}

/// A page of `rows` (by path, after `last`).
pub fn page_of(rows: Vec<Row>, page: &Page) -> (Vec<Row>, Option<String>) {
    let mut rows: Vec<Row> = match page.last() {
        Some(last) => rows
            .into_iter()
            .filter(|r| r.entry.path.as_str() > last)
            .collect(),
        None => rows,
    };
    if let Some(n) = page.fetch() {
        rows.truncate(n as usize);
    }
    page.split(rows, |r| r.entry.path.clone())
}

/// `repositories/{name}/layers/{digest}/files`.
pub async fn layer_files(reg: &Registry, name: &str, digest: &str, query: &Query) -> ApiResult {
    let ask = Ask::parse(query)?;
    let page = Page::parse(query, paging::BROWSE)?;
    let digest: storage::Digest = digest.parse()?;
    match reg
        .layer_files(name, &digest, &ask.path, ask.depth, ask.wait)
        .await?
    {
        Indexing::Pending(p) => Ok(pending(p)),
        Indexing::Ready(mut files) => {
            let rows = std::mem::take(&mut files.rows);
            paged(&files, rows, &page)
        }
    }
}

/// `images/{reference}/files|waste|diff`.
pub async fn image(
    reg: &Registry,
    access: &Access,
    (name, reference): (&str, &str),
    view: Contents,
    query: &Query,
) -> ApiResult {
    let ask = Ask::parse(query)?;
    let platform = query.get("platform").map(String::as_str);
    let image = reg.image_ref(name, reference, platform).await?;
    match view {
        Contents::Files => {
            let page = Page::parse(query, paging::BROWSE)?;
            match reg
                .image_files(image, &ask.path, ask.depth, ask.wait)
                .await?
            {
                Indexing::Pending(p) => Ok(pending(p)),
                Indexing::Ready(mut files) => {
                    let rows = std::mem::take(&mut files.rows);
                    paged(&files, rows, &page)
                }
            }
        }
        Contents::Waste => match reg.image_waste(image, ask.wait).await? {
            Indexing::Pending(p) => Ok(pending(p)),
            Indexing::Ready(w) => Ok(Json(w).into_response()),
        },
        Contents::Diff => {
            let to = query.get("to").ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PaginationInvalid,
                    "to: the image to compare with (name:tag or name@digest)",
                )
            })?;
            let (to_name, to_ref) = split_reference(to);
            // The other image may be in another repository: the caller
            // must be able to pull it too, or it does not exist for them.
            if !access.reads(to_name) {
                return Err(ApiError(storage::Error::name_unknown(to_name)));
            }
            let other = reg.image_ref(to_name, to_ref, platform).await?;
            match reg.image_diff(image, other, ask.wait).await? {
                Indexing::Pending(p) => Ok(pending(p)),
                Indexing::Ready(d) => Ok(Json(d).into_response()),
            }
        }
    }
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, e.to_string())
}
