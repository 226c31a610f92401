//! Who is asking: anonymous, a user or a robot account.
//!
//! Users and robots live in the metadata database (the registry crate loads
//! them); this module only defines their shape, their names and how they
//! appear as a token subject (`sub`).
//!
//! Names: a user's name is a single OCI path component
//! (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, at most 64 characters) because user
//! NAME owns the repositories `NAME/**`; robots follow the same grammar. A
//! robot signs in and appears in tokens as `robot+NAME`: the prefix keeps the
//! two namespaces apart (a robot `alice` is not the user `alice`) and cannot be
//! a user name (`+` is outside the grammar). `+` rather than Harbor's `$`
//! because `docker login -u robot$ci` in a shell silently expands `$ci`.

use crate::glob::{Glob, GlobError};
use crate::scope::{Action, Actions};
use regex::Regex;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

static COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$").expect("valid regex"));

/// Long enough for real names, short enough for a path component and a log.
pub const MAX_ACCOUNT_NAME_LEN: usize = 64;

/// How a robot's login name and token subject start.
pub const ROBOT_PREFIX: &str = "robot+";

/// Checks a user or robot name (without the robot prefix).
pub fn validate_account_name(name: &str) -> Result<(), NameError> {
    if name.len() <= MAX_ACCOUNT_NAME_LEN && COMPONENT.is_match(name) {
        Ok(())
    } else {
        Err(NameError(name.chars().take(80).collect()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid account name {0:?}: use lower-case letters, digits and single '.', '_' or '-' between them (at most 64 characters), as in a repository path segment")]
pub struct NameError(pub String);

/// A login name or token subject, before any database lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The empty subject (the spec's `sub` for an unauthenticated client).
    Anonymous,
    User(String),
    Robot(String),
}

impl Subject {
    /// Parses a Basic-auth user name or a token's `sub`. A name that is
    /// neither a valid user nor `robot+<valid>` is refused before any lookup.
    pub fn parse(s: &str) -> Result<Subject, NameError> {
        if s.is_empty() {
            return Ok(Subject::Anonymous);
        }
        match s.strip_prefix(ROBOT_PREFIX) {
            Some(robot) => validate_account_name(robot).map(|_| Subject::Robot(robot.into())),
            None => validate_account_name(s).map(|_| Subject::User(s.into())),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Anonymous => Ok(()),
            Subject::User(n) => f.write_str(n),
            Subject::Robot(n) => write!(f, "{ROBOT_PREFIX}{n}"),
        }
    }
}

/// A signed-in human (or a service using a user account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Admins may do everything, everywhere.
    pub admin: bool,
    /// Names matched by rules' `groups = [...]`.
    pub groups: Vec<String>,
}

/// A robot account: a secret for CI or a cluster, limited to its own scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub name: String,
    /// Everything the robot may do (see [`crate::access`]).
    pub scopes: Vec<ScopePattern>,
    /// Unix seconds after which the robot can no longer sign in.
    pub expires_at: Option<u64>,
}

impl Robot {
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(User),
    Robot(Robot),
}

impl Identity {
    pub fn subject(&self) -> Subject {
        match self {
            Identity::Anonymous => Subject::Anonymous,
            Identity::User(u) => Subject::User(u.name.clone()),
            Identity::Robot(r) => Subject::Robot(r.name.clone()),
        }
    }

    /// The `sub` claim: empty for anonymous, per the spec.
    pub fn subject_claim(&self) -> String {
        self.subject().to_string()
    }

    /// Whether this identity may still act. Only robots expire; callers
    /// check this when they authenticate (a token's lifetime is capped at
    /// [`Identity::expires_at`] too, so a token cannot outlive its robot).
    pub fn is_active(&self, now: u64) -> bool {
        match self {
            Identity::Robot(r) => !r.is_expired(now),
            _ => true,
        }
    }

    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Identity::Robot(r) => r.expires_at,
            _ => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Identity::User(u) if u.admin)
    }
}

/// What a robot's scope may cover: repositories by glob, or the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternTarget {
    Repositories(Glob),
    Catalog,
}

/// A robot scope as written on the CLI and stored in the database:
/// `repository:team/*:pull`, `repository:team-a/**:pull,push`,
/// `repository:**:pull`, `registry:catalog:*`. Unlike a scope *request*, the
/// name is a [`Glob`], and unknown actions are an error (the operator wrote
/// them; a typo must not silently grant less or more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePattern {
    pub target: PatternTarget,
    pub actions: Actions,
}

impl ScopePattern {
    /// The actions this pattern allows on the repository `repo`.
    pub fn allows(&self, repo: &str) -> Actions {
        match &self.target {
            PatternTarget::Repositories(g) if g.matches(repo) => self.actions,
            _ => Actions::NONE,
        }
    }

    pub fn covers_catalog(&self) -> bool {
        self.target == PatternTarget::Catalog
    }

    /// Whether it allows `action` on every repository of namespace `ns`.
    pub fn covers_subtree(&self, ns: &str, action: Action) -> bool {
        match &self.target {
            PatternTarget::Repositories(g) => self.actions.contains(action) && g.covers_subtree(ns),
            PatternTarget::Catalog => false,
        }
    }
}

