//! The registry's domain operations: what a push, pull, listing or delete
//! means, over the blob store and the metadata database. No HTTP here.

mod gc;
mod history;
mod immutability;
mod lifecycle;
mod pull_through;
mod quota;

pub(crate) use gc::delete_each;
pub use gc::{GcOptions, GcReport, GcTotals};
pub use history::Rollback;
pub use lifecycle::Expired;
pub use quota::{namespace_of, NamespaceUsage, Quota};

use crate::blobstore::{
    AppendLimits, BlobRef, BlobStore, ByteStream, Committed, LocalBlobStore, S3BlobStore, S3Config,
    SessionBook, SessionLock,
};
use crate::cache::Cache;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{self, ParsedManifest};
use crate::metadata::{self, Metadata, Referrer, StoredManifest};
use crate::names::{validate_name, Reference};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where the metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaBackend {
    /// Embedded, `registry.db` in the data directory.
    Sqlite,
    /// A PostgreSQL database shared by several nodes (`postgres://...`).
    Postgres(String),
}

impl MetaBackend {
    pub async fn open(&self, data_dir: &Path, busy_timeout: Duration) -> Result<Metadata> {
        match self {
            MetaBackend::Sqlite => {
                Metadata::open_sqlite(&data_dir.join("registry.db"), busy_timeout).await
            }
            MetaBackend::Postgres(url) => Metadata::open_postgres(url, busy_timeout).await,
        }
    }
}

/// Where the blobs live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageBackend {
    /// Under `<data_dir>/blobs` (the default).
    #[default]
    Local,
    /// In an S3 bucket.
    S3(S3Config),
}

/// Upload-session state for the blob store, in the metadata database.
struct MetaSessions(Metadata);

#[async_trait::async_trait]
impl SessionBook for MetaSessions {
    async fn load(&self, key: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        self.0.upload_state(upload_id_of(key)).await
    }

    async fn save(&self, key: &str, version: i64, state: &[u8]) -> Result<bool> {
        self.0
            .save_upload_state(upload_id_of(key), version, state)
            .await
    }

    async fn try_lock(&self, key: &str) -> Result<Option<SessionLock>> {
        self.0.try_lock_upload(upload_id_of(key)).await
    }
}

/// Limits and switches that change what the registry accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_manifest_bytes: usize,
    pub max_blob_bytes: Option<u64>,
    pub delete_enabled: bool,
    /// How long a write waits for the metadata database's lock before the
    /// request is answered 503 (retry later).
    pub db_busy_timeout: Duration,
    /// Limits per repository namespace.
    pub quotas: Vec<Quota>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: None,
            delete_enabled: true,
            db_busy_timeout: metadata::busy::DEFAULT_BUDGET,
            quotas: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct Registry {
    meta: Metadata,
    blobs: Arc<dyn BlobStore>,
    policy: Policy,
    /// Hot read paths, invalidated here after every write that matters.
    cache: Cache,
    /// Manifest pulls not yet written to the database (see `lifecycle`).
    pulls: lifecycle::PullLog,
    /// Namespace usage, for quotas.
    usage: quota::UsageCache,
    /// Writes of pushes so far (a collection gives way while it moves).
    writes: Arc<std::sync::atomic::AtomicU64>,
    /// What collections did (this node, since it started).
    gc_totals: Arc<std::sync::Mutex<GcTotals>>,
    /// Who the changes made through this handle are recorded as (the
    /// signed-in user or robot; see [`Registry::acting_as`]).
    actor: Option<Arc<str>>,
    /// Unix seconds now: the system clock, or a test's.
    clock: Clock,
}

/// A source of the time (unix milliseconds).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A committed blob as a repository sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    /// The store's name for its bytes, when not derived from the digest.
    pub location: Option<Arc<str>>,
}

impl BlobInfo {
    pub fn as_ref<'a>(&'a self, digest: &'a Digest) -> BlobRef<'a> {
        BlobRef {
            digest,
            location: self.location.as_deref(),
        }
    }
}

