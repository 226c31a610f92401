//! The web view: server-rendered pages (askama templates compiled into the
//! binary, auto-escaped) over the same inspection calls as `/api/v1`. Pages
//! work without JavaScript. With authentication on, visitors sign in with a
//! form (a session cookie; every form carries a CSRF token) and see only
//! what they may pull; anonymous visitors see public repositories.

mod login;
mod views;

pub use login::{login, login_form, logout};

use crate::api::AppState;
use crate::error::ApiError;
use crate::gate::Caller;
use crate::inspect_api::{self, Readable};
use crate::paging::{self, parse_query, Page};
use crate::present::split_reference;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use storage::{Digest, Registry};
use views::{BlobPage, ErrorPage, ImagePage, RepoPage, ReposPage, Viewer};

pub async fn index() -> Redirect {
    Redirect::to("/ui/repos")
}

/// The caller of a page and what its header shows.
async fn viewer(state: &AppState, headers: &axum::http::HeaderMap) -> (Caller, Viewer) {
    let gate = &state.gate;
    if !gate.enabled() {
        return (Caller::Open, Viewer::default());
    }
    match gate.web_session(headers).await {
        Some((id, session)) => (
            Caller::Known(id),
            Viewer {
                auth_on: true,
                user: Some(session.user),
                csrf: session.csrf,
            },
        ),
        None => (
            Caller::anonymous(),
            Viewer {
                auth_on: true,
                ..Viewer::default()
            },
        ),
    }
}

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:5000")
        .to_owned();
    let (caller, viewer) = viewer(&state, req.headers()).await;
    let readable = |r: &str| state.gate.allows(&caller, r, auth::Action::Pull);
    let mut resp = match route(
        &state.registry,
        &state.proxy,
        req.uri(),
        &host,
        &readable,
        &viewer,
    )
    .await
    {
        Ok(html) => html,
        Err(e) => {
            let status = crate::error::status_of(e.0.code);
            let page = ErrorPage {
                viewer: viewer.clone(),
                status: status.to_string(),
                message: e.0.message,
            };
            (status, render(&page)).into_response()
        }
    };
    if let Some(u) = caller.user() {
        resp.extensions_mut().insert(crate::access::User(u));
    }
    resp
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

async fn route(
    reg: &Registry,
    proxy: &crate::proxy::Proxy,
    uri: &Uri,
    host: &str,
    readable: Readable<'_>,
    viewer: &Viewer,
) -> Result<Response, ApiError> {
    let query = parse_query(uri);
    let path = uri.path().strip_prefix("/ui/").unwrap_or_default();
    let page = Page::parse(&query, paging::BROWSE)?;
    let n = page.n.unwrap_or_default() as i64;
    if path == "repos" || path == "repos/" {
        let q = query.get("q").cloned().unwrap_or_default();
        let filter = Some(q.as_str()).filter(|q| !q.is_empty());
        let (repos, next) = inspect_api::repos_page(reg, filter, &page, readable).await?;
        let mut p = ReposPage::new(q, repos, next, n);
        p.viewer = viewer.clone();
        for r in &mut p.repos {
            r.cached_from = proxy.cached_from(&r.name).map(str::to_owned);
        }
        return Ok(render(&p));
    }
    if path == "namespaces" {
        let usage = inspect_api::namespaces(reg, readable).await?;
        let mut p = crate::web::views::NamespacesPage::new(usage);
        p.viewer = viewer.clone();
        return Ok(render(&p));
    }
    if let Some(name) = path.strip_prefix("repos/") {
        let (tags, next) = inspect_api::tags_page(reg, name, &page, readable).await?;
        let mut p = RepoPage::new(name, host, tags, next, n);
        p.viewer = viewer.clone();
        p.cached_from = proxy.cached_from(name).map(str::to_owned);
        return Ok(render(&p));
    }
    if let Some(reference) = path.strip_prefix("images/") {
        let detail = inspect_api::image(reg, reference, None, readable).await?;
        let (name, tag) = split_reference(reference);
        let mut p = ImagePage::new(name, host, detail);
        if !tag.starts_with("sha256:") && !tag.starts_with("sha512:") {
            p.history = reg
                .tag_history(name, tag, 20)
                .await?
                .iter()
                .map(|c| crate::web::views::HistoryRow::new(name, c))
                .collect();
        }
        p.viewer = viewer.clone();
        return Ok(render(&p));
    }
    if let Some(digest) = path.strip_prefix("blobs/") {
        let digest: Digest = digest.parse()?;
        let mut p = BlobPage::new(inspect_api::blob(reg, &digest, readable).await?);
        p.viewer = viewer.clone();
        return Ok(render(&p));
    }
    Err(ApiError::new(storage::ErrorCode::NotFound, "no such page"))
}
