//! The blob store: content-addressed bytes plus upload staging.
//!
//! A small trait of our own so the rest of the registry never knows which
//! backend (local disk today, S3 later) holds the bytes. Hashing happens
//! here, while bytes arrive, so a blob only becomes visible after its digest
//! has been verified.

mod fences;
mod local;
mod pipeline;
mod place;
mod read;
pub mod s3;
mod sessions;
mod windows;

pub use fences::LocalFences;
pub use local::LocalBlobStore;
pub use read::file_window;
pub use s3::{S3BlobStore, S3Config};
pub use sessions::{LocalSessionLocks, Release, SessionBook, SessionLock};
pub use windows::file_source;

use crate::digest::Digest;
use crate::error::Result;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::ops::Range;

/// A request or response body as a stream of chunks.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// How a finishing upload enters its digest's fence (see [`LocalFences`]):
/// called by [`BlobStore::upload_finish`] once the last byte has arrived and
/// before anything is placed under the digest. Taking it only then means no
/// lock, and no database connection, is held while a client sends a body.
pub type Fence = Box<dyn FnOnce() -> BoxFuture<'static, Result<SessionLock>> + Send>;

/// A fence that guards nothing, for callers that run no garbage collection
/// (tests, offline tools).
pub fn no_fence() -> Fence {
    Box::new(|| Box::pin(async { Ok(SessionLock::new(())) }))
}

/// What an append must satisfy before any byte is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendLimits {
    /// The chunk must start at this offset (from `Content-Range`).
    pub expected_start: Option<u64>,
    /// The chunk must be exactly this long (from `Content-Range`/`Content-Length`).
    pub expected_len: Option<u64>,
    /// The whole upload may not grow beyond this many bytes.
    pub max_total: Option<u64>,
}

/// Where a committed blob's bytes are: its digest, and the store's own
/// name for them when that is not derived from the digest (an S3 object
/// kept under the name of the multipart upload that wrote it: renaming it
/// would copy every byte).
#[derive(Debug, Clone, Copy)]
pub struct BlobRef<'a> {
    pub digest: &'a Digest,
    pub location: Option<&'a str>,
}

impl<'a> BlobRef<'a> {
    pub fn of(digest: &'a Digest) -> BlobRef<'a> {
        BlobRef {
            digest,
            location: None,
        }
    }
}

/// A committed upload: its size, and where the store put it (`None`: under
/// the digest's own name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub size: u64,
    pub location: Option<String>,
}

/// Where a blob stored under its digest lives, relative to the store's
/// root: `blobs/<algorithm>/<first two hex digits>/<hex>`, the same on disk
/// and in S3 (so `registry migrate` copies names as they are).
pub fn digest_key(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "blobs/{}/{}/{}",
        digest.algorithm().as_str(),
        &hex[..2],
        hex
    )
}

/// A blob's digest from its [`digest_key`], if `key` is one.
pub fn parse_digest_key(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix("blobs/")?;
    let mut parts = rest.split('/');
    let (alg, fan, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || hex.get(..2) != Some(fan) {
        return None;
    }
    format!("{alg}:{hex}").parse().ok()
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Whether the store can be reached (for `/readyz`).
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Size of a committed blob, or `None` if absent.
    async fn stat(&self, blob: BlobRef<'_>) -> Result<Option<u64>>;

    /// Stream a committed blob, or a byte range of it (already validated
    /// against the size by the caller).
    async fn get(&self, blob: BlobRef<'_>, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// A URL the client may fetch the blob from directly (a presigned GET),
    /// if this store serves redirects.
    async fn redirect(&self, _blob: BlobRef<'_>) -> Result<Option<String>> {
        Ok(None)
    }

    /// Remove a committed blob (garbage collection only).
    async fn delete(&self, blob: BlobRef<'_>) -> Result<()>;

    /// Remove many committed blobs; one outcome per blob, in order.
    async fn delete_many(&self, blobs: &[BlobRef<'_>]) -> Vec<Result<()>> {
        delete_each(self, blobs).await
    }

    /// Start a new, empty upload session.
    async fn upload_create(&self, id: &str) -> Result<()>;

    /// Bytes received so far by session `id`. Whether the session exists is
    /// the metadata database's to say (its row); a session the store has no
    /// bytes for has 0.
    async fn upload_size(&self, id: &str) -> Result<u64>;

    /// Append a chunk. All-or-nothing: if the body fails, is short, or breaks
    /// a limit, the session is left exactly as it was. Returns the new size.
    /// Cancel-safe: a call whose future is dropped at any point (the client
    /// went away) leaves the session at its last acknowledged size, and no
    /// byte of the abandoned chunk can reach a committed blob.
    async fn upload_append(&self, id: &str, body: ByteStream, limits: AppendLimits) -> Result<u64>;

    /// Verify the upload hashes to `expected` and atomically make it the blob
    /// `expected`, without a fence (see [`BlobStore::upload_finish`]). On
    /// mismatch the session is discarded and nothing becomes visible.
    async fn upload_commit(&self, id: &str, expected: &Digest) -> Result<Committed> {
        Ok(self.upload_finish(id, None, expected, no_fence()).await?.0)
    }

    /// Append an optional last chunk, then verify the upload hashes to
    /// `expected` and make it the blob `expected`: only the verified bytes,
    /// and never over a blob already stored under that digest (create if
    /// absent). `fence` is entered once the body is in, before the bytes
    /// are placed; the caller holds what it returns until the blob is
    /// linked. On a digest mismatch the session is discarded and nothing
    /// becomes visible; a bad last chunk leaves the session as it was. A
    /// store may write a small blob that arrives whole in one step, without
    /// staging it.
    async fn upload_finish(
        &self,
        id: &str,
        last: Option<(ByteStream, AppendLimits)>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)>;

    /// Discard an upload session and its bytes.
    async fn upload_abort(&self, id: &str) -> Result<()>;

    /// Every upload session in the store, with the time (unix seconds) its
    /// bytes last changed, so idle sessions can be purged.
    async fn upload_list(&self) -> Result<Vec<(String, i64)>>;

    /// Every committed blob with its size, and whatever else lies where
    /// blobs are kept (for `registry check`).
    async fn list(&self) -> Result<BlobListing>;

    /// The store's name for a blob (to match listings and database rows).
    fn key_of(&self, blob: BlobRef<'_>) -> String;

    /// Move a committed blob out of service into a quarantine area (kept
    /// for inspection, never served); absent blobs are a no-op.
    async fn quarantine(&self, blob: BlobRef<'_>) -> Result<()>;
}

/// Delete `blobs` one request each, a few at a time (stores without a
/// batch delete).
async fn delete_each<S: BlobStore + ?Sized>(store: &S, blobs: &[BlobRef<'_>]) -> Vec<Result<()>> {
    let mut out = Vec::with_capacity(blobs.len());
    for chunk in blobs.chunks(16) {
        let mut each = Vec::with_capacity(chunk.len());
        for b in chunk {
            each.push(store.delete(*b));
        }
        out.extend(futures::future::join_all(each).await);
    }
    out
}

/// An object where blobs are kept.
#[derive(Debug, Clone)]
pub struct Listed {
    /// [`BlobStore::key_of`] of it.
    pub key: String,
    /// The digest its name says, for blobs stored under their digest.
    pub digest: Option<Digest>,
    pub size: u64,
}

/// What [`BlobStore::list`] found.
#[derive(Debug, Default)]
pub struct BlobListing {
    pub blobs: Vec<Listed>,
    /// Entries that are not blobs of ours (by name), as store paths.
    pub strays: Vec<String>,
}
