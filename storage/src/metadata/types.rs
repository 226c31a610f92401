//! What the metadata database holds, as the rest of the registry sees it.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};

/// A manifest as stored: its exact bytes and the type it was pushed with.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A manifest whose `subject` is some digest (referrers API).
#[derive(Debug, Clone)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoSummary {
    pub name: String,
    pub tag_count: i64,
    /// Bytes of the distinct blobs linked in the repository.
    pub size: i64,
    /// Unix seconds of the last tag push, if any.
    pub last_push: Option<i64>,
}

/// A tag with the manifest it points at (exact bytes, for platforms).
#[derive(Debug, Clone)]
pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub pushed: i64,
    pub content: Vec<u8>,
    /// Config + layer bytes of the manifest, or of all children of an index.
    pub size: i64,
}

/// One manifest that references a blob, with a tag that reaches it (the
/// manifest's own tag, or the tag of an index containing it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobUse {
    #[serde(skip)]
    pub blob: String,
    pub repository: String,
    pub manifest: String,
    pub tag: Option<String>,
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub password_hash: String,
    pub admin: bool,
    pub groups: Vec<String>,
    pub created_at: i64,
    pub password_changed_at: i64,
    /// New at creation and at each password change: refresh tokens issued
    /// against another generation are refused.
    pub credential_gen: String,
}

/// A robot account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotRow {
    pub name: String,
    pub secret_hash: String,
    /// Scope patterns, as written at creation.
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// New at creation and at each secret rotation (see [`UserRow`]).
    pub credential_gen: String,
}

/// A fresh credential generation (122 random bits).
pub fn new_credential_gen() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A signed-in web session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// A manifest reference with nothing behind it in its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRef {
    pub repo: String,
    pub manifest: String,
    /// `blob` or `manifest`.
    pub kind: String,
    pub digest: String,
}

/// A change another node made that this node's caches must forget
/// (PostgreSQL notifications; see `postgres/watch.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A tag moved or went.
    Tag { repo: String, tag: String },
    /// A manifest went (and the tags on it).
    Manifest { repo: String, digest: String },
    /// A blob link went.
    Link { repo: String, digest: String },
    /// Notifications may have been missed: forget everything, and cache
    /// nothing until [`Invalidation::Listening`].
    Lost,
    /// Listening (again): caching may resume.
    Listening,
}

/// A manifest as stored, for copying it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub repo: String,
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// One change of a tag (`tag_history`), newest first when listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TagChange {
    /// What the tag pointed at before (none: it was created).
    pub old_digest: Option<String>,
    /// What it points at after (none: it was deleted).
    pub new_digest: Option<String>,
    /// `push`, `delete` or `rollback`.
    pub action: String,
    /// Unix seconds.
    pub at: i64,
    /// Who: the user or robot, `lifecycle` for a policy; none with
    /// authentication off.
    #[serde(default)]
    pub actor: Option<String>,
}

/// A row of `sql::TAG_HISTORY`.
pub type TagChangeRow = (Option<String>, Option<String>, String, i64, Option<String>);

impl From<TagChangeRow> for TagChange {
    fn from((old_digest, new_digest, action, at, actor): TagChangeRow) -> TagChange {
        TagChange {
            old_digest,
            new_digest,
            action,
            at,
            actor,
        }
    }
}

/// A repository's tag immutability (ECR's `IMMUTABLE` with exclusions).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Immutability {
    pub immutable: bool,
    /// Tags matching one of these globs (`*`: any run) still move.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Immutability {
    /// Whether `tag` may not be moved.
    pub fn protects(&self, tag: &str) -> bool {
        self.immutable && !self.exclude.iter().any(|p| glob(p, tag))
    }
}

/// `pattern` with `*` matching any run of characters, else literal.
fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod immutability_tests {
    use super::*;

    #[test]
    fn exclusions_are_globs() {
        let i = Immutability {
            immutable: true,
            exclude: vec![
                "latest".into(),
                "dev-*".into(),
                "*-snapshot".into(),
                "a*b*c".into(),
            ],
        };
        for free in [
            "latest",
            "dev-",
            "dev-42",
            "x-snapshot",
            "abc",
            "a-b-c",
            "aXbYc",
        ] {
            assert!(!i.protects(free), "{free}");
        }
        for kept in ["v1", "latest2", "xdev-1", "snapshot", "ab", "acb", "a-b-cd"] {
            assert!(i.protects(kept), "{kept}");
        }
        assert!(!Immutability::default().protects("v1"));
    }
}

/// The clock and limits of one garbage collection.
#[derive(Debug, Clone, Copy)]
pub struct GcClock {
    /// Unix seconds (for the retention window, which the tag history
    /// keeps in seconds).
    pub now: i64,
    /// Unreferenced at least this long (milliseconds) before anything is
    /// removed; compared with the database's clock, which writes the queue.
    pub grace_ms: i64,
    /// A manifest a tag pointed at stays this long (seconds) after the tag
    /// left it.
    pub retention: i64,
    /// Milliseconds to add to the database's clock (a test moving time on).
    pub shift_ms: i64,
}

impl GcClock {
    /// Queue rows at or before this (database milliseconds `db_now_ms`)
    /// are due for review.
    pub fn cut(&self, db_now_ms: i64) -> i64 {
        db_now_ms + self.shift_ms - self.grace_ms
    }
}

/// A manifest a collection removed (or would remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GcManifest {
    pub repo: String,
    pub digest: String,
    pub size: u64,
}

/// A blob a collection removed (or would remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GcBlob {
    pub digest: String,
    pub size: u64,
    /// The store's name for it when not its digest's.
    #[serde(skip)]
    pub location: Option<String>,
}

/// What one step of a collection did.
#[derive(Debug, Clone, Default)]
pub struct GcStep {
    /// Queue rows looked at.
    pub reviewed: u64,
    pub manifests: Vec<GcManifest>,
    /// `(repository, digest)` links removed.
    pub links: Vec<(String, String)>,
    pub blobs: Vec<GcBlob>,
    /// Digests whose last link this step removed, unreferenced everywhere:
    /// their blobs go in the same collection (the link waited out the grace).
    pub orphaned: Vec<String>,
    /// The step stopped at its limit: there is more due.
    pub more: bool,
}

impl GcStep {
    pub fn absorb(&mut self, other: GcStep) {
        self.reviewed += other.reviewed;
        self.manifests.extend(other.manifests);
        self.links.extend(other.links);
        self.blobs.extend(other.blobs);
        self.orphaned.extend(other.orphaned);
        self.more |= other.more;
    }
}

/// A push or delete, as webhooks are told of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    /// `push` or `delete`.
    pub action: String,
    pub repository: String,
    pub digest: String,
    pub tag: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    pub actor: Option<String>,
    pub at_ms: i64,
}
