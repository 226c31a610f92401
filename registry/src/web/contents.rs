//! The web view of what images contain: a directory browser over the
//! stacked files or one layer's (`?layer=N`, 0 the base layer), the waste
//! report, and the comparison of two images. Every link is a plain URL
//! with the directory in `path=`, so the browser's back button walks back
//! up; while layers are indexed, the page says how far it got and reloads
//! itself (a `meta refresh`: no script).

use super::views::{pct, Viewer};
use crate::api::admin::contents::Ask;
use crate::gate::Access;
use crate::http::error::ApiError;
use crate::http::paging::{self, Page, Query};
use crate::present::{human_size, join_reference, printable, short_digest, split_reference};
use crate::routes::Contents;
use askama::Template;
use std::time::Duration;
use storage::layers::{Kind, Pending, Row};
use storage::{ImageRef, Indexing, Registry};

/// How long a page waits for indexing before showing progress instead.
const PAGE_WAIT: Duration = Duration::from_secs(3);

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One row of a directory table.
pub struct FileRowView {
    pub name: String,
    pub href: Option<String>,
    pub kind: String,
    pub mode: String,
    pub owner: String,
    pub size: String,
    pub layer: String,
    pub link: String,
    pub secret: Option<String>,
    pub note: Option<String>,
    pub deleted: bool,
}

#[derive(Template)]
#[template(path = "files.html")]
pub struct FilesPage {
    pub viewer: Viewer,
    pub image: String,
    pub image_href: String,
    pub platform: String,
    /// (label, href, current) for "all layers" and each layer.
    pub layers: Vec<(String, String, bool)>,
    pub what: String,
    /// (name, href) from the root down to the directory shown.
    pub crumbs: Vec<(String, String)>,
    pub parent_href: Option<String>,
    pub rows: Vec<FileRowView>,
    pub next_href: Option<String>,
    pub waste_href: String,
}

#[derive(Template)]
#[template(path = "indexing.html")]
pub struct IndexingPage {
    pub viewer: Viewer,
    pub image: String,
    pub read: String,
    pub size: String,
    pub pct: String,
    pub entries: u64,
}

/// (path, wasted, versions, layers)
#[derive(Template)]
#[template(path = "waste.html")]
pub struct WastePage {
    pub viewer: Viewer,
    pub image: String,
    pub image_href: String,
    pub platform: String,
    pub efficiency: String,
    pub total: String,
    pub wasted: String,
    pub files: Vec<(String, String, u32, String)>,
    /// (path, layer, reason, deleted)
    pub secrets: Vec<(String, usize, String, bool)>,
    pub files_href: String,
}

#[derive(Template)]
#[template(path = "diff.html")]
pub struct DiffPage {
    pub viewer: Viewer,
    pub image: String,
    pub image_href: String,
    pub action: String,
    pub platform: String,
    pub to: String,
    pub compared: bool,
    /// (change, path, from, to)
    pub changes: Vec<(String, String, String, String)>,
    pub counts: String,
}

fn indexing(viewer: &Viewer, image: &str, p: Pending) -> IndexingPage {
    IndexingPage {
        viewer: viewer.clone(),
        image: image.to_owned(),
        read: human_size(p.read as i64),
        size: human_size(p.size as i64),
        pct: pct(p.read as i64, p.size as i64),
        entries: p.entries,
    }
}

fn describe(r: &Row) -> (String, String, String, String) {
    let e = &r.entry;
    let kind = match e.kind {
        Kind::Whiteout => "deleted".to_owned(),
        Kind::Opaque => "emptied".to_owned(),
        k => k.letter().to_string(),
    };
    let size = match (e.kind, r.total_bytes) {
        (Kind::Dir, Some(t)) => {
            let n = r.total_files.unwrap_or(0);
            let s = if n == 1 { "" } else { "s" };
            format!("{} in {n} file{s}", human_size(t as i64))
        }
        (Kind::File, _) => human_size(e.size as i64),
        _ => String::new(),
    };
    let link = e
        .link
        .as_deref()
        .map(|l| format!("→ {}", printable(l)))
        .unwrap_or_default();
    (kind, format!("{:04o}", e.mode), size, link)
}

