//! The routes of the distribution API under `/v2/`. Repository names
//! contain slashes, so routes are recognised from the end of the path, not
//! by a router pattern.

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
}
