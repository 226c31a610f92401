//! What a `/v2/` request needs to be allowed: pure, from the method and the
//! route, so every endpoint's requirement is one table, tested here.

use crate::routes::Route;
use auth::Action;
use axum::http::Method;

/// One thing a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any valid credentials or token (the `/v2/` base, which clients call
    /// to learn how to authenticate).
    Authenticated,
    /// An action on a repository.
    On(String, Action),
    /// `registry:catalog:*`.
    Catalog,
}

/// What a request needs, and the scope a client should ask a token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    /// The challenge's `scope` (`repository:team/app:pull,push`), if any.
    pub scope: Option<String>,
}

impl Requirement {
    fn on(name: &str, action: Action) -> Requirement {
        // A push needs pull too (clients check for blobs first), and Docker
        // asks for both in one token.
        let actions = match action {
            Action::Push => "pull,push",
            a => a.as_str(),
        };
        Requirement {
            need: Need::On(name.to_owned(), action),
            scope: Some(format!("repository:{name}:{actions}")),
        }
    }
}

/// The requirement of `method` on `route` (`None`: the base `/v2/`).
pub fn requirement(method: &Method, route: Option<&Route<'_>>) -> Requirement {
    let Some(route) = route else {
        return Requirement {
            need: Need::Authenticated,
            scope: None,
        };
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    match route {
        Route::Catalog => Requirement {
            need: Need::Catalog,
            scope: Some("registry:catalog:*".into()),
        },
        Route::Manifest { name, .. } | Route::Blob { name, .. } => {
            if read {
                Requirement::on(name, Action::Pull)
            } else if *method == Method::DELETE {
                Requirement::on(name, Action::Delete)
            } else {
                Requirement::on(name, Action::Push)
            }
        }
        Route::UploadStart { name } | Route::Upload { name, .. } => {
            Requirement::on(name, Action::Push)
        }
        Route::Tags { name } | Route::Referrers { name, .. } => Requirement::on(name, Action::Pull),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path: &str) -> Requirement {
        let route = crate::routes::parse(path);
        requirement(&method, route.as_ref())
    }

    #[test]
    fn every_endpoint_has_its_action() {
        let on = |r: &str, a| Need::On(r.to_string(), a);
        assert_eq!(
            need(Method::GET, "a/b/manifests/v1").need,
            on("a/b", Action::Pull)
        );
        assert_eq!(
            need(Method::HEAD, "a/blobs/sha256:0").need,
            on("a", Action::Pull)
        );
        assert_eq!(
            need(Method::PUT, "a/manifests/v1").need,
            on("a", Action::Push)
        );
        assert_eq!(
            need(Method::DELETE, "a/manifests/v1").need,
            on("a", Action::Delete)
        );
        assert_eq!(
            need(Method::DELETE, "a/blobs/sha256:0").need,
            on("a", Action::Delete)
        );
        for m in [
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::GET,
            Method::DELETE,
        ] {
            assert_eq!(need(m, "a/blobs/uploads/x").need, on("a", Action::Push));
        }
        assert_eq!(
            need(Method::POST, "a/blobs/uploads/").need,
            on("a", Action::Push)
        );
        assert_eq!(need(Method::GET, "a/tags/list").need, on("a", Action::Pull));
        assert_eq!(
            need(Method::GET, "a/referrers/sha256:0").need,
            on("a", Action::Pull)
        );
        assert_eq!(need(Method::GET, "_catalog").need, Need::Catalog);
        assert_eq!(requirement(&Method::GET, None).need, Need::Authenticated);
    }

    #[test]
    fn challenges_ask_for_the_scope_clients_request() {
        assert_eq!(
            need(Method::PUT, "team/app/manifests/v1").scope.as_deref(),
            Some("repository:team/app:pull,push")
        );
        assert_eq!(
            need(Method::GET, "team/app/manifests/v1").scope.as_deref(),
            Some("repository:team/app:pull")
        );
        assert_eq!(
            need(Method::DELETE, "team/app/manifests/v1")
                .scope
                .as_deref(),
            Some("repository:team/app:delete")
        );
        assert_eq!(
            need(Method::GET, "_catalog").scope.as_deref(),
            Some("registry:catalog:*")
        );
    }
}