/// The directory browser, the waste report or the comparison.
pub async fn page(
    reg: &Registry,
    access: &Access,
    viewer: &Viewer,
    (name, reference, full): (&str, &str, &str),
    view: Contents,
    query: &Query,
) -> Result<axum::response::Response, ApiError> {
    let platform = query
        .get("platform")
        .map(String::as_str)
        .filter(|p| !p.is_empty());
    let image = reg.image_ref(name, reference, platform).await?;
    let ask = Ask {
        wait: PAGE_WAIT,
        ..Ask::parse(query)?
    };
    let base = format!("/ui/images/{full}");
    let plat = format!("platform={}", enc(&image.platform));
    match view {
        Contents::Files => {
            let layer = match query.get("layer") {
                None => None,
                Some(l) => Some(layer_index(&image, l)?),
            };
            let page = Page::parse(query, paging::BROWSE)?;
            let (rows, path) = match layer {
                Some(n) => {
                    let digest: storage::Digest = image.layers[n].digest.parse()?;
                    match reg
                        .layer_files(name, &digest, &ask.path, 1, ask.wait)
                        .await?
                    {
                        Indexing::Pending(p) => {
                            return Ok(refreshing(super::render(&indexing(viewer, full, p))))
                        }
                        Indexing::Ready(f) => (f.rows, f.path),
                    }
                }
                None => match reg
                    .image_files(image.clone(), &ask.path, 1, ask.wait)
                    .await?
                {
                    Indexing::Pending(p) => {
                        return Ok(refreshing(super::render(&indexing(viewer, full, p))))
                    }
                    Indexing::Ready(f) => (f.rows, f.path),
                },
            };
            let layer_q = layer.map(|n| format!("&layer={n}")).unwrap_or_default();
            let dir_href = |p: &str| format!("{base}/files?{plat}{layer_q}&path={}", enc(p));
            let (rows, next) = crate::api::admin::contents::page_of(rows, &page);
            let mut crumbs = vec![("/".to_owned(), dir_href("/"))];
            let mut at = String::new();
            for part in path.split('/').filter(|p| !p.is_empty()) {
                at = format!("{at}/{part}");
                crumbs.push((printable(part).into_owned(), dir_href(&at)));
            }
            let parent = (path != "/").then(|| {
                let up = path
                    .rsplit_once('/')
                    .map(|(a, _)| a)
                    .filter(|a| !a.is_empty())
                    .unwrap_or("/");
                dir_href(up)
            });
            let mut layers = vec![(
                "all layers, stacked".to_owned(),
                format!("{base}/files?{plat}&path={}", enc(&path)),
                layer.is_none(),
            )];
            for (i, l) in image.layers.iter().enumerate() {
                layers.push((
                    format!(
                        "layer {i} ({}, {})",
                        short_digest(&l.digest),
                        human_size(l.size as i64)
                    ),
                    format!("{base}/files?{plat}&layer={i}&path={}", enc(&path)),
                    layer == Some(i),
                ));
            }
            let files = FilesPage {
                viewer: viewer.clone(),
                image: full.to_owned(),
                image_href: base.clone(),
                platform: image.platform.clone(),
                what: match layer {
                    Some(n) => format!("layer {n} of {}", image.layers.len()),
                    None => format!("all {} layers, stacked", image.layers.len()),
                },
                layers,
                next_href: next.map(|last| {
                    format!(
                        "{}&n={}&last={}",
                        dir_href(&path),
                        page.n.unwrap_or(100),
                        enc(&last)
                    )
                }),
                rows: rows
                    .iter()
                    .map(|r| {
                        let (kind, mode, size, link) = describe(r);
                        let base_name = r.entry.path.rsplit('/').next().unwrap_or("");
                        FileRowView {
                            name: printable(base_name).into_owned(),
                            href: (r.entry.kind == Kind::Dir).then(|| dir_href(&r.entry.path)),
                            kind,
                            mode,
                            owner: format!("{}:{}", r.entry.uid, r.entry.gid),
                            size,
                            layer: r.layer.map(|l| l.to_string()).unwrap_or_default(),
                            link,
                            secret: r.secret.clone(),
                            note: r.entry.note.as_deref().map(|n| printable(n).into_owned()),
                            deleted: r.entry.kind.deletes(),
                        }
                    })
                    .collect(),
                crumbs,
                parent_href: parent,
                waste_href: format!("{base}/waste?{plat}"),
            };
            Ok(super::render(&files))
        }
        Contents::Waste => match reg.image_waste(image.clone(), ask.wait).await? {
            Indexing::Pending(p) => Ok(refreshing(super::render(&indexing(viewer, full, p)))),
            Indexing::Ready(w) => Ok(super::render(&WastePage {
                viewer: viewer.clone(),
                image: full.to_owned(),
                image_href: base.clone(),
                platform: image.platform.clone(),
                efficiency: format!("{:.1} %", w.waste.efficiency * 100.0),
                total: human_size(w.waste.total_bytes as i64),
                wasted: human_size(w.waste.wasted_bytes as i64),
                files: w
                    .waste
                    .files
                    .iter()
                    .take(500)
                    .map(|f| {
                        let layers: Vec<String> = f.layers.iter().map(|l| l.to_string()).collect();
                        (
                            printable(&f.path).into_owned(),
                            human_size(f.wasted_bytes as i64),
                            f.versions,
                            layers.join(", "),
                        )
                    })
                    .collect(),
                secrets: w
                    .waste
                    .secrets
                    .iter()
                    .map(|s| {
                        (
                            printable(&s.path).into_owned(),
                            s.layer,
                            s.reason.clone(),
                            s.deleted,
                        )
                    })
                    .collect(),
                files_href: format!("{base}/files?{plat}"),
            })),
        },
        Contents::Diff => {
            let to = query.get("to").cloned().unwrap_or_default();
            let mut page = DiffPage {
                viewer: viewer.clone(),
                image: full.to_owned(),
                image_href: base.clone(),
                action: format!("{base}/diff"),
                platform: image.platform.clone(),
                to: to.clone(),
                compared: false,
                changes: Vec::new(),
                counts: String::new(),
            };
            if to.is_empty() {
                return Ok(super::render(&page));
            }
            let (to_name, to_ref) = split_reference(&to);
            if !access.reads(to_name) {
                return Err(ApiError(storage::Error::name_unknown(to_name)));
            }
            let other = reg
                .image_ref(to_name, to_ref, Some(&image.platform))
                .await?;
            match reg.image_diff(image, other, ask.wait).await? {
                Indexing::Pending(p) => Ok(refreshing(super::render(&indexing(viewer, full, p)))),
                Indexing::Ready(d) => {
                    let count = |c: &str| d.changes.iter().filter(|x| x.change == c).count();
                    page.counts = format!(
                        "{} added, {} removed, {} changed",
                        count("added"),
                        count("removed"),
                        count("changed")
                    );
                    let show = |e: &Option<storage::layers::Entry>| {
                        e.as_ref()
                            .map(|e| {
                                let size = if e.kind == Kind::File {
                                    human_size(e.size as i64)
                                } else {
                                    e.kind.letter().to_string()
                                };
                                format!("{size} {:04o} {}:{}", e.mode, e.uid, e.gid)
                            })
                            .unwrap_or_default()
                    };
                    page.changes = d
                        .changes
                        .iter()
                        .take(5000)
                        .map(|c| {
                            (
                                c.change.clone(),
                                printable(&c.path).into_owned(),
                                show(&c.from),
                                show(&c.to),
                            )
                        })
                        .collect();
                    page.compared = true;
                    page.to = join_reference(to_name, to_ref);
                    Ok(super::render(&page))
                }
            }
        }
    }
}

/// Layer `n` of `image` (`-1` the last).
pub fn layer_index(image: &ImageRef, n: &str) -> Result<usize, ApiError> {
    let len = image.layers.len() as i64;
    n.parse::<i64>()
        .ok()
        .map(|i| if i < 0 { len + i } else { i })
        .filter(|i| (0..len).contains(i))
        .map(|i| i as usize)
        .ok_or_else(|| {
            ApiError::new(
                storage::ErrorCode::PaginationInvalid,
                format!("layer: 0 to {} (or -1 for the last), not {n:?}", len - 1),
            )
        })
}

/// A progress page (it reloads itself).
fn refreshing(r: axum::response::Response) -> axum::response::Response {
    r
}
