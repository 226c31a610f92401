//! The metadata database: repositories, blob links, manifests, tags,
//! upload sessions and accounts. All SQL of the registry lives in this
//! module, once per database: SQLite (the embedded default, `sqlite/`) and
//! PostgreSQL (several stateless nodes, `postgres/`), behind one trait that
//! the domain code calls without knowing which.

pub mod gc;
mod lifecycle;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;
mod types;

pub use sqlite::busy;
pub use types::*;

use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::ParsedManifest;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Everything the registry asks of its metadata database.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    async fn ping(&self) -> Result<()>;
    async fn repo_exists(&self, name: &str) -> Result<bool>;
    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()>;
    async fn linked_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, Option<String>)>>;
    async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>>;
    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool>;
    async fn create_upload(&self, id: &str, repo: &str) -> Result<()>;
    async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool>;
    async fn touch_upload(&self, id: &str) -> Result<()>;
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>>;
    async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool>;
    /// The writer lock of upload `id`, if free (see
    /// [`crate::blobstore::SessionBook::try_lock`]).
    async fn try_lock_upload(&self, id: &str) -> Result<Option<crate::blobstore::SessionLock>>;
    async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>>;
    /// Store a manifest, and point `tag` at it. With `keep_existing` (an
    /// immutable tag) a tag that points elsewhere is not moved: the whole
    /// write is refused with [`crate::Error::tag_immutable`].
    /// `pushed_ms` (unix milliseconds) is the registry's clock, which tests move.
    #[allow(clippy::too_many_arguments)]
    async fn put_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        parsed: &ParsedManifest,
        content: &[u8],
        tag: Option<&str>,
        keep_existing: bool,
        check_refs: bool,
        pushed_ms: i64,
        actor: Option<&str>,
    ) -> Result<()>;
    async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>>;
    async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>>;
    /// Delete a manifest and its tags; `actor` is recorded as who.
    async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool>;
    async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool>;
    async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>>;
    async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>>;
    async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>>;
    async fn repo_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepoSummary>>;
    async fn tag_rows(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<TagRow>>>;
    async fn blob_uses(&self, blobs: &[String]) -> Result<Vec<BlobUse>>;
    async fn blob_any(&self, digest: &str) -> Result<Option<(i64, Option<String>)>>;
    async fn blob_rows(&self) -> Result<Vec<(String, u64, Option<String>)>>;
    async fn dangling_refs(&self) -> Result<Vec<DanglingRef>>;
    async fn each_manifest(
        &self,
        each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
    ) -> Result<u64>;
    async fn drop_blob(&self, digest: &str) -> Result<Vec<String>>;
    async fn blob_links(&self) -> Result<Vec<(String, String, u64)>>;
    async fn all_tags(&self) -> Result<Vec<(String, String, String)>>;
    /// The last `limit` changes of `repo:tag`, newest first.
    async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>>;
    /// Point `repo:tag` at a stored manifest, recording `action`; false
    /// when it already points there.
    async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        digest: &str,
        action: &str,
        actor: Option<&str>,
    ) -> Result<bool>;
    /// A repository's tag immutability; None: no such repository.
    async fn immutability(&self, repo: &str) -> Result<Option<Immutability>>;
    async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()>;
    async fn manifest_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ManifestRow>>;
    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool>;
    /// A user row as it is (`registry migrate`).
    async fn import_user(&self, user: &UserRow) -> Result<bool>;
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    async fn delete_user(&self, name: &str) -> Result<bool>;
    async fn user(&self, name: &str) -> Result<Option<UserRow>>;
    async fn users(&self) -> Result<Vec<UserRow>>;
    async fn add_robot(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<bool>;
    /// A robot row as it is (`registry migrate`).
    async fn import_robot(&self, robot: &RobotRow) -> Result<bool>;
    /// New secret hash and credential generation.
    async fn rotate_robot(&self, name: &str, secret_hash: &str) -> Result<bool>;
    async fn delete_robot(&self, name: &str) -> Result<bool>;
    async fn robot(&self, name: &str) -> Result<Option<RobotRow>>;
    async fn robots(&self) -> Result<Vec<RobotRow>>;
    async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    // ---- lifecycle policies ----------------------------------------------
    /// None: no such repository; Some(None): no policy.
    async fn lifecycle_policy(&self, repo: &str) -> Result<Option<Option<String>>>;
    async fn set_lifecycle_policy(&self, repo: &str, policy: Option<&str>) -> Result<()>;
    /// `(repository, policy text)` of every repository with a policy.
    async fn lifecycle_repos(&self) -> Result<Vec<(String, String)>>;
    /// The images of `repo` as lifecycle policies see them.
    async fn lifecycle_images(&self, repo: &str) -> Result<Vec<crate::lifecycle::Image>>;
    /// Record pulls `(repository, digest, unix seconds)` in one go.
    async fn record_pulls(&self, pulls: &[(String, String, i64)]) -> Result<()>;

    // ---- events (webhooks) -----------------------------------------------
    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>>;
    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>>;
    async fn set_event_cursor(&self, endpoint: &str, id: i64) -> Result<()>;
    async fn last_event(&self) -> Result<i64>;
    /// Forget events `id <= upto` or older than `older_than_ms`.
    async fn trim_events(&self, upto: i64, older_than_ms: i64) -> Result<u64>;

    // ---- quotas ----------------------------------------------------------
    /// `(repositories, bytes of distinct blobs)` of namespace `ns`.
    async fn namespace_usage(&self, ns: &str) -> Result<(i64, i64)>;
    /// Whether `digest` is linked in some repository of namespace `ns`.
    async fn namespace_has_blob(&self, ns: &str, digest: &str) -> Result<bool>;

    // ---- garbage collection (see `gc`) ----------------------------------
    /// Review due manifests (at most `limit`), removing the garbage.
    async fn gc_manifests(&self, clock: GcClock, limit: i64) -> Result<GcStep>;
    /// Review due blob links (at most `limit`), removing the unreferenced.
    async fn gc_links(&self, clock: GcClock, limit: i64) -> Result<GcStep>;
    /// Blobs due for review (at most `limit`).
    async fn gc_due_blobs(&self, clock: GcClock, limit: i64) -> Result<Vec<String>>;
    /// Remove the rows of those of `digests` (whose fences the caller
    /// holds) no one uses; `forced` ones need not be due.
    async fn gc_blobs(
        &self,
        clock: GcClock,
        digests: &[String],
        forced: &[String],
    ) -> Result<GcStep>;
    /// What a collection would remove now, changing nothing.
    async fn gc_dry_run(&self, clock: GcClock) -> Result<GcStep>;
    /// Hold a digest's blob fence shared (see [`crate::blobstore::LocalFences`]).
    async fn enter_fence(&self, digest: &str) -> Result<crate::blobstore::SessionLock>;
    /// Take the fences of those of `digests` no one holds, exclusively.
    async fn take_fences(
        &self,
        digests: &[String],
    ) -> Result<(Vec<String>, crate::blobstore::SessionLock)>;
    /// The right to collect: one collection at a time across all nodes.
    async fn try_gc_lease(&self) -> Result<Option<crate::blobstore::SessionLock>>;

    /// Tell `on` of every change other nodes make to what this node
    /// caches; false if this database has one node only (nothing to hear).
    fn watch(&self, _on: Arc<dyn Fn(Invalidation) + Send + Sync>) -> bool {
        false
    }
}

/// The metadata database in use.
#[derive(Clone)]
pub struct Metadata(Arc<dyn MetaStore>);

impl Metadata {
    pub fn new(store: impl MetaStore) -> Metadata {
        Metadata(Arc::new(store))
    }

    /// The embedded SQLite database at `path` (see [`sqlite::SqliteMeta::open`]).
    pub async fn open_sqlite(
        path: &std::path::Path,
        busy_timeout: std::time::Duration,
    ) -> Result<Metadata> {
        Ok(Metadata::new(
            sqlite::SqliteMeta::open(path, busy_timeout).await?,
        ))
    }
}

impl Metadata {
    /// The PostgreSQL database at `url` (see [`postgres::PgMeta::open`]).
    pub async fn open_postgres(url: &str, busy_timeout: std::time::Duration) -> Result<Metadata> {
        Ok(Metadata::new(
            postgres::PgMeta::open(url, busy_timeout).await?,
        ))
    }
}

impl std::ops::Deref for Metadata {
    type Target = dyn MetaStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