impl FromStr for ScopePattern {
    type Err = ScopePatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || ScopePatternError::Malformed(s.chars().take(300).collect());
        let (rtype, rest) = s.split_once(':').ok_or_else(malformed)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;
        match rtype {
            "repository" => {
                let glob = Glob::parse(name)?;
                let mut set = Actions::NONE;
                for a in actions.split(',') {
                    set = match a {
                        "*" => Actions::ALL,
                        _ => set.with(
                            Action::parse(a)
                                .ok_or_else(|| ScopePatternError::UnknownAction(a.into()))?,
                        ),
                    };
                }
                Ok(ScopePattern {
                    target: PatternTarget::Repositories(glob),
                    actions: set,
                })
            }
            "registry" if name == "catalog" && actions == "*" => Ok(ScopePattern {
                target: PatternTarget::Catalog,
                actions: Actions::ALL,
            }),
            "registry" => Err(ScopePatternError::Malformed(s.chars().take(300).collect())),
            other => Err(ScopePatternError::UnknownResourceType(other.into())),
        }
    }
}

impl fmt::Display for ScopePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            PatternTarget::Repositories(g) => write!(f, "repository:{g}:{}", self.actions),
            PatternTarget::Catalog => f.write_str("registry:catalog:*"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopePatternError {
    #[error(
        "malformed robot scope {0:?}: expected repository:<glob>:<actions> or registry:catalog:*"
    )]
    Malformed(String),
    #[error("unknown resource type {0:?} in robot scope: expected \"repository\" or \"registry\"")]
    UnknownResourceType(String),
    #[error("unknown action {0:?} in robot scope: expected pull, push, delete or *")]
    UnknownAction(String),
    #[error(transparent)]
    Glob(#[from] GlobError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in ["alice", "a", "ci-bot", "a.b", "a__b", "x1"] {
            assert!(validate_account_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Alice", "a/b", "-a", "a-", "a b", "a:b", "a+b", "robot+x", "a$b", "..",
        ] {
            assert!(validate_account_name(bad).is_err(), "{bad}");
        }
        assert!(validate_account_name(&"a".repeat(64)).is_ok());
        assert!(validate_account_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn subjects_round_trip_and_keep_namespaces_apart() {
        assert_eq!(Subject::parse("").unwrap(), Subject::Anonymous);
        assert_eq!(
            Subject::parse("alice").unwrap(),
            Subject::User("alice".into())
        );
        assert_eq!(
            Subject::parse("robot+ci").unwrap(),
            Subject::Robot("ci".into())
        );
        assert!(Subject::parse("robot+").is_err());
        assert!(Subject::parse("robot+Bad").is_err());
        assert!(Subject::parse("robot$ci").is_err());
        for s in ["", "alice", "robot+ci"] {
            assert_eq!(Subject::parse(s).unwrap().to_string(), s);
        }
        // A user literally named "robot" is fine and is not a robot.
        assert_eq!(
            Subject::parse("robot").unwrap(),
            Subject::User("robot".into())
        );
    }

    #[test]
    fn identity_subject_claims() {
        assert_eq!(Identity::Anonymous.subject_claim(), "");
        let u = Identity::User(User {
            name: "alice".into(),
            admin: false,
            groups: vec![],
        });
        assert_eq!(u.subject_claim(), "alice");
        let r = Identity::Robot(Robot {
            name: "ci".into(),
            scopes: vec![],
            expires_at: Some(100),
        });
        assert_eq!(r.subject_claim(), "robot+ci");
        assert_eq!(r.expires_at(), Some(100));
        assert!(r.is_active(99));
        assert!(!r.is_active(100));
        assert!(u.is_active(u64::MAX));
        assert!(!u.is_admin());
    }

    #[test]
    fn robot_scope_patterns() {
        let p: ScopePattern = "repository:team/*:pull".parse().unwrap();
        assert_eq!(p.allows("team/app"), Actions::PULL);
        assert_eq!(p.allows("team/app/x"), Actions::NONE);
        assert_eq!(p.allows("other/app"), Actions::NONE);
        assert_eq!(p.to_string(), "repository:team/*:pull");

        let p: ScopePattern = "repository:team-a/**:*".parse().unwrap();
        assert_eq!(p.allows("team-a/x/y"), Actions::ALL);
        assert_eq!(p.to_string(), "repository:team-a/**:pull,push,delete");

        let c: ScopePattern = "registry:catalog:*".parse().unwrap();
        assert!(c.covers_catalog());
        assert_eq!(c.allows("anything"), Actions::NONE);
        assert_eq!(c.to_string(), "registry:catalog:*");
    }

    #[test]
    fn robot_scope_pattern_errors() {
        assert!(matches!(
            "repository:team/*:pull,fly".parse::<ScopePattern>(),
            Err(ScopePatternError::UnknownAction(a)) if a == "fly"
        ));
        assert!(matches!(
            "repository:team/../x:pull".parse::<ScopePattern>(),
            Err(ScopePatternError::Glob(_))
        ));
        assert!(matches!(
            "repository:Team/*:pull".parse::<ScopePattern>(),
            Err(ScopePatternError::Glob(_))
        ));
        assert!(matches!(
            "repo:x:pull".parse::<ScopePattern>(),
            Err(ScopePatternError::UnknownResourceType(_))
        ));
        assert!(matches!(
            "registry:catalog:pull".parse::<ScopePattern>(),
            Err(ScopePatternError::Malformed(_))
        ));
        assert!(matches!(
            "nonsense".parse::<ScopePattern>(),
            Err(ScopePatternError::Malformed(_))
        ));
        assert!(matches!(
            "repository:x:".parse::<ScopePattern>(),
            Err(ScopePatternError::UnknownAction(a)) if a.is_empty()
        ));
    }
}
