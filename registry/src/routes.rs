//! Parsing of `/v2/...` paths. Repository names contain slashes, so routes
//! are recognised from the end of the path, not by a router pattern.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Tags { name: &'a str },
    Referrers { name: &'a str, digest: &'a str },
    Catalog,
}

impl<'a> Route<'a> {
    /// The repository the route names, if any.
    pub fn name(&self) -> Option<&'a str> {
        match *self {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
            Route::Catalog => None,
        }
    }
}

/// Parse the part of the path after `/v2/`.
pub fn parse(path: &str) -> Option<Route<'_>> {
    if path == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = path.strip_suffix("/tags/list") {
        return non_empty(name).map(|name| Route::Tags { name });
    }
    if let Some(name) = path
        .strip_suffix("/blobs/uploads/")
        .or_else(|| path.strip_suffix("/blobs/uploads"))
    {
        return non_empty(name).map(|name| Route::UploadStart { name });
    }
    let (head, last) = path.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    let (name, kind) = head.rsplit_once('/')?;
    let name = non_empty(name)?;
    match kind {
        "manifests" => Some(Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        "uploads" => name
            .strip_suffix("/blobs")
            .and_then(non_empty)
            .map(|name| Route::Upload { name, id: last }),
        _ => None,
    }
}

/// The route template of a request path (for logs and metrics: bounded
/// values, never raw paths) and the repository it names, if any.
pub fn template(path: &str) -> (&'static str, Option<&str>) {
    if let Some(rest) = path.strip_prefix("/v2/") {
        return match parse(rest) {
            _ if rest.is_empty() => ("/v2/", None),
            Some(Route::Catalog) => ("/v2/_catalog", None),
            Some(Route::Manifest { name, .. }) => ("/v2/{name}/manifests/{reference}", Some(name)),
            Some(Route::Blob { name, .. }) => ("/v2/{name}/blobs/{digest}", Some(name)),
            Some(Route::UploadStart { name }) => ("/v2/{name}/blobs/uploads/", Some(name)),
            Some(Route::Upload { name, .. }) => ("/v2/{name}/blobs/uploads/{uuid}", Some(name)),
            Some(Route::Tags { name }) => ("/v2/{name}/tags/list", Some(name)),
            Some(Route::Referrers { name, .. }) => ("/v2/{name}/referrers/{digest}", Some(name)),
            None => ("/v2/{unknown}", None),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        if rest == "repositories" {
            return ("/api/v1/repositories", None);
        }
        if let Some(name) = rest
            .strip_prefix("repositories/")
            .and_then(|r| r.strip_suffix("/tags"))
        {
            return ("/api/v1/repositories/{name}/tags", Some(name));
        }
        if let Some(reference) = rest.strip_prefix("images/") {
            let name = reference.split(['@', ':']).next().filter(|n| !n.is_empty());
            return ("/api/v1/images/{reference}", name);
        }
        if rest.starts_with("blobs/") {
            return ("/api/v1/blobs/{digest}", None);
        }
        if rest == "gc" {
            return ("/api/v1/gc", None);
        }
        if rest == "namespaces" {
            return ("/api/v1/namespaces", None);
        }
        if let Some(r) = rest.strip_prefix("repositories/") {
            // Per-repository settings and tag writes.
            for (suffix, template) in [
                (
                    "/lifecycle/preview",
                    "/api/v1/repositories/{name}/lifecycle/preview",
                ),
                (
                    "/lifecycle/run",
                    "/api/v1/repositories/{name}/lifecycle/run",
                ),
                ("/lifecycle", "/api/v1/repositories/{name}/lifecycle"),
                ("/immutability", "/api/v1/repositories/{name}/immutability"),
            ] {
                if let Some(name) = r.strip_suffix(suffix) {
                    return (template, Some(name));
                }
            }
            for (suffix, template) in [
                ("/history", "/api/v1/repositories/{name}/tags/{tag}/history"),
                (
                    "/rollback",
                    "/api/v1/repositories/{name}/tags/{tag}/rollback",
                ),
            ] {
                if let Some((name, _)) =
                    r.strip_suffix(suffix).and_then(|p| p.rsplit_once("/tags/"))
                {
                    return (template, Some(name));
                }
            }
        }
        return ("/api/v1/{unknown}", None);
    }
    if let Some(rest) = path.strip_prefix("/ui/") {
        if rest == "repos" || rest == "repos/" {
            return ("/ui/repos", None);
        }
        if let Some(name) = rest.strip_prefix("repos/") {
            return ("/ui/repos/{name}", Some(name));
        }
        if let Some(reference) = rest.strip_prefix("images/") {
            let name = reference.split(['@', ':']).next().filter(|n| !n.is_empty());
            return ("/ui/images/{reference}", name);
        }
        if rest.starts_with("blobs/") {
            return ("/ui/blobs/{digest}", None);
        }
        return ("/ui/{unknown}", None);
    }
    let fixed = [
        "/",
        "/v2",
        "/ui",
        "/healthz",
        "/readyz",
        "/metrics",
        "/token",
        "/token/jwks.json",
        "/login",
        "/logout",
    ];
    match fixed.iter().find(|f| **f == path) {
        Some(f) => (f, None),
        None => ("{unknown}", None),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse("_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("a/b/c/tags/list"),
            Some(Route::Tags { name: "a/b/c" })
        );
        assert_eq!(
            parse("a/b/manifests/latest"),
            Some(Route::Manifest {
                name: "a/b",
                reference: "latest"
            })
        );
        assert_eq!(
            parse("lib/blobs/sha256:abc"),
            Some(Route::Blob {
                name: "lib",
                digest: "sha256:abc"
            })
        );
        assert_eq!(
            parse("x/y/blobs/uploads/"),
            Some(Route::UploadStart { name: "x/y" })
        );
        assert_eq!(
            parse("x/y/blobs/uploads/1234-ab"),
            Some(Route::Upload {
                name: "x/y",
                id: "1234-ab"
            })
        );
        // A repository may itself be called "blobs" or "manifests".
        assert_eq!(
            parse("blobs/manifests/manifests/v1"),
            Some(Route::Manifest {
                name: "blobs/manifests",
                reference: "v1"
            })
        );
        assert_eq!(
            parse("r/referrers/sha256:1"),
            Some(Route::Referrers {
                name: "r",
                digest: "sha256:1"
            })
        );
        assert_eq!(parse("manifests/latest"), None);
        assert_eq!(parse("a/blobs/"), None);
        assert_eq!(parse("a/unknown/x"), None);
        assert_eq!(parse("/tags/list"), None);
    }

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
}