/// Result of a manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// A chunk's position and length as declared by the client.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkSpec {
    pub start: Option<u64>,
    pub len: Option<u64>,
}

impl Registry {
    /// Open the default embedded backend: local disk + SQLite under `data_dir`.
    pub async fn open_local(data_dir: &Path, policy: Policy) -> Result<Registry> {
        Registry::open(data_dir, &MetaBackend::Sqlite, policy).await
    }

    /// Blobs on local disk under `data_dir`, metadata in `meta`.
    pub async fn open(data_dir: &Path, meta: &MetaBackend, policy: Policy) -> Result<Registry> {
        Registry::open_with(data_dir, meta, &StorageBackend::Local, policy).await
    }

    /// Blobs in `storage`, metadata in `meta` (`data_dir` holds the local
    /// ones, if any).
    pub async fn open_with(
        data_dir: &Path,
        meta: &MetaBackend,
        storage: &StorageBackend,
        policy: Policy,
    ) -> Result<Registry> {
        std::fs::create_dir_all(data_dir)?;
        let meta = meta.open(data_dir, policy.db_busy_timeout).await?;
        let blobs: Arc<dyn BlobStore> = match storage {
            StorageBackend::Local => Arc::new(LocalBlobStore::open(data_dir)?),
            StorageBackend::S3(cfg) => Arc::new(S3BlobStore::open(
                cfg,
                Arc::new(MetaSessions(meta.clone())),
            )?),
        };
        Ok(Registry::new(meta, blobs, policy))
    }

    pub fn new(meta: Metadata, blobs: Arc<dyn BlobStore>, policy: Policy) -> Registry {
        // With other nodes, nothing is cached until their changes can be
        // heard.
        let cache = Cache::default();
        cache.apply(metadata::Invalidation::Lost);
        let heard = cache.clone();
        if !meta.watch(Arc::new(move |change| heard.apply(change))) {
            cache.apply(metadata::Invalidation::Listening);
        }
        Registry {
            meta,
            blobs,
            policy,
            cache,
            pulls: Default::default(),
            usage: Default::default(),
            writes: Default::default(),
            gc_totals: Default::default(),
            actor: None,
            clock: Arc::new(metadata::now_ms),
        }
    }

    /// This registry, recording `who` as the author of the tag changes
    /// made through it (the tag history's "who").
    pub fn acting_as(&self, who: Option<String>) -> Registry {
        Registry {
            actor: who.map(Arc::from),
            ..self.clone()
        }
    }

    fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// Pushes' writes so far.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn wrote(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tell the time by `clock` from now on (tests push "days apart").
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Unix seconds, by the registry's clock.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Unix milliseconds, by the registry's clock.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub(crate) fn meta(&self) -> &Metadata {
        &self.meta
    }

    pub(crate) fn store(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the metadata database and the blob store both answer.
    pub async fn health(&self) -> Result<()> {
        self.meta.ping().await?;
        self.blobs.ping().await
    }

    // ---- pull --------------------------------------------------------------

    /// A blob readable in `repo`: its size and where its bytes are.
    pub async fn blob(&self, repo: &str, digest: &Digest) -> Result<BlobInfo> {
        validate_name(repo)?;
        if let Some(blob) = self.cache.link(repo, digest) {
            return Ok(blob);
        }
        let seen = self.cache.epoch();
        match self.meta.linked_blob(repo, digest).await? {
            Some((size, location)) => {
                let blob = BlobInfo {
                    size,
                    location: location.map(Arc::from),
                };
                self.cache.fill_link(seen, repo, digest, blob.clone());
                Ok(blob)
            }
            None => Err(Error::blob_unknown(digest)),
        }
    }

    /// Size of a blob readable in `repo`.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<u64> {
        Ok(self.blob(repo, digest).await?.size)
    }

