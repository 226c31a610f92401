//! Every route of every surface, parsed in one place: `/v2` (the
//! distribution API), `/api/v1` (JSON for tools), `/ui` (the web view),
//! `/token`, health and metrics. Repository names contain slashes, so the
//! paths that carry one are recognised from their ends, not by router
//! patterns. What each route requires is the table in
//! [`crate::gate::require`]; handlers get a request the gate has already
//! let through, and find their route with [`endpoint`] too.

pub mod ecr;
mod v2;

pub use ecr::EcrCall;
pub use v2::{parse, Route};

use crate::present::split_reference;

/// A request path, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/v2` and `/v2/`: the version check clients authenticate against.
    V2Base,
    V2(Route<'a>),
    Api(Api<'a>),
    Ui(Ui<'a>),
    /// `/`: a redirect to the web view.
    Root,
    /// A `POST` of the ECR API (`[ecr] path`, with `X-Amz-Target`): the
    /// operation and the repository its body names (see [`ecr`]).
    Ecr(EcrCall),
    /// `/token` (the token server: it authenticates on its own).
    Token,
    /// `/token/jwks.json`: the public keys.
    TokenKeys,
    Health,
    Ready,
    Metrics,
    /// A path under `/v2/`, `/api/v1/` or `/ui/` that names no route, so
    /// the answer is that surface's own 404; or nothing of ours at all.
    Unknown(Surface),
}

/// Where a path belongs, for the shape of its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    V2,
    Api,
    Ui,
    Other,
}

/// `/api/v1/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api<'a> {
    /// `repositories` (a page of those the caller may read).
    Repositories,
    /// `repositories/{name}/tags`.
    Tags { name: &'a str },
    /// `repositories/{name}/tags/{tag}/history`.
    History { name: &'a str, tag: &'a str },
    /// `repositories/{name}/tags/{tag}/rollback`.
    Rollback { name: &'a str, tag: &'a str },
    /// `repositories/{name}/lifecycle`.
    Lifecycle { name: &'a str },
    /// `repositories/{name}/lifecycle/preview`.
    LifecyclePreview { name: &'a str },
    /// `repositories/{name}/lifecycle/run`.
    LifecycleRun { name: &'a str },
    /// `repositories/{name}/immutability`.
    Immutability { name: &'a str },
    /// `images/{name}:{tag}` or `images/{name}@{digest}`.
    Image {
        name: &'a str,
        reference: &'a str,
        /// `name:tag` or `name@digest` as written.
        full: &'a str,
    },
    /// `blobs/{digest}` (shown with the readable images that use it).
    Blob { digest: &'a str },
    /// `repositories/{name}/layers/{digest}/files`: a layer's files.
    LayerFiles { name: &'a str, digest: &'a str },
    /// `images/{reference}/files`, `/waste`, `/diff`: the image's stacked
    /// files, what its layers wasted, what changed from it to another.
    ImageContents {
        name: &'a str,
        reference: &'a str,
        full: &'a str,
        view: Contents,
    },
    /// `namespaces` (quota usage).
    Namespaces,
    /// `gc` (collect now, or what collections did).
    Gc,
}

/// Which view of an image's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    Files,
    Waste,
    Diff,
}

impl Contents {
    const ALL: [(Contents, &'static str); 3] = [
        (Contents::Files, "/files"),
        (Contents::Waste, "/waste"),
        (Contents::Diff, "/diff"),
    ];
}

/// `name:tag/files` or `name@digest/files` (and the other views): a
/// reference must be written out, so that a repository named `x/files`
/// stays an image of its own.
fn image_contents(rest: &str) -> Option<(&str, &str, &str, Contents)> {
    for (view, suffix) in Contents::ALL {
        if let Some(full) = rest.strip_suffix(suffix) {
            let last = full.rsplit('/').next().unwrap_or(full);
            if !last.contains(':') && !last.contains('@') {
                continue;
            }
            let (name, reference) = split_reference(full);
            return Some((non_empty(name)?, non_empty(reference)?, full, view));
        }
    }
    None
}

/// `/ui/...` (and `/ui` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ui<'a> {
    /// `/ui`: a redirect to the repository list.
    Index,
    Repos,
    Namespaces,
    Repo {
        name: &'a str,
    },
    Image {
        name: &'a str,
        reference: &'a str,
        full: &'a str,
    },
    Blob {
        digest: &'a str,
    },
    /// `images/{reference}/files` (`?layer=N` for one layer), `/waste`,
    /// `/diff?to=`.
    ImageContents {
        name: &'a str,
        reference: &'a str,
        full: &'a str,
        view: Contents,
    },
    /// `style.css`: the pages' one stylesheet (no inline styles, for the
    /// content security policy).
    Style,
    Login,
    Logout,
}

impl<'a> Endpoint<'a> {
    /// The repository the route names, if any.
    pub fn repository(&self) -> Option<&'a str> {
        match self {
            Endpoint::V2(r) => r.name(),
            Endpoint::Api(a) => match *a {
                Api::Tags { name }
                | Api::History { name, .. }
                | Api::Rollback { name, .. }
                | Api::Lifecycle { name }
                | Api::LifecyclePreview { name }
                | Api::LifecycleRun { name }
                | Api::Immutability { name }
                | Api::LayerFiles { name, .. }
                | Api::ImageContents { name, .. }
                | Api::Image { name, .. } => Some(name),
                Api::Repositories | Api::Blob { .. } | Api::Namespaces | Api::Gc => None,
            },
            Endpoint::Ui(
                Ui::Repo { name } | Ui::Image { name, .. } | Ui::ImageContents { name, .. },
            ) => Some(name),
            // Named in the body, not the path: see `EcrCall::repository`.
            Endpoint::Ecr(_) => None,
            _ => None,
        }
    }

    pub fn surface(&self) -> Surface {
        match self {
            Endpoint::V2Base | Endpoint::V2(_) => Surface::V2,
            Endpoint::Api(_) => Surface::Api,
            Endpoint::Ui(_) => Surface::Ui,
            Endpoint::Unknown(s) => *s,
            _ => Surface::Other,
        }
    }
}

/// The `/v2/` part of a path as routes read it: some clients
/// percent-encode the `:` of digests.
pub fn v2_path(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    let rest = path.strip_prefix("/v2/")?;
    Some(if rest.contains("%3A") || rest.contains("%3a") {
        rest.replace("%3A", ":").replace("%3a", ":").into()
    } else {
        rest.into()
    })
}

/// The route of `path` (for `/v2/`, of [`v2_path`]'s form of it).
pub fn endpoint(path: &str) -> Endpoint<'_> {
    if path == "/v2" || path == "/v2/" {
        return Endpoint::V2Base;
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        return parse(rest).map_or(Endpoint::Unknown(Surface::V2), Endpoint::V2);
    }
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        return api(rest).map_or(Endpoint::Unknown(Surface::Api), Endpoint::Api);
    }
    if path == "/ui" || path == "/ui/" {
        return Endpoint::Ui(Ui::Index);
    }
    if let Some(rest) = path.strip_prefix("/ui/") {
        return ui(rest).map_or(Endpoint::Unknown(Surface::Ui), Endpoint::Ui);
    }
    match path {
        "/" => Endpoint::Root,
        "/token" => Endpoint::Token,
        "/token/jwks.json" => Endpoint::TokenKeys,
        "/healthz" => Endpoint::Health,
        "/readyz" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        _ => Endpoint::Unknown(Surface::Other),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn api(rest: &str) -> Option<Api<'_>> {
    match rest {
        "repositories" => return Some(Api::Repositories),
        "namespaces" => return Some(Api::Namespaces),
        "gc" => return Some(Api::Gc),
        _ => {}
    }
    if let Some(full) = rest.strip_prefix("images/") {
        if let Some((name, reference, full, view)) = image_contents(full) {
            return Some(Api::ImageContents {
                name,
                reference,
                full,
                view,
            });
        }
        let (name, reference) = split_reference(full);
        return non_empty(name).map(|name| Api::Image {
            name,
            reference,
            full,
        });
    }
    if let Some(digest) = rest.strip_prefix("blobs/") {
        return non_empty(digest).map(|digest| Api::Blob { digest });
    }
    let r = rest.strip_prefix("repositories/")?;
    // A digest has a `:`, which no repository name has.
    if let Some((name, digest)) = r
        .strip_suffix("/files")
        .and_then(|p| p.rsplit_once("/layers/"))
        .filter(|(_, d)| d.contains(':') && !d.contains('/'))
    {
        return Some(Api::LayerFiles {
            name: non_empty(name)?,
            digest,
        });
    }
    // Longest suffixes first: a repository may be called `lifecycle`.
    if let Some(name) = r.strip_suffix("/lifecycle/preview") {
        return non_empty(name).map(|name| Api::LifecyclePreview { name });
    }
    if let Some(name) = r.strip_suffix("/lifecycle/run") {
        return non_empty(name).map(|name| Api::LifecycleRun { name });
    }
    if let Some(name) = r.strip_suffix("/lifecycle") {
        return non_empty(name).map(|name| Api::Lifecycle { name });
    }
    if let Some(name) = r.strip_suffix("/immutability") {
        return non_empty(name).map(|name| Api::Immutability { name });
    }
    for (suffix, history) in [("/history", true), ("/rollback", false)] {
        if let Some((name, tag)) = r.strip_suffix(suffix).and_then(|p| p.rsplit_once("/tags/")) {
            let (name, tag) = (non_empty(name)?, non_empty(tag)?);
            return Some(if history {
                Api::History { name, tag }
            } else {
                Api::Rollback { name, tag }
            });
        }
    }
    if let Some(name) = r.strip_suffix("/tags") {
        return non_empty(name).map(|name| Api::Tags { name });
    }
    None
}

fn ui(rest: &str) -> Option<Ui<'_>> {
    match rest {
        "repos" | "repos/" => return Some(Ui::Repos),
        "namespaces" => return Some(Ui::Namespaces),
        "login" => return Some(Ui::Login),
        "style.css" => return Some(Ui::Style),
        "logout" => return Some(Ui::Logout),
        _ => {}
    }
    if let Some(name) = rest.strip_prefix("repos/") {
        return non_empty(name).map(|name| Ui::Repo { name });
    }
    if let Some(full) = rest.strip_prefix("images/") {
        if let Some((name, reference, full, view)) = image_contents(full) {
            return Some(Ui::ImageContents {
                name,
                reference,
                full,
                view,
            });
        }
        let (name, reference) = split_reference(full);
        return non_empty(name).map(|name| Ui::Image {
            name,
            reference,
            full,
        });
    }
    if let Some(digest) = rest.strip_prefix("blobs/") {
        return non_empty(digest).map(|digest| Ui::Blob { digest });
    }
    None
}

/// The route template of a request path (for logs and metrics: bounded
/// values, never raw paths) and the repository it names, if any.
pub fn template(path: &str) -> (&'static str, Option<&str>) {
    let e = endpoint(path);
    let t = match &e {
        Endpoint::V2Base => "/v2/",
        Endpoint::V2(r) => match r {
            Route::Catalog => "/v2/_catalog",
            Route::Manifest { .. } => "/v2/{name}/manifests/{reference}",
            Route::Blob { .. } => "/v2/{name}/blobs/{digest}",
            Route::UploadStart { .. } => "/v2/{name}/blobs/uploads/",
            Route::Upload { .. } => "/v2/{name}/blobs/uploads/{uuid}",
            Route::Tags { .. } => "/v2/{name}/tags/list",
            Route::Referrers { .. } => "/v2/{name}/referrers/{digest}",
        },
        Endpoint::Api(a) => match a {
            Api::Repositories => "/api/v1/repositories",
            Api::Tags { .. } => "/api/v1/repositories/{name}/tags",
            Api::History { .. } => "/api/v1/repositories/{name}/tags/{tag}/history",
            Api::Rollback { .. } => "/api/v1/repositories/{name}/tags/{tag}/rollback",
            Api::Lifecycle { .. } => "/api/v1/repositories/{name}/lifecycle",
            Api::LifecyclePreview { .. } => "/api/v1/repositories/{name}/lifecycle/preview",
            Api::LifecycleRun { .. } => "/api/v1/repositories/{name}/lifecycle/run",
            Api::Immutability { .. } => "/api/v1/repositories/{name}/immutability",
            Api::Image { .. } => "/api/v1/images/{reference}",
            Api::Blob { .. } => "/api/v1/blobs/{digest}",
            Api::LayerFiles { .. } => "/api/v1/repositories/{name}/layers/{digest}/files",
            Api::ImageContents { view, .. } => match view {
                Contents::Files => "/api/v1/images/{reference}/files",
                Contents::Waste => "/api/v1/images/{reference}/waste",
                Contents::Diff => "/api/v1/images/{reference}/diff",
            },
            Api::Namespaces => "/api/v1/namespaces",
            Api::Gc => "/api/v1/gc",
        },
        Endpoint::Ui(u) => match u {
            Ui::Index => "/ui",
            Ui::Repos => "/ui/repos",
            Ui::Namespaces => "/ui/namespaces",
            Ui::Repo { .. } => "/ui/repos/{name}",
            Ui::Image { .. } => "/ui/images/{reference}",
            Ui::Blob { .. } => "/ui/blobs/{digest}",
            Ui::ImageContents { view, .. } => match view {
                Contents::Files => "/ui/images/{reference}/files",
                Contents::Waste => "/ui/images/{reference}/waste",
                Contents::Diff => "/ui/images/{reference}/diff",
            },
            Ui::Style => "/ui/style.css",
            Ui::Login => "/ui/login",
            Ui::Logout => "/ui/logout",
        },
        Endpoint::Root => "/",
        Endpoint::Ecr(call) => call.operation.unwrap_or("ecr:{unknown}"),
        Endpoint::Token => "/token",
        Endpoint::TokenKeys => "/token/jwks.json",
        Endpoint::Health => "/healthz",
        Endpoint::Ready => "/readyz",
        Endpoint::Metrics => "/metrics",
        Endpoint::Unknown(Surface::V2) => "/v2/{unknown}",
        Endpoint::Unknown(Surface::Api) => "/api/v1/{unknown}",
        Endpoint::Unknown(Surface::Ui) => "/ui/{unknown}",
        Endpoint::Unknown(Surface::Other) => "{unknown}",
    };
    (t, e.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            template("/v2/a/b/blobs/sha256:00"),
            ("/v2/{name}/blobs/{digest}", Some("a/b"))
        );
        assert_eq!(template("/v2/"), ("/v2/", None));
        assert_eq!(template("/v2/_catalog"), ("/v2/_catalog", None));
        assert_eq!(
            template("/v2/x/blobs/uploads/123"),
            ("/v2/{name}/blobs/uploads/{uuid}", Some("x"))
        );
        assert_eq!(template("/v2/nope"), ("/v2/{unknown}", None));
        assert_eq!(
            template("/api/v1/images/team/app:v1"),
            ("/api/v1/images/{reference}", Some("team/app"))
        );
        assert_eq!(
            template("/ui/repos/team/app"),
            ("/ui/repos/{name}", Some("team/app"))
        );
        assert_eq!(template("/healthz"), ("/healthz", None));
        assert_eq!(template("/etc/passwd"), ("{unknown}", None));
    }

    #[test]
    fn repository_settings_and_tag_writes_have_templates() {
        assert_eq!(
            template("/api/v1/repositories/team/app/lifecycle/preview"),
            (
                "/api/v1/repositories/{name}/lifecycle/preview",
                Some("team/app")
            )
        );
        assert_eq!(
            template("/api/v1/repositories/team/app/tags/prod/rollback"),
            (
                "/api/v1/repositories/{name}/tags/{tag}/rollback",
                Some("team/app")
            )
        );
        assert_eq!(template("/api/v1/gc"), ("/api/v1/gc", None));
        assert_eq!(template("/metrics"), ("/metrics", None));
    }

    #[test]
    fn api_routes_name_their_repository() {
        fn api(p: &str) -> Option<Api<'_>> {
            match endpoint(p) {
                Endpoint::Api(a) => Some(a),
                _ => None,
            }
        }
        assert_eq!(
            api("/api/v1/repositories/a/lifecycle/lifecycle"),
            Some(Api::Lifecycle {
                name: "a/lifecycle"
            })
        );
        assert_eq!(
            api("/api/v1/repositories/a/b/tags/v1/history"),
            Some(Api::History {
                name: "a/b",
                tag: "v1"
            })
        );
        assert_eq!(
            api("/api/v1/images/a/b@sha256:00"),
            Some(Api::Image {
                name: "a/b",
                reference: "sha256:00",
                full: "a/b@sha256:00"
            })
        );
        assert_eq!(
            api("/api/v1/repositories/a/layers/b/layers/sha256:00/files"),
            Some(Api::LayerFiles {
                name: "a/layers/b",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            api("/api/v1/images/a/files:v1/files"),
            Some(Api::ImageContents {
                name: "a/files",
                reference: "v1",
                full: "a/files:v1",
                view: Contents::Files
            })
        );
        assert_eq!(
            api("/api/v1/images/a@sha256:00/waste"),
            Some(Api::ImageContents {
                name: "a",
                reference: "sha256:00",
                full: "a@sha256:00",
                view: Contents::Waste
            })
        );
        // No reference written: the repository `a/files` itself.
        assert_eq!(
            api("/api/v1/images/a/files"),
            Some(Api::Image {
                name: "a/files",
                reference: "latest",
                full: "a/files"
            })
        );
        assert_eq!(api("/api/v1/repositories//layers/sha256:00/files"), None);
        assert_eq!(api("/api/v1/repositories//tags"), None);
        assert_eq!(api("/api/v1/repositories/x/tags//history"), None);
        assert_eq!(api("/api/v1/nothing"), None);
        assert_eq!(endpoint("/api/v1/nothing"), Endpoint::Unknown(Surface::Api));
    }
}
