//! Docker token scopes: `repository:team/app:pull,push`, `registry:catalog:*`.
//!
//! Grammar (distribution `docs/spec/auth/scope.md`):
//! `resourcetype ":" resourcename ":" action [ "," action ]*`, several scopes
//! in one parameter separated by spaces. The spec's resource name may carry a
//! `host:port/` prefix; ours never does (a registry's repositories follow the
//! OCI name grammar), so the name is everything between the first and the
//! last `:` and must then be a valid OCI repository name. That one rule
//! rejects ports, traversal (`../x`), globs (`team/*`) and upper case.
//!
//! Unknown *actions* are dropped, not an error: the spec lets a token server
//! grant a subset, and clients send actions we do not model (`repository(plugin)`
//! aside, which is an unknown *type* and refused). Unknown *resource types* are
//! an error, so a typo never silently turns into an empty grant.

use regex::Regex;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

/// OCI distribution spec repository name grammar.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});

/// Same limit as the storage crate: `host/name` must stay within 255
/// characters for Docker clients.
pub const MAX_NAME_LEN: usize = 255;

/// Upper bound on scopes in one token request. Docker asks for one to three
/// (a push with cross-repository mounts); the bound caps the work an
/// anonymous `GET /token` can cause.
pub const MAX_SCOPES: usize = 64;

/// Whether `name` is a valid OCI repository name (and so a valid scope name).
pub fn is_valid_repository_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && NAME.is_match(name)
}

