//! What every route of every surface requires: one table, pure, from the
//! method and the route ([`crate::routes::Endpoint`]), tested here route by
//! route. The gate enforces it before any handler runs
//! ([`super::authorize`]); a route missing here is refused, so a new
//! endpoint cannot be reached without a line in this table.

use crate::routes::ecr::OpKind;
use crate::routes::{Api, Endpoint, Route, Ui};
use auth::Action;
use axum::http::Method;

/// One thing a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing (health, the token server and the sign-in form, which
    /// check credentials themselves).
    Anyone,
    /// Any valid credentials or token (the `/v2/` base, which clients call
    /// to learn how to authenticate).
    Authenticated,
    /// An action on a repository.
    On(String, Action),
    /// `registry:catalog:*`.
    Catalog,
    /// A listing anyone may ask for, showing only what the caller may read
    /// (pull) of it.
    Browse,
    /// An administrator, and for a token, `registry:admin:*`.
    Admin,
}

/// How a route's callers identify themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization` (Basic or Bearer) only.
    Header,
    /// A signed-in browser's session cookie, else `Authorization`: reads
    /// of `/api/v1`, which the web view's scripts-free pages link to.
    /// Writes never take the cookie (no cross-site request can make them).
    SessionOrHeader,
    /// The session cookie only (the web view's pages).
    Session,
    /// An AWS Signature Version 4 over the whole request, with an access
    /// key the registry issued (the ECR API); the body is read first.
    SigV4,
    /// None: the route authenticates on its own, or needs nothing.
    None,
}

/// What a request needs, how its caller is identified, and the scope a
/// client should ask a token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    pub credentials: Credentials,
    /// The challenge's `scope` (`repository:team/app:pull,push`), if any.
    pub scope: Option<String>,
}

impl Requirement {
    fn on(name: &str, action: Action, credentials: Credentials) -> Requirement {
        // A push needs pull too (clients check for blobs first), and Docker
        // asks for both in one token.
        let actions = match action {
            Action::Push => "pull,push",
            a => a.as_str(),
        };
        Requirement {
            need: Need::On(name.to_owned(), action),
            credentials,
            scope: Some(format!("repository:{name}:{actions}")),
        }
    }

    fn of(need: Need, credentials: Credentials) -> Requirement {
        let scope = match need {
            Need::Catalog => Some("registry:catalog:*".to_owned()),
            Need::Admin => Some("registry:admin:*".to_owned()),
            _ => None,
        };
        Requirement {
            need,
            credentials,
            scope,
        }
    }
}

