//! The access decision for one request: who the caller is and, for a
//! token this registry issued, the account it stands for now. A token
//! grants the most its claims say, and never more than its subject has at
//! the time of use; Basic credentials and web sessions act as their
//! account under the `[access]` rules. The same decision serves every
//! surface (`/v2`, `/api/v1`, `/ui`).

use super::{Caller, Gate, Need, WebSession};
use auth::{Action, Identity};
use std::sync::Arc;

/// What a bearer token's subject is now.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    /// Not a token, or another issuer's (only its claims are known).
    NotOurs,
    /// Our token's account, as it is now.
    Now(Arc<Identity>),
    /// Our token's account is gone or expired: the token grants nothing.
    Gone,
    /// The accounts database did not answer: the claims alone bound it
    /// (they were granted by the same rules when it was issued, minutes
    /// ago), so pulls go on through a database outage.
    Unknown,
}

/// An authorized request's caller, as handlers see it (a request
/// extension set by [`super::authorize`]).
#[derive(Clone)]
pub struct Access {
    pub(super) gate: Arc<Gate>,
    pub(super) caller: Caller,
    pub(super) subject: Subject,
    /// A signed-in browser's session (pages show the user and carry its
    /// CSRF token in forms).
    pub session: Option<WebSession>,
    /// The ECR access key a SigV4 request was signed with.
    pub(super) access_key: Option<String>,
}

impl Access {
    /// Authentication off: everything is allowed.
    pub fn open(gate: Arc<Gate>) -> Access {
        Access {
            gate,
            caller: Caller::Open,
            subject: Subject::NotOurs,
            session: None,
            access_key: None,
        }
    }

    /// The ECR access key the request was signed with, if any.
    pub fn access_key(&self) -> Option<&str> {
        self.access_key.as_deref()
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The name for logs and tag history, if signed in.
    pub fn user(&self) -> Option<String> {
        self.caller.user()
    }

    pub fn is_anonymous(&self) -> bool {
        self.caller.is_anonymous()
    }

    /// Whether nothing at all was presented (no header, no session).
    pub fn presented_nothing(&self) -> bool {
        matches!(&self.caller, Caller::Known(id) if matches!(**id, Identity::Anonymous))
    }

    /// For a token: whether its subject, as it is now, passes `check`.
    fn subject_passes(&self, check: impl Fn(&Identity) -> bool) -> bool {
        match &self.subject {
            Subject::Now(id) => id.is_active(auth::now_unix()) && check(id),
            Subject::Gone => false,
            Subject::NotOurs | Subject::Unknown => true,
        }
    }

    /// Whether the caller may do what `need` says.
    pub fn permits(&self, need: &Need) -> bool {
        let policy = self.gate.policy();
        match (&self.caller, need) {
            (_, Need::Anyone | Need::Browse) | (Caller::Open, _) => true,
            (Caller::Known(id), Need::Authenticated) => !matches!(**id, Identity::Anonymous),
            (Caller::Token { .. }, Need::Authenticated) => true,
            (Caller::Known(id), Need::On(repo, action)) => policy.allowed(id, repo, *action),
            (Caller::Token { token }, Need::On(repo, action)) => {
                token.allows(repo, *action)
                    && self.subject_passes(|id| policy.allowed(id, repo, *action))
            }
            (Caller::Known(id), Need::Catalog) => policy.may_list_catalog(id),
            (Caller::Token { token }, Need::Catalog) => {
                token.allows_catalog() && self.subject_passes(|id| policy.may_list_catalog(id))
            }
            (Caller::Known(id), Need::Admin) => id.is_admin(),
            (Caller::Token { token }, Need::Admin) => {
                token.allows_admin() && self.subject_passes(Identity::is_admin)
            }
        }
    }

    /// Whether `repo` is among what a listing may show the caller (pull).
    /// A token of ours lists what it names, or with `registry:catalog:*`
    /// what its subject may pull (as `/v2/_catalog` does).
    pub fn reads(&self, repo: &str) -> bool {
        let policy = self.gate.policy();
        match &self.caller {
            Caller::Open => true,
            Caller::Known(id) => policy.allowed(id, repo, Action::Pull),
            Caller::Token { token } => match &self.subject {
                Subject::NotOurs | Subject::Unknown => token.allows(repo, Action::Pull),
                _ => {
                    (token.allows(repo, Action::Pull) || token.allows_catalog())
                        && self.subject_passes(|id| policy.allowed(id, repo, Action::Pull))
                }
            },
        }
    }

    /// Whether the caller may read every repository of namespace `ns`
    /// (to be shown the namespace as a whole: its quota usage).
    pub fn reads_all_of(&self, ns: &str) -> bool {
        let policy = self.gate.policy();
        match &self.caller {
            Caller::Open => true,
            Caller::Known(id) => policy.allowed_under(id, ns, Action::Pull),
            Caller::Token { token } => match &self.subject {
                Subject::NotOurs | Subject::Unknown => false,
                _ => {
                    token.allows_catalog()
                        && self.subject_passes(|id| policy.allowed_under(id, ns, Action::Pull))
                }
            },
        }
    }
}