/// One action on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// `None` for anything but the three names: callers decide whether an
    /// unknown action is dropped (scope requests) or an error (config).
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Action`]s, copied around freely (one byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);
    pub const ALL: Actions = Actions(7);
    pub const PULL: Actions = Actions(1);

    pub fn of(actions: &[Action]) -> Actions {
        actions.iter().fold(Actions::NONE, |a, &x| a.with(x))
    }

    pub fn with(self, a: Action) -> Actions {
        Actions(self.0 | a.bit())
    }

    pub fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, o: Actions) -> Actions {
        Actions(self.0 | o.0)
    }

    pub fn intersect(self, o: Actions) -> Actions {
        Actions(self.0 & o.0)
    }

    /// In a fixed order (pull, push, delete) so printed scopes are stable.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// Parses a comma-separated list; `*` means all; unknown names dropped.
    pub fn parse_lenient(list: &str) -> Actions {
        list.split(',').fold(Actions::NONE, |acc, a| match a {
            "*" => Actions::ALL,
            _ => Action::parse(a).map_or(acc, |x| acc.with(x)),
        })
    }

    /// The JSON `actions` array of a token's `access` entry.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|a| a.as_str().to_string()).collect()
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Actions {
    /// Comma-separated, as in a scope string; empty set prints nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

/// What a scope is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `repository:<name>:...` with a validated OCI name.
    Repository(String),
    /// `registry:catalog:*`, the right to call `/v2/_catalog`.
    Catalog,
    /// `registry:admin:*`, the right to the registry-wide operations of an
    /// administrator (a collection now, its reports). Granted only to
    /// administrators, and only when asked for: a token says so or it is
    /// no administrator's token, whoever its subject.
    Admin,
}

/// One resource scope: a resource and the actions asked for or granted.
///
/// For [`Resource::Catalog`] the only meaningful action is `*`, represented as
/// [`Actions::ALL`]; any other action list parses to an empty set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource: Resource,
    pub actions: Actions,
}

impl Scope {
    pub fn repository(name: &str, actions: Actions) -> Result<Scope, ScopeError> {
        if !is_valid_repository_name(name) {
            return Err(ScopeError::InvalidName(clip(name)));
        }
        Ok(Scope {
            resource: Resource::Repository(name.to_string()),
            actions,
        })
    }

    pub fn catalog() -> Scope {
        Scope {
            resource: Resource::Catalog,
            actions: Actions::ALL,
        }
    }

    pub fn admin() -> Scope {
        Scope {
            resource: Resource::Admin,
            actions: Actions::ALL,
        }
    }

    /// `type` field of a token `access` entry.
    pub fn resource_type(&self) -> &'static str {
        match self.resource {
            Resource::Repository(_) => "repository",
            Resource::Catalog | Resource::Admin => "registry",
        }
    }

    /// `name` field of a token `access` entry.
    pub fn resource_name(&self) -> &str {
        match &self.resource {
            Resource::Repository(n) => n,
            Resource::Catalog => "catalog",
            Resource::Admin => "admin",
        }
    }

    /// `actions` field of a token `access` entry.
    pub fn action_names(&self) -> Vec<String> {
        match self.resource {
            Resource::Catalog | Resource::Admin if !self.actions.is_empty() => {
                vec!["*".to_string()]
            }
            Resource::Catalog | Resource::Admin => Vec::new(),
            Resource::Repository(_) => self.actions.names(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Resource::Repository(n) => write!(f, "repository:{n}:{}", self.actions),
            Resource::Catalog if self.actions.is_empty() => f.write_str("registry:catalog:"),
            Resource::Catalog => f.write_str("registry:catalog:*"),
            Resource::Admin if self.actions.is_empty() => f.write_str("registry:admin:"),
            Resource::Admin => f.write_str("registry:admin:*"),
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        let (rtype, rest) = s
            .split_once(':')
            .ok_or_else(|| ScopeError::Malformed(clip(s)))?;
        // The name may not contain ':' for us, but splitting on the *last*
        // one keeps the spec's parsing rule and makes `host:5000/x` reach the
        // name check with a clear error rather than a misparse.
        let (name, actions) = rest
            .rsplit_once(':')
            .ok_or_else(|| ScopeError::Malformed(clip(s)))?;
        match rtype {
            "repository" => Scope::repository(name, Actions::parse_lenient(actions)),
            "registry" if name == "catalog" || name == "admin" => Ok(Scope {
                resource: if name == "admin" {
                    Resource::Admin
                } else {
                    Resource::Catalog
                },
                actions: if actions.split(',').any(|a| a == "*") {
                    Actions::ALL
                } else {
                    Actions::NONE
                },
            }),
            "registry" => Err(ScopeError::UnknownRegistryResource(clip(name))),
            other => Err(ScopeError::UnknownResourceType(clip(other))),
        }
    }
}

/// Parses the `scope` parameters of a token request: each may hold several
/// scopes separated by spaces (the POST form does this; GET repeats the
/// parameter). Empty parameters are allowed (a refresh-token request may ask
/// for nothing).
pub fn parse_scopes<'a, I>(params: I) -> Result<Vec<Scope>, ScopeError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out = Vec::new();
    for p in params {
        for s in p.split(' ').filter(|s| !s.is_empty()) {
            if out.len() == MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            out.push(s.parse()?);
        }
    }
    Ok(out)
}

/// Merges scopes on the same resource (union of actions), drops empty ones,
/// keeping first-seen order: a token's `access` list and the OAuth `scope`
/// answer stay short and deterministic.
pub fn merge_scopes(scopes: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for s in scopes {
        if s.actions.is_empty() {
            continue;
        }
        match out.iter_mut().find(|o| o.resource == s.resource) {
            Some(o) => o.actions = o.actions.union(s.actions),
            None => out.push(s),
        }
    }
    out
}

/// Space-separated, the form of the OAuth2 `scope` answer and of a
/// `WWW-Authenticate` challenge's `scope` parameter.
pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a scope string was refused. The offending text is included (clipped)
/// because scope strings are not secrets and the client needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope {0:?}: expected type:name:actions")]
    Malformed(String),
    #[error("unknown resource type {0:?}: expected \"repository\" or \"registry\"")]
    UnknownResourceType(String),
    #[error("unknown registry resource {0:?}: only \"catalog\" and \"admin\" exist")]
    UnknownRegistryResource(String),
    #[error("invalid repository name {0:?} in scope: names follow the OCI grammar (lower case, no wildcards, no \"..\", no host or port)")]
    InvalidName(String),
    #[error("too many scopes in one request (at most {MAX_SCOPES})")]
    TooMany,
}

/// Error messages echo input; bound it so a huge parameter cannot bloat a
/// log line or a response.
fn clip(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Scope, ScopeError> {
        s.parse()
    }

    #[test]
    fn parses_repository_scopes() {
        let s = p("repository:team/app:pull,push").unwrap();
        assert_eq!(s.resource, Resource::Repository("team/app".into()));
        assert_eq!(s.actions, Actions::of(&[Action::Pull, Action::Push]));
        assert_eq!(s.to_string(), "repository:team/app:pull,push");

        let s = p("repository:a:*").unwrap();
        assert_eq!(s.actions, Actions::ALL);
        assert_eq!(s.to_string(), "repository:a:pull,push,delete");

        let s = p("repository:a.b_c--d/e__f:delete").unwrap();
        assert_eq!(s.actions, Actions::of(&[Action::Delete]));
    }

    #[test]
    fn action_order_is_canonical_and_duplicates_collapse() {
        let s = p("repository:x:push,pull,push").unwrap();
        assert_eq!(s.to_string(), "repository:x:pull,push");
        assert_eq!(s.action_names(), vec!["pull", "push"]);
    }

    #[test]
    fn unknown_actions_are_dropped_not_errors() {
        let s = p("repository:x:pull,fly,PUSH").unwrap();
        assert_eq!(s.actions, Actions::PULL);
        let s = p("repository:x:").unwrap();
        assert!(s.actions.is_empty());
        let s = p("repository:x:teleport").unwrap();
        assert!(s.actions.is_empty());
    }

    #[test]
    fn admin_scope() {
        let s = p("registry:admin:*").unwrap();
        assert_eq!(s, Scope::admin());
        assert_eq!(s.to_string(), "registry:admin:*");
        assert_eq!(
            (s.resource_type(), s.resource_name()),
            ("registry", "admin")
        );
        assert_eq!(s.action_names(), vec!["*"]);
        assert!(p("registry:admin:pull").unwrap().actions.is_empty());
    }

    #[test]
    fn catalog_scope() {
        let s = p("registry:catalog:*").unwrap();
        assert_eq!(s, Scope::catalog());
        assert_eq!(s.to_string(), "registry:catalog:*");
        assert_eq!(s.resource_type(), "registry");
        assert_eq!(s.resource_name(), "catalog");
        assert_eq!(s.action_names(), vec!["*"]);
        // Only `*` means something on the catalog.
        assert!(p("registry:catalog:pull").unwrap().actions.is_empty());
        assert_eq!(
            p("registry:users:*"),
            Err(ScopeError::UnknownRegistryResource("users".into()))
        );
    }

    #[test]
    fn refuses_traversal_wildcards_and_bad_names() {
        for bad in [
            "repository:team/*:pull",
            "repository:team/**:pull",
            "repository:*:pull",
            "repository:../x:pull",
            "repository:a/../b:pull",
            "repository:./a:pull",
            "repository:a/./b:pull",
            "repository:/a:pull",
            "repository:a/:pull",
            "repository:a//b:pull",
            "repository:Team/app:pull",
            "repository:team/app?:pull",
            "repository:team/[ab]:pull",
            "repository:host:5000/x:pull",
            "repository:localhost:5000/x:pull",
            "repository:a%2f..:pull",
            "repository::pull",
            "repository:a\\b:pull",
            "repository:a\u{0}b:pull",
        ] {
            assert!(
                matches!(p(bad), Err(ScopeError::InvalidName(_))),
                "{bad}: {:?}",
                p(bad)
            );
        }
        let long = format!("repository:{}:pull", "a".repeat(256));
        assert!(matches!(p(&long), Err(ScopeError::InvalidName(_))));
        let max = format!("repository:{}:pull", "a".repeat(255));
        assert!(p(&max).is_ok());
    }

    #[test]
    fn refuses_unknown_types_and_malformed() {
        assert_eq!(
            p("repo:x:pull"),
            Err(ScopeError::UnknownResourceType("repo".into()))
        );
        assert_eq!(
            p("repository(plugin):x:pull"),
            Err(ScopeError::UnknownResourceType("repository(plugin)".into()))
        );
        assert!(matches!(p("repository"), Err(ScopeError::Malformed(_))));
        assert!(matches!(p("repository:x"), Err(ScopeError::Malformed(_))));
        assert!(matches!(p(""), Err(ScopeError::Malformed(_))));
    }

    #[test]
    fn several_scopes_in_one_parameter_and_repeated_parameters() {
        let v = parse_scopes([
            "repository:a:pull repository:b:pull,push",
            "",
            "registry:catalog:*",
        ])
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            format_scopes(&v),
            "repository:a:pull repository:b:pull,push registry:catalog:*"
        );
        // Doubled spaces are tolerated.
        assert_eq!(
            parse_scopes(["repository:a:pull  repository:b:push"])
                .unwrap()
                .len(),
            2
        );
        // One bad scope fails the request, naming it.
        assert_eq!(
            parse_scopes(["repository:a:pull repository:../b:pull"]),
            Err(ScopeError::InvalidName("../b".into()))
        );
    }

    #[test]
    fn scope_count_is_bounded() {
        let many = vec!["repository:a:pull"; MAX_SCOPES];
        assert_eq!(
            parse_scopes(many.iter().copied()).unwrap().len(),
            MAX_SCOPES
        );
        let too_many = vec!["repository:a:pull"; MAX_SCOPES + 1];
        assert_eq!(
            parse_scopes(too_many.iter().copied()),
            Err(ScopeError::TooMany)
        );
    }

    #[test]
    fn merge_unions_same_resource_and_drops_empty() {
        let v =
            parse_scopes(["repository:a:pull repository:b: repository:a:push registry:catalog:*"])
                .unwrap();
        let m = merge_scopes(v);
        assert_eq!(
            format_scopes(&m),
            "repository:a:pull,push registry:catalog:*"
        );
    }

    #[test]
    fn error_messages_are_clipped() {
        let huge = format!("repository:{}:pull", "é".repeat(1000));
        let ScopeError::InvalidName(n) = p(&huge).unwrap_err() else {
            panic!("expected InvalidName");
        };
        assert!(n.len() < 320, "{}", n.len());
    }

    #[test]
    fn round_trip() {
        for s in [
            "repository:a/b:pull",
            "repository:a:pull,push,delete",
            "registry:catalog:*",
        ] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
    }
}
