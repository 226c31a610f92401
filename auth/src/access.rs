//! The access policy: who may pull, push and delete which repositories.
//!
//! Loaded from the `[access]` section of the server's TOML config:
//!
//! ```toml
//! [access]
//! # Anyone, signed in or not, may pull these (globs, see `auth::glob`).
//! public = ["library/**", "mirror/*"]
//! # Docker Hub's convention: user NAME may do everything in NAME/** (default true).
//! user_namespaces = true
//! # Anonymous callers may call /v2/_catalog; it lists only what they may pull (default
//! # false: clients present credentials only when challenged, so an open catalog would show
//! # a signed-in client only the public repositories).
//! anonymous_catalog = true
//!
//! [[access.rules]]
//! description = "team A builds its images"
//! repositories = "team-a/**"
//! users = ["alice"]
//! groups = ["team-a"]
//! actions = ["pull", "push", "delete"]
//!
//! [[access.rules]]
//! description = "every signed-in user may read the base images"
//! repositories = ["base/**", "tools/*"]
//! subjects = ["authenticated"]
//! actions = ["pull"]
//! ```
//!
//! # Semantics: union of allow rules
//!
//! Every rule only *grants*; a caller's actions on a repository are the union
//! of everything that matches (public globs, its namespace, each rule). There
//! are no deny rules and rule order does not matter. Why, against
//! docker_auth's first-match-wins: a rule can be reviewed on its own, a diff
//! that adds a rule can only add the access it states, and no broad rule
//! placed early can silently shadow a later one (the classic first-match
//! mistake). What you cannot say is "everyone except X": grant the narrower
//! set instead. Everything not granted is denied.
//!
//! Who gets what:
//! - anonymous: `public` globs (pull) and rules with `subjects = ["anonymous"]`.
//!   That set is a floor for every caller: signing in never loses access a
//!   caller would have without credentials.
//! - a user: the floor, its namespace `NAME/**` (all actions, when
//!   `user_namespaces`), and rules naming it in `users`, one of its `groups`,
//!   or `subjects = ["authenticated"]`. Admins may do everything.
//! - a robot: the floor and its own scopes, nothing else: rules do not apply
//!   to robots, so what `robot list` shows is exactly what a leaked robot
//!   secret can do (plus public pulls, which need no secret). This is why
//!   rules have no `robots` key: it could only be a no-op (scopes already
//!   grant) or a second place that must agree with the first.
//!
//! The catalog (`registry:catalog:*`) is granted to every user, to robots
//! with that scope, and to everyone when `anonymous_catalog` is on; the
//! registry filters the listing by pull access either way.

use crate::glob::{Glob, GlobError};
use crate::identity::{validate_account_name, Identity, User};
use crate::scope::{is_valid_repository_name, merge_scopes, Action, Actions, Resource, Scope};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The `[access]` config section as written (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub public: Vec<String>,
    #[serde(default = "yes")]
    pub user_namespaces: bool,
    #[serde(default)]
    pub anonymous_catalog: bool,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            public: Vec::new(),
            user_namespaces: true,
            anonymous_catalog: false,
            rules: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// One `[[access.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in decisions ("allowed by ...") so audit logs say why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One glob or a list of globs.
    pub repositories: OneOrMany,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `"anonymous"` (everyone, signed in or not) or `"authenticated"`
    /// (every signed-in user).
    #[serde(default)]
    pub subjects: Vec<String>,
    pub actions: Vec<String>,
}

/// `repositories = "a/**"` or `repositories = ["a/**", "b/*"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A config mistake, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("[access] public: {0}")]
    Public(GlobError),
    #[error("[[access.rules]] #{rule}: repositories: {err}")]
    Glob { rule: usize, err: GlobError },
    #[error("[[access.rules]] #{rule}: repositories is empty")]
    NoRepositories { rule: usize },
    #[error(
        "[[access.rules]] #{rule}: unknown action {action:?}: expected pull, push, delete or *"
    )]
    UnknownAction { rule: usize, action: String },
    #[error("[[access.rules]] #{rule}: actions is empty")]
    NoActions { rule: usize },
    #[error("[[access.rules]] #{rule}: unknown subject {subject:?}: expected \"anonymous\" or \"authenticated\"")]
    UnknownSubject { rule: usize, subject: String },
    #[error("[[access.rules]] #{rule}: names nobody: give users, groups or subjects")]
    NoSubjects { rule: usize },
    #[error("[[access.rules]] #{rule}: users: {err}")]
    User {
        rule: usize,
        err: crate::identity::NameError,
    },
    #[error("[[access.rules]] #{rule}: groups: empty or blank group name")]
    Group { rule: usize },
}