/// The requirement of `method` on `endpoint`; `None`: the route does not
/// take that method (405), or there is no such route (404).
pub fn requirement(method: &Method, endpoint: &Endpoint<'_>) -> Option<Requirement> {
    use Credentials as C;
    let read = matches!(*method, Method::GET | Method::HEAD);
    let post = *method == Method::POST;
    let (put, delete) = (*method == Method::PUT, *method == Method::DELETE);
    Some(match endpoint {
        Endpoint::V2Base => Requirement::of(Need::Authenticated, C::Header),
        // The distribution API decides by the kind of method; a method a
        // route does not serve is refused by its handler after the check,
        // as the spec's clients expect (UNSUPPORTED).
        Endpoint::V2(route) => match route {
            Route::Catalog => Requirement::of(Need::Catalog, C::Header),
            Route::Manifest { name, .. } | Route::Blob { name, .. } => {
                let action = if read {
                    Action::Pull
                } else if delete {
                    Action::Delete
                } else {
                    Action::Push
                };
                Requirement::on(name, action, C::Header)
            }
            Route::UploadStart { name } | Route::Upload { name, .. } => {
                Requirement::on(name, Action::Push, C::Header)
            }
            Route::Tags { name } | Route::Referrers { name, .. } => {
                Requirement::on(name, Action::Pull, C::Header)
            }
        },
        Endpoint::Api(api) => match api {
            Api::Repositories | Api::Blob { .. } | Api::Namespaces if read => {
                Requirement::of(Need::Browse, C::SessionOrHeader)
            }
            Api::Tags { name } | Api::History { name, .. } | Api::Image { name, .. } if read => {
                Requirement::on(name, Action::Pull, C::SessionOrHeader)
            }
            // A diff's other image is checked by its handler (pull too).
            Api::LayerFiles { name, .. } | Api::ImageContents { name, .. } if read => {
                Requirement::on(name, Action::Pull, C::SessionOrHeader)
            }
            Api::Lifecycle { name } | Api::Immutability { name } if read => {
                Requirement::on(name, Action::Pull, C::SessionOrHeader)
            }
            // Moving a tag is what a push does.
            Api::Rollback { name, .. } if post => Requirement::on(name, Action::Push, C::Header),
            // Trying a policy changes nothing.
            Api::LifecyclePreview { name } if post => {
                Requirement::on(name, Action::Pull, C::Header)
            }
            // Policies and immutability decide what goes and what pushes
            // may do: the strongest per-repository right.
            Api::LifecycleRun { name } if post => Requirement::on(name, Action::Delete, C::Header),
            Api::Lifecycle { name } if put || delete => {
                Requirement::on(name, Action::Delete, C::Header)
            }
            Api::Immutability { name } if put => Requirement::on(name, Action::Delete, C::Header),
            // Collections act on every repository; their reports name any.
            Api::Gc if read || post => Requirement::of(Need::Admin, C::Header),
            _ => return None,
        },
        Endpoint::Ui(ui) => match ui {
            Ui::Index | Ui::Repos | Ui::Namespaces | Ui::Blob { .. } if read => {
                Requirement::of(Need::Browse, C::Session)
            }
            Ui::Repo { name } | Ui::Image { name, .. } | Ui::ImageContents { name, .. } if read => {
                Requirement::on(name, Action::Pull, C::Session)
            }
            Ui::Style if read => Requirement::of(Need::Anyone, C::None),
            // The forms check the password or the session's CSRF token.
            Ui::Login if read || post => Requirement::of(Need::Anyone, C::None),
            Ui::Logout if post => Requirement::of(Need::Anyone, C::None),
            _ => return None,
        },
        Endpoint::Root if read => Requirement::of(Need::Anyone, C::None),
        // The ECR API: each operation as the same right on the repository
        // it names as on the other surfaces. An operation that names no
        // repository (a malformed body) only needs a valid signature: its
        // handler answers InvalidParameterException and touches nothing.
        Endpoint::Ecr(call) if post => {
            let need = match (call.kind, &call.repository) {
                (OpKind::Repo(action) | OpKind::Resource(action), Some(name)) => {
                    Need::On(name.clone(), action)
                }
                (OpKind::Repo(_) | OpKind::Resource(_), None) => Need::Authenticated,
                (OpKind::Signed | OpKind::Unsupported, _) => Need::Authenticated,
                (OpKind::Browse, _) => Need::Browse,
                (OpKind::Admin, _) => Need::Admin,
            };
            Requirement {
                need,
                credentials: C::SigV4,
                scope: None,
            }
        }
        Endpoint::Token if read || post => Requirement::of(Need::Anyone, C::None),
        Endpoint::TokenKeys | Endpoint::Health | Endpoint::Ready if read => {
            Requirement::of(Need::Anyone, C::None)
        }
        // Route templates, counts and timings: no repository names or
        // other data (label values are bounded); scraped like health.
        Endpoint::Metrics if read => Requirement::of(Need::Anyone, C::None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::endpoint;

    fn need(method: Method, path: &str) -> Option<Need> {
        requirement(&method, &endpoint(path)).map(|r| r.need)
    }

    fn creds(method: Method, path: &str) -> Credentials {
        requirement(&method, &endpoint(path))
            .expect("a route")
            .credentials
    }

    fn on(r: &str, a: Action) -> Option<Need> {
        Some(Need::On(r.to_string(), a))
    }

    fn ecr(op: &str, body: serde_json::Value) -> Option<Requirement> {
        let call = crate::routes::EcrCall::parse(
            &format!("{}{op}", crate::routes::ecr::TARGET_PREFIX),
            &body,
        );
        requirement(&Method::POST, &Endpoint::Ecr(call))
    }

    /// Every operation of the model, one by one: the right it needs on
    /// the repository it names, always by signature.
    #[test]
    fn every_ecr_operation_has_its_requirement() {
        use crate::routes::ecr::OPERATIONS;
        let body = serde_json::json!({
            "repositoryName": "team/app",
            "resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/team/app",
        });
        for (op, _) in OPERATIONS {
            let want = match op {
                "GetAuthorizationToken" => Need::Authenticated,
                "DescribeRepositories" => Need::Browse,
                "DescribeRegistry"
                | "CreatePullThroughCacheRule"
                | "DescribePullThroughCacheRules"
                | "UpdatePullThroughCacheRule"
                | "DeletePullThroughCacheRule"
                | "ValidatePullThroughCacheRule" => Need::Admin,
                "DescribeImages"
                | "ListImages"
                | "BatchGetImage"
                | "BatchCheckLayerAvailability"
                | "GetDownloadUrlForLayer"
                | "GetLifecyclePolicy"
                | "StartLifecyclePolicyPreview"
                | "GetLifecyclePolicyPreview"
                | "ListTagsForResource" => Need::On("team/app".into(), Action::Pull),
                "CreateRepository"
                | "PutImage"
                | "InitiateLayerUpload"
                | "UploadLayerPart"
                | "CompleteLayerUpload"
                | "TagResource"
                | "UntagResource" => Need::On("team/app".into(), Action::Push),
                "DeleteRepository"
                | "BatchDeleteImage"
                | "PutLifecyclePolicy"
                | "DeleteLifecyclePolicy"
                | "PutImageTagMutability" => Need::On("team/app".into(), Action::Delete),
                // Not served: a signed caller hears so, in ECR's shape.
                _ => Need::Authenticated,
            };
            let r = ecr(op, body.clone()).expect(op);
            assert_eq!(r.need, want, "{op}");
            assert_eq!(r.credentials, Credentials::SigV4, "{op}");
        }
        // Not in the model, or no repository named: a signature only, and
        // the handler refuses.
        assert_eq!(ecr("Nope", body.clone()).unwrap().need, Need::Authenticated);
        assert_eq!(
            ecr("BatchDeleteImage", serde_json::json!({})).unwrap().need,
            Need::Authenticated
        );
        // Only POST.
        let call = crate::routes::EcrCall::parse("x", &body);
        assert_eq!(requirement(&Method::GET, &Endpoint::Ecr(call)), None);
    }

    #[test]
    fn every_v2_endpoint_has_its_action() {
        use Method as M;
        assert_eq!(
            need(M::GET, "/v2/a/b/manifests/v1"),
            on("a/b", Action::Pull)
        );
        assert_eq!(need(M::HEAD, "/v2/a/blobs/sha256:0"), on("a", Action::Pull));
        assert_eq!(need(M::PUT, "/v2/a/manifests/v1"), on("a", Action::Push));
        assert_eq!(
            need(M::DELETE, "/v2/a/manifests/v1"),
            on("a", Action::Delete)
        );
        assert_eq!(
            need(M::DELETE, "/v2/a/blobs/sha256:0"),
            on("a", Action::Delete)
        );
        for m in [M::POST, M::PATCH, M::PUT, M::GET, M::DELETE] {
            assert_eq!(need(m, "/v2/a/blobs/uploads/x"), on("a", Action::Push));
        }
        assert_eq!(need(M::POST, "/v2/a/blobs/uploads/"), on("a", Action::Push));
        assert_eq!(need(M::GET, "/v2/a/tags/list"), on("a", Action::Pull));
        assert_eq!(
            need(M::GET, "/v2/a/referrers/sha256:0"),
            on("a", Action::Pull)
        );
        assert_eq!(need(M::GET, "/v2/_catalog"), Some(Need::Catalog));
        assert_eq!(need(M::GET, "/v2/"), Some(Need::Authenticated));
        assert_eq!(need(M::GET, "/v2"), Some(Need::Authenticated));
        assert_eq!(need(M::GET, "/v2/nothing"), None);
        for p in ["/v2/a/manifests/v1", "/v2/_catalog", "/v2/"] {
            assert_eq!(creds(M::GET, p), Credentials::Header, "{p}");
        }
    }

    #[test]
    fn every_api_endpoint_has_its_requirement() {
        use Method as M;
        let r = "/api/v1/repositories/team/app";
        // Reads: a browser session or header credentials.
        for (path, want) in [
            ("/api/v1/repositories".to_string(), Some(Need::Browse)),
            ("/api/v1/namespaces".to_string(), Some(Need::Browse)),
            ("/api/v1/blobs/sha256:00".to_string(), Some(Need::Browse)),
            (format!("{r}/tags"), on("team/app", Action::Pull)),
            (format!("{r}/tags/v1/history"), on("team/app", Action::Pull)),
            (format!("{r}/lifecycle"), on("team/app", Action::Pull)),
            (format!("{r}/immutability"), on("team/app", Action::Pull)),
            (
                "/api/v1/images/team/app:v1".to_string(),
                on("team/app", Action::Pull),
            ),
            (
                format!("{r}/layers/sha256:00/files"),
                on("team/app", Action::Pull),
            ),
            (
                "/api/v1/images/team/app:v1/files".to_string(),
                on("team/app", Action::Pull),
            ),
            (
                "/api/v1/images/team/app@sha256:00/waste".to_string(),
                on("team/app", Action::Pull),
            ),
            (
                "/api/v1/images/team/app:v1/diff".to_string(),
                on("team/app", Action::Pull),
            ),
        ] {
            assert_eq!(need(M::GET, &path), want, "GET {path}");
            assert_eq!(creds(M::GET, &path), Credentials::SessionOrHeader, "{path}");
        }
        // Writes: header credentials only.
        for (m, path, want) in [
            (
                M::POST,
                format!("{r}/tags/v1/rollback"),
                on("team/app", Action::Push),
            ),
            (
                M::POST,
                format!("{r}/lifecycle/preview"),
                on("team/app", Action::Pull),
            ),
            (
                M::POST,
                format!("{r}/lifecycle/run"),
                on("team/app", Action::Delete),
            ),
            (
                M::PUT,
                format!("{r}/lifecycle"),
                on("team/app", Action::Delete),
            ),
            (
                M::DELETE,
                format!("{r}/lifecycle"),
                on("team/app", Action::Delete),
            ),
            (
                M::PUT,
                format!("{r}/immutability"),
                on("team/app", Action::Delete),
            ),
            (M::POST, "/api/v1/gc".to_string(), Some(Need::Admin)),
        ] {
            assert_eq!(need(m.clone(), &path), want, "{m} {path}");
            assert_eq!(creds(m, &path), Credentials::Header, "{path}");
        }
        // What an administrator's collection did is for administrators.
        assert_eq!(need(M::GET, "/api/v1/gc"), Some(Need::Admin));
        assert_eq!(creds(M::GET, "/api/v1/gc"), Credentials::Header);
        // Methods a route does not take, and routes that do not exist.
        for (m, path) in [
            (M::DELETE, "/api/v1/repositories".to_string()),
            (M::PUT, format!("{r}/tags")),
            (M::GET, format!("{r}/tags/v1/rollback")),
            (M::GET, format!("{r}/lifecycle/run")),
            (M::DELETE, format!("{r}/immutability")),
            (M::POST, format!("{r}/immutability")),
            (M::DELETE, "/api/v1/gc".to_string()),
            (M::GET, "/api/v1/users".to_string()),
        ] {
            assert_eq!(need(m.clone(), &path), None, "{m} {path}");
        }
    }

    #[test]
    fn every_ui_and_other_endpoint_has_its_requirement() {
        use Method as M;
        for p in ["/ui", "/ui/repos", "/ui/namespaces", "/ui/blobs/sha256:00"] {
            assert_eq!(need(M::GET, p), Some(Need::Browse), "{p}");
            assert_eq!(creds(M::GET, p), Credentials::Session, "{p}");
        }
        assert_eq!(need(M::GET, "/ui/repos/a/b"), on("a/b", Action::Pull));
        assert_eq!(need(M::GET, "/ui/images/a/b:v1"), on("a/b", Action::Pull));
        assert_eq!(creds(M::GET, "/ui/images/a/b:v1"), Credentials::Session);
        for p in [
            "/ui/images/a/b:v1/files",
            "/ui/images/a/b:v1/waste",
            "/ui/images/a/b:v1/diff",
        ] {
            assert_eq!(need(M::GET, p), on("a/b", Action::Pull), "{p}");
            assert_eq!(creds(M::GET, p), Credentials::Session, "{p}");
        }
        assert_eq!(need(M::POST, "/ui/images/a/b:v1/files"), None);
        assert_eq!(need(M::POST, "/ui/repos"), None);
        for (m, p) in [
            (M::GET, "/ui/login"),
            (M::POST, "/ui/login"),
            (M::POST, "/ui/logout"),
            (M::GET, "/"),
            (M::GET, "/token"),
            (M::POST, "/token"),
            (M::GET, "/token/jwks.json"),
            (M::GET, "/healthz"),
            (M::GET, "/readyz"),
            (M::GET, "/metrics"),
            (M::GET, "/ui/style.css"),
        ] {
            assert_eq!(need(m.clone(), p), Some(Need::Anyone), "{m} {p}");
            assert_eq!(creds(m, p), Credentials::None, "{p}");
        }
        for (m, p) in [
            (M::GET, "/ui/logout"),
            (M::POST, "/metrics"),
            (M::DELETE, "/token"),
            (M::GET, "/ui/nothing"),
            (M::GET, "/etc/passwd"),
        ] {
            assert_eq!(need(m.clone(), p), None, "{m} {p}");
        }
    }

    #[test]
    fn challenges_ask_for_the_scope_clients_request() {
        let scope = |m: Method, p: &str| requirement(&m, &endpoint(p)).unwrap().scope;
        assert_eq!(
            scope(Method::PUT, "/v2/team/app/manifests/v1").as_deref(),
            Some("repository:team/app:pull,push")
        );
        assert_eq!(
            scope(Method::GET, "/v2/team/app/manifests/v1").as_deref(),
            Some("repository:team/app:pull")
        );
        assert_eq!(
            scope(Method::DELETE, "/v2/team/app/manifests/v1").as_deref(),
            Some("repository:team/app:delete")
        );
        assert_eq!(
            scope(Method::GET, "/v2/_catalog").as_deref(),
            Some("registry:catalog:*")
        );
        assert_eq!(
            scope(Method::POST, "/api/v1/gc").as_deref(),
            Some("registry:admin:*")
        );
    }
}
