//! View models: everything a template shows, computed and formatted here so
//! templates only lay it out (and askama escapes every string).

use crate::present::{ago, human_size, join_reference, short_digest, unix_to_rfc3339};
use askama::Template;
use storage::inspect::{BlobDetail, ImageDetail, PlatformImage, ReferrerInfo, TagSummary};
use storage::metadata::RepoSummary;

fn image_href(name: &str, reference: &str) -> String {
    format!("/ui/images/{}", join_reference(name, reference))
}

/// A whole percentage, for the stylesheet's width classes (`w0`..`w100`:
/// no inline styles, so the content security policy can forbid them).
pub fn pct(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "0".to_owned()
    } else {
        format!(
            "{:.0}",
            (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
        )
    }
}

/// Who is looking, for the page header: signed in (with the CSRF token of
/// the sign-out form) or not, when sign-in exists at all.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub auth_on: bool,
    pub user: Option<String>,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub viewer: Viewer,
    pub csrf: String,
    pub error: Option<String>,
    pub user: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub viewer: Viewer,
    pub status: String,
    pub message: String,
}

pub struct RepoRow {
    pub name: String,
    pub href: String,
    pub tags: i64,
    pub size: String,
    pub pushed: String,
    /// The upstream, for a pull-through cache's repository.
    pub cached_from: Option<String>,
}

#[derive(Template)]
#[template(path = "repos.html")]
pub struct ReposPage {
    pub viewer: Viewer,
    pub q: String,
    pub repos: Vec<RepoRow>,
    pub next_href: Option<String>,
}

impl ReposPage {
    pub fn new(q: String, repos: Vec<RepoSummary>, next: Option<String>, n: i64) -> Self {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        ReposPage {
            viewer: Viewer::default(),
            next_href: next
                .map(|last| format!("/ui/repos?q={}&n={n}&last={}", enc(&q), enc(&last))),
            repos: repos
                .into_iter()
                .map(|r| RepoRow {
                    href: format!("/ui/repos/{}", r.name),
                    tags: r.tag_count,
                    size: human_size(r.size),
                    pushed: r
                        .last_push
                        .map(unix_to_rfc3339)
                        .unwrap_or_else(|| "—".into()),
                    name: r.name,
                    cached_from: None,
                })
                .collect(),
            q,
        }
    }
}

pub struct TagRowView {
    pub tag: String,
    pub href: String,
    pub digest_short: String,
    pub platforms: Vec<String>,
    pub size: String,
    pub pushed: String,
}

#[derive(Template)]
#[template(path = "repo.html")]
pub struct RepoPage {
    pub viewer: Viewer,
    pub name: String,
    pub host: String,
    pub tags: Vec<TagRowView>,
    pub next_href: Option<String>,
    /// The upstream, for a pull-through cache's repository.
    pub cached_from: Option<String>,
    /// The ECR API's lines for this repository: the login, and its images.
    pub ecr_login: String,
    pub ecr_describe: String,
}

impl RepoPage {
    /// The `aws ecr` lines for this repository, the API at `endpoint_url`.
    pub fn set_ecr_lines(&mut self, endpoint_url: &str) {
        self.ecr_login = format!(
            "aws ecr get-login-password --endpoint-url {endpoint_url} | docker login --username AWS --password-stdin {}",
            self.host
        );
        self.ecr_describe = format!(
            "aws ecr describe-images --repository-name {} --endpoint-url {endpoint_url}",
            self.name
        );
    }

    pub fn new(
        name: &str,
        host: &str,
        tags: Vec<TagSummary>,
        next: Option<String>,
        n: i64,
    ) -> Self {
        RepoPage {
            viewer: Viewer::default(),
            name: name.to_owned(),
            host: host.to_owned(),
            next_href: next.map(|last| format!("/ui/repos/{name}?n={n}&last={last}")),
            cached_from: None,
            ecr_login: String::new(),
            ecr_describe: String::new(),
            tags: tags
                .into_iter()
                .map(|t| TagRowView {
                    href: image_href(name, &t.tag),
                    digest_short: short_digest(&t.digest),
                    platforms: t.platforms,
                    size: human_size(t.size),
                    pushed: unix_to_rfc3339(t.pushed),
                    tag: t.tag,
                })
                .collect(),
        }
    }
}

pub struct LayerRowView {
    pub index: usize,
    pub created_by: String,
    pub comment: String,
    pub created: String,
    pub size: String,
    pub bar_pct: String,
    pub empty: bool,
    pub shared: bool,
    pub blob_href: Option<String>,
    /// The layer's files.
    pub files_href: Option<String>,
    pub digest_short: String,
    /// Other images using the layer, for the tooltip.
    pub used_by: String,
}

