//! The registry's domain operations: what a push, pull, listing or delete
//! means, over the blob store and the metadata database. No HTTP here.

mod ecr;
mod gc;
mod history;
mod immutability;
mod lifecycle;
mod pull_through;
mod quota;
mod uploads;

pub use crate::cache::BlobInfo;
pub use ecr::RepoRefusal;
pub use gc::{GcOptions, GcReport, GcTotals};
pub use history::Rollback;
pub use lifecycle::Expired;
pub use quota::{namespace_of, NamespaceUsage, Quota};
pub(crate) use uploads::session_key;
use uploads::MetaSessions;

use crate::blobstore::{BlobRef, BlobStore, ByteStream, LocalBlobStore, S3BlobStore, S3Config};
use crate::cache::Cache;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{self, ParsedManifest};
use crate::metadata::{self, Metadata, NewManifest, Referrer, StoredManifest};
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
    /// What indexing one layer's files may spend.
    pub layer_limits: crate::layers::Limits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: None,
            delete_enabled: true,
            db_busy_timeout: metadata::busy::DEFAULT_BUDGET,
            quotas: Vec::new(),
            layer_limits: Default::default(),
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
    /// Layer file lists (see `crate::layers`).
    layers: crate::layers::Indexer,
}

/// A source of the time (unix milliseconds).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

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
        let layers = crate::layers::Indexer::new(policy.layer_limits.clone());
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
            layers,
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

    /// This node's layer file lists.
    pub(crate) fn layer_indexer(&self) -> &crate::layers::Indexer {
        &self.layers
    }

    pub(crate) fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
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
            .put_manifest(&NewManifest {
                repo,
                digest: &digest,
                parsed: &parsed,
                content: body,
                tag,
                keep_existing,
                check_refs: true,
                pushed_ms: self.now_ms(),
                actor: self.actor(),
            })
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
}