/// Why an action was allowed: for audit logs and for `registry` CLI output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Admin,
    Public(String),
    Namespace(String),
    Rule(String),
    RobotScope(String),
    AnonymousCatalog,
    UserCatalog,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Admin => f.write_str("admin"),
            Reason::Public(g) => write!(f, "public repositories {g:?}"),
            Reason::Namespace(n) => write!(f, "own namespace {n}/**"),
            Reason::Rule(l) => write!(f, "rule {l}"),
            Reason::RobotScope(s) => write!(f, "robot scope {s}"),
            Reason::AnonymousCatalog => f.write_str("anonymous_catalog"),
            Reason::UserCatalog => f.write_str("signed-in user"),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    label: String,
    repos: Vec<Glob>,
    users: Vec<String>,
    groups: Vec<String>,
    anonymous: bool,
    authenticated: bool,
    actions: Actions,
}

impl Rule {
    /// Whether the rule names this caller (robots are never named).
    fn names(&self, id: &Identity) -> bool {
        match id {
            Identity::Anonymous | Identity::Robot(_) => self.anonymous,
            Identity::User(u) => self.anonymous || self.names_user(u),
        }
    }

    fn names_user(&self, u: &User) -> bool {
        self.authenticated
            || self.users.contains(&u.name)
            || self.groups.iter().any(|g| u.groups.contains(g))
    }

    fn covers(&self, repo: &str) -> bool {
        self.repos.iter().any(|g| g.matches(repo))
    }
}

/// The compiled, validated policy. Cheap to share (`Arc`) and to query.
#[derive(Debug, Clone)]
pub struct Policy {
    public: Vec<Glob>,
    user_namespaces: bool,
    anonymous_catalog: bool,
    rules: Vec<Rule>,
}

impl Default for Policy {
    /// No public repositories, no rules: admins everything, users their
    /// namespace, robots their scopes, anonymous nothing but the catalog.
    fn default() -> Self {
        Policy::from_config(&AccessConfig::default()).expect("default config is valid")
    }
}

impl Policy {
    /// Validates and compiles the config; every mistake is an error, since
    /// an ignored typo in an access rule is a silent security change.
    pub fn from_config(c: &AccessConfig) -> Result<Policy, PolicyError> {
        let public = c
            .public
            .iter()
            .map(|p| Glob::parse(p).map_err(PolicyError::Public))
            .collect::<Result<_, _>>()?;
        let mut rules = Vec::with_capacity(c.rules.len());
        for (i, r) in c.rules.iter().enumerate() {
            rules.push(compile_rule(i + 1, r)?);
        }
        Ok(Policy {
            public,
            user_namespaces: c.user_namespaces,
            anonymous_catalog: c.anonymous_catalog,
            rules,
        })
    }

    /// The decision: may `id` perform `action` on repository `repo`?
    pub fn allowed(&self, id: &Identity, repo: &str, action: Action) -> bool {
        self.actions_for(id, repo).contains(action)
    }

    /// Everything `id` may do on `repo` (empty for an invalid name).
    pub fn actions_for(&self, id: &Identity, repo: &str) -> Actions {
        let mut acc = Actions::NONE;
        self.sources(id, repo, &mut |a, _| {
            acc = acc.union(a);
            acc == Actions::ALL // nothing more to learn
        });
        acc
    }

    /// The first reason found that allows `action`, or `None` when denied.
    pub fn why(&self, id: &Identity, repo: &str, action: Action) -> Option<Reason> {
        let mut found = None;
        self.sources(id, repo, &mut |a, reason| {
            if a.contains(action) {
                found = Some(reason());
            }
            found.is_some()
        });
        found
    }

    /// Whether `id` may do `action` on every repository in namespace `ns`
    /// (`ns` itself and everything below it), whatever its name: an
    /// administrator, the user whose namespace it is, or a source of access
    /// whose pattern covers the whole subtree (`ns/**`, `**`). Used where
    /// a namespace is shown as a whole (its quota usage).
    pub fn allowed_under(&self, id: &Identity, ns: &str, action: Action) -> bool {
        if !is_valid_repository_name(ns) {
            return false;
        }
        if id.is_admin() {
            return true;
        }
        if action == Action::Pull && self.public.iter().any(|g| g.covers_subtree(ns)) {
            return true;
        }
        match id {
            Identity::Robot(r) => r.scopes.iter().any(|s| s.covers_subtree(ns, action)),
            Identity::User(u) if self.user_namespaces && in_namespace(&u.name, ns) => true,
            _ => self.rules.iter().any(|r| {
                r.names(id)
                    && r.actions.contains(action)
                    && r.repos.iter().any(|g| g.covers_subtree(ns))
            }),
        }
    }

    /// Whether `id` may call the catalog endpoint (which the registry then
    /// filters by [`Policy::allowed`] with [`Action::Pull`]).
    pub fn may_list_catalog(&self, id: &Identity) -> bool {
        self.catalog_reason(id).is_some()
    }