pub struct PlatformView {
    pub anchor: String,
    pub platform: String,
    pub digest_short: String,
    pub config: Vec<(String, String)>,
    pub error: Option<String>,
    pub total: String,
    pub shared: String,
    pub unique: String,
    pub shared_pct: String,
    pub unique_pct: String,
    pub mismatch: Option<String>,
    /// The stacked files and the waste report of this platform's image.
    pub files_href: String,
    pub waste_href: String,
    pub diff_href: String,
    pub rows: Vec<LayerRowView>,
    /// (artifact type, short digest, href, size)
    pub referrers: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "image.html")]
pub struct ImagePage {
    pub viewer: Viewer,
    pub repo: String,
    pub repo_href: String,
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    pub pull: String,
    pub platforms: Vec<PlatformView>,
    pub referrers: Vec<(String, String, String, String)>,
    /// The tag's changes, newest first (for a tag; empty for a digest).
    pub history: Vec<HistoryRow>,
}

/// One change of a tag: when, what, who, from, to (short digest and link).
pub struct HistoryRow {
    pub when: String,
    pub action: String,
    pub who: String,
    pub from: Option<(String, String)>,
    pub to: Option<(String, String)>,
}

impl HistoryRow {
    pub fn new(repo: &str, c: &storage::metadata::TagChange) -> HistoryRow {
        let link = |d: &Option<String>| d.as_ref().map(|d| (short_digest(d), image_href(repo, d)));
        HistoryRow {
            when: unix_to_rfc3339(c.at),
            action: c.action.clone(),
            who: c.actor.clone().unwrap_or_else(|| "—".into()),
            from: link(&c.old_digest),
            to: link(&c.new_digest),
        }
    }
}