    /// Bytes of a blob found with [`Registry::blob`].
    pub async fn blob_bytes(
        &self,
        digest: &Digest,
        blob: &BlobInfo,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream> {
        self.blobs.get(blob.as_ref(digest), range).await
    }

    /// Where a client may fetch a blob found with [`Registry::blob`]
    /// itself (a presigned URL), if the store redirects downloads.
    pub async fn blob_redirect(&self, digest: &Digest, blob: &BlobInfo) -> Result<Option<String>> {
        self.blobs.redirect(blob.as_ref(digest)).await
    }

    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<StoredManifest> {
        Ok(Arc::unwrap_or_clone(
            self.manifest_shared(repo, reference).await?,
        ))
    }

    /// [`Registry::manifest`] without copying: served from the cache when
    /// the tag and the manifest are known.
    pub async fn manifest_shared(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Arc<StoredManifest>> {
        validate_name(repo)?;
        let seen = self.cache.epoch();
        // A reference that can be neither a tag nor a digest names nothing
        // that could exist: a read answers "unknown" (404), as the CNCF
        // registry and the spec's conformance suite expect; only a push
        // reports the malformed reference (400).
        let parsed = Reference::parse(reference).map_err(|_| Error::manifest_unknown(reference))?;
        let digest = match parsed {
            Reference::Digest(d) => d,
            Reference::Tag(tag) => match self.cache.tag(repo, &tag) {
                Some(d) => d,
                None => {
                    let m = self
                        .meta
                        .manifest_by_tag(repo, &tag)
                        .await?
                        .ok_or_else(|| Error::manifest_unknown(reference))?;
                    let m = Arc::new(m);
                    self.cache.fill_tag(seen, repo, &tag, &m.digest);
                    self.cache.fill_manifest(seen, repo, &m);
                    return Ok(m);
                }
            },
        };
        if let Some(m) = self.cache.manifest(repo, &digest) {
            return Ok(m);
        }
        let m = self
            .meta
            .manifest_by_digest(repo, &digest)
            .await?
            .ok_or_else(|| Error::manifest_unknown(reference))?;
        let m = Arc::new(m);
        self.cache.fill_manifest(seen, repo, &m);
        Ok(m)
    }

    // ---- push: blobs -------------------------------------------------------

    pub async fn start_upload(&self, repo: &str) -> Result<String> {
        validate_name(repo)?;
        // A full namespace is refused before any byte is sent.
        self.check_new_repo(repo).await?;
        self.check_bytes(repo, None, 0).await?;
        self.wrote();
        let id = uuid::Uuid::new_v4().to_string();
        // Row before file: cleanup treats a file without a row as debris.
        self.meta.create_upload(&id, repo).await?;
        self.blobs.upload_create(&session_key(repo, &id)).await?;
        self.cache.add_upload(&id, repo);
        Ok(id)
    }

    /// The store's key of upload `id` of `repo`, if such a session exists.
    /// (The store has the last word: a session it has ended is unknown.)
    async fn session(&self, repo: &str, id: &str) -> Result<String> {
        validate_name(repo)?;
        if !self.cache.upload_in(id, repo) && !self.meta.upload_in_repo(id, repo).await? {
            return Err(Error::upload_unknown(id));
        }
        Ok(session_key(repo, id))
    }

    /// Bytes received so far.
    pub async fn upload_status(&self, repo: &str, id: &str) -> Result<u64> {
        let key = self.session(repo, id).await?;
        self.blobs.upload_size(&key).await
    }

    pub async fn upload_chunk(
        &self,
        repo: &str,
        id: &str,
        body: ByteStream,
        chunk: ChunkSpec,
    ) -> Result<u64> {
        let key = self.session(repo, id).await?;
        let size = match self
            .blobs
            .upload_append(&key, body, self.limits(chunk))
            .await
        {
            Ok(size) => size,
            Err(e) => {
                self.discard_if_too_large(repo, id, &e).await;
                return Err(e);
            }
        };
        self.meta.touch_upload(id).await?;
        Ok(size)
    }

    /// An upload over the blob size limit can never finish: it is
    /// discarded rather than left open and empty.
    async fn discard_if_too_large(&self, repo: &str, id: &str, e: &Error) {
        if e.code == ErrorCode::TooLarge {
            self.cancel_upload(repo, id).await.ok();
        }
    }

    fn limits(&self, chunk: ChunkSpec) -> AppendLimits {
        AppendLimits {
            expected_start: chunk.start,
            expected_len: chunk.len,
            max_total: self.policy.max_blob_bytes,
        }
    }

    /// Append an optional last chunk, verify the digest, make the blob
    /// visible in `repo` and end the session.
    pub async fn finish_upload(
        &self,
        repo: &str,
        id: &str,
        digest: &Digest,
        last_chunk: Option<(ByteStream, ChunkSpec)>,
    ) -> Result<()> {
        let key = self.session(repo, id).await?;
        // From here the row may go: later requests ask the database.
        self.cache.drop_upload(id);
        // The namespace's byte quota, checked before the commit when the
        // size is known (every chunk sent but an unsized last one).
        let quota = self.quota_of(repo).is_some();
        let known = match (&last_chunk, quota) {
            (_, false) => None,
            (None, true) => Some(self.blobs.upload_size(&key).await?),
            (Some((_, c)), true) => match c.len {
                Some(n) => Some(self.blobs.upload_size(&key).await? + n),
                None => None,
            },
        };
        let mut adds = match known {
            Some(n) => self.check_bytes(repo, Some(digest), n).await?,
            None => 0,
        };
        let new_repo = quota && !self.meta.repo_exists(repo).await?;
        let last = last_chunk.map(|(body, chunk)| (body, self.limits(chunk)));
        // Held from before the bytes are placed until the link commits: a
        // collection removing this digest meanwhile would delete them.
        let _fence = self.meta.enter_fence(&digest.to_string()).await?;
        let existed =
            quota && known.is_none() && self.meta.blob_any(&digest.to_string()).await?.is_some();
        // Commit ends the session whatever the outcome (a bad digest
        // discards it); a bad last chunk leaves it as it was. Bytes before
        // link: a crash in between leaves an unreferenced blob, never a link
        // to missing bytes.
        match self.blobs.upload_finish(&key, last, digest).await {
            Ok(done) => {
                if quota && known.is_none() {
                    // Sized only now: over quota, the bytes go again (ours
                    // alone: a blob stored before stays), unlinked.
                    match self.check_bytes(repo, Some(digest), done.size).await {
                        Ok(n) => adds = n,
                        Err(e) => {
                            if !existed {
                                let ours = BlobRef {
                                    digest,
                                    location: done.location.as_deref(),
                                };
                                self.blobs.delete(ours).await.ok();
                            }
                            self.meta.delete_upload(id).await?;
                            return Err(e);
                        }
                    }
                }
                self.link_committed(repo, digest, done, Some(id)).await?;
                self.note_usage(repo, i64::from(new_repo), adds);
                Ok(())
            }
            Err(e) if e.code == ErrorCode::DigestInvalid => {
                self.meta.delete_upload(id).await?;
                Err(e)
            }
            Err(e) => {
                self.discard_if_too_large(repo, id, &e).await;
                Err(e)
            }
        }
    }

    /// Link a blob just committed. If another upload of the same digest
    /// got there first (under another name), this copy is redundant: the
    /// recorded one serves, and this one goes.
    async fn link_committed(
        &self,
        repo: &str,
        digest: &Digest,
        done: Committed,
        upload: Option<&str>,
    ) -> Result<()> {
        self.wrote();
        self.meta
            .link_blob(repo, digest, done.size, done.location.as_deref(), upload)
            .await?;
        if let Some(ours) = &done.location {
            let recorded = self.meta.blob_any(&digest.to_string()).await?;
            if recorded.as_ref().and_then(|(_, l)| l.as_ref()) != Some(ours) {
                let duplicate = BlobRef {
                    digest,
                    location: Some(ours),
                };
                if let Err(e) = self.blobs.delete(duplicate).await {
                    tracing::warn!(error = %e, location = %ours, "could not remove a duplicate blob object");
                }
            }
        }
        Ok(())
    }

    /// One-request upload (`POST ?digest=`).
    pub async fn upload_monolithic(
        &self,
        repo: &str,
        digest: &Digest,
        body: ByteStream,
        len: Option<u64>,
    ) -> Result<()> {
        let id = self.start_upload(repo).await?;
        let result = self
            .finish_upload(
                repo,
                &id,
                digest,
                Some((body, ChunkSpec { start: None, len })),
            )
            .await;
        if result.is_err() {
            self.cancel_upload(repo, &id).await.ok();
        }
        result
    }

    pub async fn cancel_upload(&self, repo: &str, id: &str) -> Result<()> {
        let key = self.session(repo, id).await?;
        self.cache.drop_upload(id);
        self.blobs.upload_abort(&key).await?;
        self.meta.delete_upload(id).await?;
        Ok(())
    }

    /// Repositories `digest` is linked in (for a mount without `from`:
    /// the caller may mount from one it may read).
    pub async fn repos_with_blob(&self, digest: &Digest) -> Result<Vec<String>> {
        self.meta.repos_with_blob(digest, 1000).await
    }

    /// Cross-repository mount: link `digest` into `repo` if `from` has it.
    pub async fn mount(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
        validate_name(repo)?;
        // A bad `from` only means nothing can be mounted from it.
        if validate_name(from).is_err() {
            return Ok(false);
        }
        // The bytes checked here must still be there when the link commits.
        let _fence = self.meta.enter_fence(&digest.to_string()).await?;
        let Some((size, location)) = self.meta.linked_blob(from, digest).await? else {
            return Ok(false);
        };
        let blob = BlobRef {
            digest,
            location: location.as_deref(),
        };
        if self.blobs.stat(blob).await?.is_none() {
            return Ok(false);
        }
        self.check_new_repo(repo).await?;
        let adds = self.check_bytes(repo, Some(digest), size).await?;
        let new_repo = self.quota_of(repo).is_some() && !self.meta.repo_exists(repo).await?;
        self.meta
            .link_blob(repo, digest, size, location.as_deref(), None)
            .await?;
        self.note_usage(repo, i64::from(new_repo), adds);
        Ok(true)
    }

    // ---- push: manifests ---------------------------------------------------

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<PushedManifest> {
        validate_name(repo)?;
        self.wrote();
        let reference = Reference::parse(reference)?;
        if body.len() > self.policy.max_manifest_bytes {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "manifest is {} bytes, the limit is {}",
                    body.len(),
                    self.policy.max_manifest_bytes
                ),
            ));
        }
        let parsed: ParsedManifest = manifest::parse(content_type, body)?;
        let (digest, tag) = match &reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), body);
                if &actual != expected {
                    return Err(Error::new(
                        ErrorCode::DigestInvalid,
                        "manifest body does not match the digest in the URL",
                    )
                    .with_detail(serde_json::json!({
                        "expected": expected.to_string(), "actual": actual.to_string()
                    })));
                }
                (actual, None)
            }
            Reference::Tag(tag) => (Digest::of(Algorithm::Sha256, body), Some(tag.as_str())),
        };
        let keep_existing = match tag {
            Some(tag) => self.tag_is_immutable(repo, tag).await?,
            None => false,
        };
        self.meta
            .put_manifest(
                repo,
                &digest,
                &parsed,
                body,
                tag,
                keep_existing,
                true,
                self.now_ms(),
                self.actor(),
            )
            .await?;
        if let Some(tag) = tag {
            self.cache.set_tag(repo, tag, &digest);
        }
        Ok(PushedManifest {
            digest,
            subject: parsed.subject,
        })
    }

    // ---- discovery ---------------------------------------------------------

    pub async fn tags(
        &self,
        repo: &str,
        last: Option<&str>,
        n: Option<i64>,
    ) -> Result<Vec<String>> {
        validate_name(repo)?;
        self.meta
            .list_tags(repo, last, n.unwrap_or(i64::MAX))
            .await?
            .ok_or_else(|| Error::name_unknown(repo))
    }

    pub async fn catalog(&self, last: Option<&str>, n: Option<i64>) -> Result<Vec<String>> {
        self.meta.catalog(last, n.unwrap_or(i64::MAX)).await
    }

    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        validate_name(repo)?;
        self.meta.referrers(repo, subject, artifact_type).await
    }

    // ---- management --------------------------------------------------------

    fn check_delete(&self) -> Result<()> {
        if self.policy.delete_enabled {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Unsupported,
                "deletes are disabled on this registry",
            ))
        }
    }

    /// Delete by digest (the manifest and every tag on it) or by tag (the tag).
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<()> {
        validate_name(repo)?;
        let reference = Reference::parse(reference)?;
        self.check_delete()?;
        let deleted = match &reference {
            Reference::Digest(d) => {
                let deleted = self.meta.delete_manifest(repo, d, self.actor()).await;
                self.cache.drop_manifest(repo, d);
                deleted?
            }
            Reference::Tag(t) => {
                let deleted = self.meta.delete_tag(repo, t, self.actor()).await;
                self.cache.drop_tag(repo, t);
                deleted?
            }
        };
        if deleted {
            Ok(())
        } else {
            Err(Error::manifest_unknown(reference))
        }
    }

    pub async fn delete_blob(&self, repo: &str, digest: &Digest) -> Result<()> {
        validate_name(repo)?;
        self.check_delete()?;
        let unlinked = self.meta.unlink_blob(repo, digest).await;
        self.cache.drop_link(repo, digest);
        if unlinked? {
            Ok(())
        } else {
            Err(Error::blob_unknown(digest))
        }
    }

    // ---- housekeeping ------------------------------------------------------

    /// Remove upload sessions idle for longer than `ttl`, and staging files
    /// no session owns (left by a crash). Returns how many went.
    pub async fn purge_uploads(&self, ttl: Duration) -> Result<usize> {
        self.purge_uploads_idle_since(metadata::now() - ttl.as_secs() as i64)
            .await
    }

    /// [`Registry::purge_uploads`] with an explicit cut-off (unix seconds).
    pub async fn purge_uploads_idle_since(&self, before: i64) -> Result<usize> {
        // Files first, rows second: a session created in between has its row
        // before its file, so it is never mistaken for debris.
        let files = self.blobs.upload_list().await?;
        let known: std::collections::HashSet<String> = self
            .meta
            .uploads(None)
            .await?
            .iter()
            .map(|(id, repo)| session_key(repo, id))
            .collect();
        let mut purged = 0;
        for (key, _) in files.iter().filter(|(key, _)| !known.contains(key)) {
            self.blobs.upload_abort(key).await?;
            purged += 1;
        }
        for (id, repo) in self.meta.uploads(Some(before)).await? {
            self.cache.drop_upload(&id);
            self.blobs.upload_abort(&session_key(&repo, &id)).await?;
            self.meta.delete_upload(&id).await?;
            purged += 1;
        }
        Ok(purged)
    }
}

/// The blob store's name for upload `id` of `repo`: it binds the staging
/// file to its repository too, so an id used under another repository
/// names no bytes even without the database.
pub(crate) fn session_key(repo: &str, id: &str) -> String {
    let repo_hash = Digest::sha256_of(repo.as_bytes());
    format!("{id}-{}", &repo_hash.hex()[..16])
}

/// The upload id in a [`session_key`].
fn upload_id_of(key: &str) -> &str {
    key.rsplit_once('-').map_or(key, |(id, _)| id)
}