    pub fn catalog_reason(&self, id: &Identity) -> Option<Reason> {
        if self.anonymous_catalog {
            return Some(Reason::AnonymousCatalog);
        }
        match id {
            Identity::Anonymous => None,
            Identity::User(u) if u.admin => Some(Reason::Admin),
            Identity::User(_) => Some(Reason::UserCatalog),
            Identity::Robot(r) => r
                .scopes
                .iter()
                .find(|s| s.covers_catalog())
                .map(|s| Reason::RobotScope(s.to_string())),
        }
    }

    /// The token server's answer: the intersection of what was asked and
    /// what is allowed, per scope. A partly allowed scope yields the allowed
    /// actions; a denied one is left out (never an error, per the token
    /// spec). Scopes on the same resource are merged.
    pub fn grant(&self, id: &Identity, requested: &[Scope]) -> Vec<Scope> {
        let granted = requested.iter().filter_map(|s| {
            let actions = match &s.resource {
                Resource::Repository(name) => s.actions.intersect(self.actions_for(id, name)),
                Resource::Catalog if self.may_list_catalog(id) => s.actions,
                Resource::Catalog => Actions::NONE,
                Resource::Admin if id.is_admin() => s.actions,
                Resource::Admin => Actions::NONE,
            };
            (!actions.is_empty()).then(|| Scope {
                resource: s.resource.clone(),
                actions,
            })
        });
        merge_scopes(granted)
    }

    /// Feeds every source of access for `(id, repo)` to `visit` until it
    /// returns true. One walk serves both the union and the explanation.
    fn sources(
        &self,
        id: &Identity,
        repo: &str,
        visit: &mut dyn FnMut(Actions, &dyn Fn() -> Reason) -> bool,
    ) {
        if !is_valid_repository_name(repo) {
            return;
        }
        if id.is_admin() {
            visit(Actions::ALL, &|| Reason::Admin);
            return;
        }
        for g in &self.public {
            if g.matches(repo) && visit(Actions::PULL, &|| Reason::Public(g.to_string())) {
                return;
            }
        }
        if let Identity::Robot(r) = id {
            for s in &r.scopes {
                let a = s.allows(repo);
                if !a.is_empty() && visit(a, &|| Reason::RobotScope(s.to_string())) {
                    return;
                }
            }
        }
        if let Identity::User(u) = id {
            if self.user_namespaces
                && in_namespace(&u.name, repo)
                && visit(Actions::ALL, &|| Reason::Namespace(u.name.clone()))
            {
                return;
            }
        }
        for r in &self.rules {
            if r.names(id) && r.covers(repo) && visit(r.actions, &|| Reason::Rule(r.label.clone()))
            {
                return;
            }
        }
    }
}

/// `NAME/**`: the repository `NAME` itself or anything below it.
fn in_namespace(user: &str, repo: &str) -> bool {
    repo.strip_prefix(user)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn compile_rule(n: usize, r: &RuleConfig) -> Result<Rule, PolicyError> {
    let items = r.repositories.items();
    if items.is_empty() {
        return Err(PolicyError::NoRepositories { rule: n });
    }
    let repos = items
        .iter()
        .map(|p| Glob::parse(p).map_err(|err| PolicyError::Glob { rule: n, err }))
        .collect::<Result<Vec<_>, _>>()?;
    if r.actions.is_empty() {
        return Err(PolicyError::NoActions { rule: n });
    }
    let mut actions = Actions::NONE;
    for a in &r.actions {
        actions = match a.as_str() {
            "*" => Actions::ALL,
            _ => actions.with(Action::parse(a).ok_or_else(|| PolicyError::UnknownAction {
                rule: n,
                action: a.clone(),
            })?),
        };
    }
    let (mut anonymous, mut authenticated) = (false, false);
    for s in &r.subjects {
        match s.as_str() {
            "anonymous" => anonymous = true,
            "authenticated" => authenticated = true,
            _ => {
                return Err(PolicyError::UnknownSubject {
                    rule: n,
                    subject: s.clone(),
                })
            }
        }
    }
    for u in &r.users {
        validate_account_name(u).map_err(|err| PolicyError::User { rule: n, err })?;
    }
    if r.groups.iter().any(|g| g.trim().is_empty()) {
        return Err(PolicyError::Group { rule: n });
    }
    if !anonymous && !authenticated && r.users.is_empty() && r.groups.is_empty() {
        return Err(PolicyError::NoSubjects { rule: n });
    }
    let label = match &r.description {
        Some(d) if !d.trim().is_empty() => format!("#{n} ({d})"),
        _ => format!("#{n}"),
    };
    Ok(Rule {
        label,
        repos,
        users: r.users.clone(),
        groups: r.groups.clone(),
        anonymous,
        authenticated,
        actions,
    })
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