fn referrer_rows(repo: &str, refs: &[ReferrerInfo]) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = refs
        .iter()
        .map(|r| {
            (
                r.artifact_type
                    .clone()
                    .unwrap_or_else(|| r.media_type.clone()),
                short_digest(&r.digest),
                image_href(repo, &r.digest),
                human_size(r.size),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn config_rows(img: &PlatformImage) -> Vec<(String, String)> {
    let Some(c) = &img.config else {
        return Vec::new();
    };
    let mut rows = vec![];
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            rows.push((k.to_owned(), v));
        }
    };
    push("Created", c.created.clone());
    push("Author", c.author.clone());
    push(
        "Entrypoint",
        c.entrypoint.as_ref().map(|e| format!("{e:?}")),
    );
    push("Cmd", c.cmd.as_ref().map(|e| format!("{e:?}")));
    push("Working dir", c.working_dir.clone());
    push("User", c.user.clone());
    push("Exposed ports", Some(c.exposed_ports.join(", ")));
    push("Env", Some(c.env.join("\n")));
    push(
        "Labels",
        Some(
            c.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    );
    push("Config", Some(img.config_digest.clone()));
    rows
}

fn platform_view(repo: &str, full: &str, img: &PlatformImage) -> PlatformView {
    let contents = |view: &str| {
        format!(
            "/ui/images/{full}/{view}?platform={}",
            form_urlencoded::byte_serialize(img.platform.as_bytes()).collect::<String>()
        )
    };
    let largest = img.layers.iter().map(|l| l.size).max().unwrap_or(0);
    let rows = img
        .history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let layer = h.layer.and_then(|i| img.layers.get(i));
            LayerRowView {
                index: i + 1,
                created_by: h
                    .created_by
                    .clone()
                    .unwrap_or_else(|| "(no history entry)".into()),
                comment: h.comment.clone().unwrap_or_default(),
                created: h
                    .created
                    .as_deref()
                    .map(|c| ago(Some(c)))
                    .unwrap_or_default(),
                size: layer
                    .map(|l| human_size(l.size))
                    .unwrap_or_else(|| "0B".into()),
                bar_pct: layer
                    .map(|l| pct(l.size, largest))
                    .unwrap_or_else(|| "0".into()),
                empty: layer.is_none(),
                shared: layer.is_some_and(|l| !l.used_by.is_empty()),
                blob_href: layer.map(|l| format!("/ui/blobs/{}", l.digest)),
                files_href: h.layer.map(|n| format!("{}&layer={n}", contents("files"))),
                digest_short: layer.map(|l| short_digest(&l.digest)).unwrap_or_default(),
                used_by: layer
                    .map(|l| {
                        l.used_by
                            .iter()
                            .map(|u| match &u.tag {
                                Some(t) => format!("{}:{t}", u.repository),
                                None => format!("{}@{}", u.repository, short_digest(&u.manifest)),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let unique = img.total_size - img.shared_size;
    PlatformView {
        anchor: img.platform.replace('/', "-"),
        platform: img.platform.clone(),
        digest_short: short_digest(&img.digest),
        config: config_rows(img),
        error: img.error.clone(),
        total: human_size(img.total_size),
        shared: human_size(img.shared_size),
        unique: human_size(unique),
        shared_pct: pct(img.shared_size, img.total_size),
        unique_pct: pct(unique, img.total_size),
        mismatch: img.mismatch.clone(),
        files_href: contents("files"),
        waste_href: contents("waste"),
        diff_href: contents("diff"),
        rows,
        referrers: referrer_rows(repo, &img.referrers),
    }
}

impl ImagePage {
    pub fn new(repo: &str, host: &str, d: ImageDetail) -> Self {
        let reference = join_reference(repo, &d.reference);
        ImagePage {
            viewer: Viewer::default(),
            repo: repo.to_owned(),
            repo_href: format!("/ui/repos/{repo}"),
            pull: format!("docker pull {host}/{reference}"),
            reference,
            platforms: d
                .images
                .iter()
                .map(|i| platform_view(repo, &join_reference(repo, &d.reference), i))
                .collect(),
            referrers: referrer_rows(repo, &d.referrers),
            history: Vec::new(),
            digest: d.digest,
            media_type: d.media_type,
        }
    }
}

#[derive(Template)]
#[template(path = "blob.html")]
pub struct BlobPage {
    pub viewer: Viewer,
    pub digest: String,
    pub size: String,
    /// (label, href, manifest digest)
    pub uses: Vec<(String, String, String)>,
}

impl BlobPage {
    pub fn new(b: BlobDetail) -> Self {
        BlobPage {
            viewer: Viewer::default(),
            size: human_size(b.size),
            uses: b
                .used_by
                .iter()
                .map(|u| {
                    let reference = u.tag.clone().unwrap_or_else(|| u.manifest.clone());
                    (
                        join_reference(&u.repository, &reference),
                        image_href(&u.repository, &reference),
                        u.manifest.clone(),
                    )
                })
                .collect(),
            digest: b.digest,
        }
    }
}

pub struct NamespaceRow {
    pub namespace: String,
    pub repositories: String,
    pub bytes: String,
    pub quota: String,
    /// Of the tighter quota, 0 to 100.
    pub used_pct: Option<u32>,
}

#[derive(Template)]
#[template(path = "namespaces.html")]
pub struct NamespacesPage {
    pub viewer: Viewer,
    pub rows: Vec<NamespaceRow>,
}

impl NamespacesPage {
    pub fn new(usage: Vec<storage::NamespaceUsage>) -> Self {
        let rows = usage
            .into_iter()
            .map(|u| {
                let q = u.quota.clone();
                let bytes_pct = q
                    .as_ref()
                    .and_then(|q| q.bytes)
                    .map(|max| u.bytes as f64 / max.max(1) as f64);
                let repos_pct = q
                    .as_ref()
                    .and_then(|q| q.repositories)
                    .map(|max| u.repositories as f64 / max.max(1) as f64);
                let used = match (bytes_pct, repos_pct) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let mut limits = Vec::new();
                if let Some(b) = q.as_ref().and_then(|q| q.bytes) {
                    limits.push(human_size(b as i64));
                }
                if let Some(r) = q.as_ref().and_then(|q| q.repositories) {
                    limits.push(format!("{r} repositories"));
                }
                NamespaceRow {
                    namespace: u.namespace,
                    repositories: u.repositories.to_string(),
                    bytes: human_size(u.bytes),
                    quota: if limits.is_empty() {
                        "—".into()
                    } else {
                        limits.join(", ")
                    },
                    used_pct: used.map(|p| (p * 100.0).clamp(0.0, 100.0).round() as u32),
                }
            })
            .collect();
        NamespacesPage {
            viewer: Viewer::default(),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;

    #[test]
    fn a_repository_page_shows_the_ecr_lines() {
        let mut p = RepoPage::new("team/app", "reg.example:5000", Vec::new(), None, 50);
        p.set_ecr_lines("https://reg.example:5000");
        let html = p.render().unwrap();
        assert!(html.contains(
            "aws ecr get-login-password --endpoint-url https://reg.example:5000 | docker login --username AWS --password-stdin reg.example:5000"
        ), "{html}");
        assert!(html.contains(
            "aws ecr describe-images --repository-name team/app --endpoint-url https://reg.example:5000"
        ), "{html}");
        assert!(!html.contains("style="), "no inline style (CSP)");
    }
}
