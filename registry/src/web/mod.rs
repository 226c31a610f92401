//! The web view: server-rendered pages (askama templates compiled into the
//! binary, auto-escaped) over the same inspection calls as `/api/v1`. Pages
//! work without JavaScript.

mod views;

use crate::api::AppState;
use crate::error::ApiError;
use crate::inspect_api::{self, fetch};
use crate::paging::{self, parse_query, Page};
use crate::present::split_reference;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use storage::{Digest, Registry};
use views::{BlobPage, ErrorPage, ImagePage, RepoPage, ReposPage};

pub async fn index() -> Redirect {
    Redirect::to("/ui/repos")
}

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:5000")
        .to_owned();
    match route(&state.registry, req.uri(), &host).await {
        Ok(html) => html,
        Err(e) => {
            let status = crate::error::status_of(e.0.code);
            let page = ErrorPage {
                status: status.to_string(),
                message: e.0.message,
            };
            (status, render(&page)).into_response()
        }
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template error: {e}"),
        )
            .into_response(),
    }
}

async fn route(reg: &Registry, uri: &Uri, host: &str) -> Result<Response, ApiError> {
    let query = parse_query(uri);
    let path = uri.path().strip_prefix("/ui/").unwrap_or_default();
    let page = Page::parse(&query, paging::BROWSE)?;
    let n = page.n.unwrap_or_default() as i64;
    if path == "repos" || path == "repos/" {
        let q = query.get("q").cloned().unwrap_or_default();
        let filter = Some(q.as_str()).filter(|q| !q.is_empty());
        let repos = reg
            .repository_summaries(filter, page.last(), fetch(&page))
            .await?;
        let (repos, next) = page.split(repos, |r| r.name.clone());
        return Ok(render(&ReposPage::new(q, repos, next, n)));
    }
    if let Some(name) = path.strip_prefix("repos/") {
        let tags = reg.tag_summaries(name, page.last(), fetch(&page)).await?;
        let (tags, next) = page.split(tags, |t| t.tag.clone());
        return Ok(render(&RepoPage::new(name, host, tags, next, n)));
    }
    if let Some(reference) = path.strip_prefix("images/") {
        let detail = inspect_api::image(reg, reference, None).await?;
        let (name, _) = split_reference(reference);
        return Ok(render(&ImagePage::new(name, host, detail)));
    }
    if let Some(digest) = path.strip_prefix("blobs/") {
        let digest: Digest = digest.parse()?;
        return Ok(render(&BlobPage::new(reg.blob_detail(&digest).await?)));
    }
    Err(ApiError::new(storage::ErrorCode::NotFound, "no such page"))
}
