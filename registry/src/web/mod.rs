//! The web view: server-rendered pages (askama templates compiled into the
//! binary, auto-escaped) over the same inspection calls as `/api/v1`. Pages
//! work without JavaScript. With authentication on, visitors sign in with a
//! form (a session cookie; every form carries a CSRF token) and see only
//! what they may pull; anonymous visitors see public repositories.

mod contents;
mod login;
mod views;

pub use login::{login, login_form, logout};

use crate::api::admin::inspect::{self as inspect_api, Readable};
use crate::gate::Access;
use crate::http::error::ApiError;
use crate::http::paging::{self, parse_query, Page};
use crate::routes::{Endpoint, Ui};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use storage::{Digest, Registry};
use views::{BlobPage, ErrorPage, ImagePage, RepoPage, ReposPage, Viewer};

/// The pages' stylesheet, compiled in.
const STYLE: &str = include_str!("../../static/style.css");

pub async fn index() -> Redirect {
    Redirect::to("/ui/repos")
}

/// What a page's header shows about its visitor.
fn viewer(access: &Access) -> Viewer {
    match &access.session {
        Some(session) => Viewer {
            auth_on: true,
            user: Some(session.user.clone()),
            csrf: session.csrf.clone(),
        },
        None => Viewer {
            auth_on: !matches!(access.caller(), crate::gate::Caller::Open),
            ..Viewer::default()
        },
    }
}

/// The page of an error.
fn error_page(viewer: Viewer, e: storage::Error) -> Response {
    let status = crate::http::error::status_of(e.code);
    let page = ErrorPage {
        viewer,
        status: status.to_string(),
        message: e.message,
    };
    (status, render(&page)).into_response()
}

/// The "not found" page: for a path that is no page, or (with the
/// visitor) a repository they may not read, which answers exactly as one
/// that does not exist.
pub fn not_found(what: Option<(&Access, storage::Error)>) -> Response {
    match what {
        Some((access, e)) => error_page(viewer(access), e),
        None => error_page(
            Viewer::default(),
            storage::Error::new(storage::ErrorCode::NotFound, "no such page"),
        ),
    }
}

pub async fn dispatch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: Request,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:5000")
        .to_owned();
    // The URL the aws CLI reaches the ECR API at, for the page's lines.
    let endpoint_url = match &state.external_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None if state.gate.https(req.headers()) => format!("https://{host}"),
        None => format!("http://{host}"),
    };
    let viewer = viewer(&access);
    let readable = |r: &str| access.reads(r);
    let Endpoint::Ui(ui) = crate::routes::endpoint(req.uri().path()) else {
        return not_found(None);
    };
    let page = Pages {
        reg: &state.registry,
        proxy: &state.proxy,
        host: &host,
        endpoint_url: &endpoint_url,
        readable: &readable,
        viewer: &viewer,
        access: &access,
    };
    match page.route(ui, req.uri()).await {
        Ok(html) => html,
        Err(e) => error_page(viewer.clone(), e.0),
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

/// What a page needs to render.
struct Pages<'a> {
    reg: &'a Registry,
    proxy: &'a crate::proxy::Proxy,
    host: &'a str,
    endpoint_url: &'a str,
    readable: Readable<'a>,
    viewer: &'a Viewer,
    access: &'a Access,
}

impl Pages<'_> {
    async fn route(&self, ui: Ui<'_>, uri: &Uri) -> Result<Response, ApiError> {
        let (reg, proxy, readable, viewer) = (self.reg, self.proxy, self.readable, self.viewer);
        let query = parse_query(uri);
        let page = Page::parse(&query, paging::BROWSE)?;
        let n = page.n.unwrap_or_default() as i64;
        match ui {
            Ui::Repos => {
                let q = query.get("q").cloned().unwrap_or_default();
                let filter = Some(q.as_str()).filter(|q| !q.is_empty());
                let (repos, next) = inspect_api::repos_page(reg, filter, &page, readable).await?;
                let mut p = ReposPage::new(q, repos, next, n);
                p.viewer = viewer.clone();
                for r in &mut p.repos {
                    r.cached_from = proxy.cached_from(&r.name);
                }
                Ok(render(&p))
            }
            Ui::Namespaces => {
                let usage = inspect_api::namespaces(reg, self.access).await?;
                let mut p = crate::web::views::NamespacesPage::new(usage);
                p.viewer = viewer.clone();
                Ok(render(&p))
            }
            Ui::Repo { name } => {
                let (tags, next) = inspect_api::tags_page(reg, name, &page, readable).await?;
                let mut p = RepoPage::new(name, self.host, tags, next, n);
                p.viewer = viewer.clone();
                p.cached_from = proxy.cached_from(name);
                p.set_ecr_lines(self.endpoint_url);
                Ok(render(&p))
            }
            Ui::Image {
                name,
                reference,
                full,
            } => {
                let detail = inspect_api::image(reg, full, None, readable).await?;
                let mut p = ImagePage::new(name, self.host, detail);
                if !reference.starts_with("sha256:") && !reference.starts_with("sha512:") {
                    p.history = reg
                        .tag_history(name, reference, 20)
                        .await?
                        .iter()
                        .map(|c| crate::web::views::HistoryRow::new(name, c))
                        .collect();
                }
                p.viewer = viewer.clone();
                Ok(render(&p))
            }
            Ui::Blob { digest } => {
                let digest: Digest = digest.parse()?;
                let mut p = BlobPage::new(inspect_api::blob(reg, &digest, readable).await?);
                p.viewer = viewer.clone();
                Ok(render(&p))
            }
            Ui::ImageContents {
                name,
                reference,
                full,
                view,
            } => {
                contents::page(
                    reg,
                    self.access,
                    viewer,
                    (name, reference, full),
                    view,
                    &query,
                )
                .await
            }
            Ui::Style => Ok((
                [
                    (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                STYLE,
            )
                .into_response()),
            // Served by handlers of their own.
            Ui::Index | Ui::Login | Ui::Logout => {
                Err(ApiError::new(storage::ErrorCode::NotFound, "no such page"))
            }
        }
    }
}
