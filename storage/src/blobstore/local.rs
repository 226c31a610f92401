//! Blob store on local disk, through `object_store`'s `LocalFileSystem`.
//!
//! On-disk layout under the data directory (the one place it is defined):
//! - `blobs/<algorithm>/<first two hex chars>/<hex>`: committed blobs, one
//!   file per digest for the whole registry, immutable once renamed in place.
//! - `uploads/<upload uuid>-<16 hex of sha256(repository)>`: bytes of an
//!   upload in progress (the session's row is in the metadata database),
//!   created with its first chunk. An append-only file, so it survives
//!   restarts; its name ties it to its repository. The running hash lives
//!   in memory and is recomputed from the file after a restart. A blob sent
//!   whole in one small request never gets a staging file: it is written
//!   straight into its blob directory (see `place`).
//! - `quarantine/<algorithm>/<hex>`: blobs `registry check --repair` found
//!   corrupt, moved out of service.
//! - `registry.db`: the metadata database (see `crate::metadata`).

use super::pipeline::{
    check_complete, check_received, interrupted, pump, BufferPool, Closed, PendingHash, UploadFile,
    IO_CHUNK,
};
use super::place;
use super::read::file_stream;
use super::{
    AppendLimits, BlobListing, BlobRef, BlobStore, ByteStream, Committed, Fence, SessionLock,
};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, ErrorCode, Result};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::task::spawn_blocking;

struct Session {
    /// Running hash of the bytes in the file; `None` after a restart (or a
    /// lost hash chain) until recomputed from the file.
    hasher: Option<PendingHash>,
    size: u64,
    /// Whether the staging file exists (it is made with the first chunk).
    staged: bool,
    /// How the session ended, once it has: a request that waited for the
    /// session's lock behind the one that ended it must not touch it again.
    ended: Option<Ended>,
}

/// The end of an upload session, remembered for a while after it (see
/// [`TOMBSTONES`]).
#[derive(Debug, Clone)]
enum Ended {
    /// Its bytes became the blob `digest` of `size` bytes.
    Committed { digest: Digest, size: u64 },
    /// Cancelled, or its bytes did not match the digest.
    Discarded,
}

impl Session {
    fn empty() -> Session {
        Session {
            hasher: Some(PendingHash::Ready(Hasher::new(Algorithm::Sha256))),
            size: 0,
            staged: false,
            ended: None,
        }
    }

    /// The session, unless it has ended.
    fn live(&mut self, id: &str) -> Result<&mut Session> {
        match self.ended {
            None => Ok(self),
            Some(_) => Err(Error::upload_unknown(id)),
        }
    }
}

/// How many ended sessions, and for how long, are remembered. A final
/// `PUT` whose answer was lost (or whose blob link failed in the database)
/// is retried by the client: the retry must find the blob it committed,
/// not an empty session that no longer matches its digest; and a `PATCH`
/// that raced the final `PUT` must not bring the session back to life.
const TOMBSTONES: usize = 4096;
const TOMBSTONE_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Largest blob sent whole in one request that is gathered in memory and
/// written in one step (see [`place::write_unnamed`]); larger ones stream
/// through the upload pipeline.
const WHOLE_IN_MEMORY: u64 = 256 << 10;

type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

/// A session locked by one request. A request's future can be dropped at
/// any `.await` (the client went away, an HTTP/2 reset, a timeout), and
/// the blocking threads of an append it started cannot be: they finish
/// their writes. So while an append is in flight, dropping this hands the
/// lock to a task that waits until the last writer has let go of the file,
/// cuts the file back to the acknowledged size, and only then unlocks: the
/// next request sees the session exactly as the last acknowledged chunk
/// left it, and no byte of the abandoned chunk can land in a later one.
struct Held {
    guard: Option<tokio::sync::OwnedMutexGuard<Session>>,
    /// While an append is in flight: the staging file, its acknowledged
    /// size, and when its last writer is gone.
    pending: Option<(PathBuf, u64, Closed)>,
}

impl Held {
    async fn lock(handle: SessionHandle) -> Held {
        Held {
            guard: Some(handle.lock_owned().await),
            pending: None,
        }
    }

    fn session(&mut self) -> &mut Session {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let (Some(guard), Some((path, size, closed))) = (self.guard.take(), self.pending.take())
        else {
            return;
        };
        let cleanup = async move {
            closed.wait().await;
            let cut = spawn_blocking(move || cut_back(&path, size)).await;
            if !matches!(cut, Ok(Ok(()))) {
                // The commit still places only the verified bytes.
                tracing::warn!(?cut, "could not cut an abandoned upload back");
            }
            drop(guard);
        };
        // Without a runtime the process is ending; after a restart the
        // session's size is read from the file, and the digest check at
        // commit refuses whatever is not the blob.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(cleanup);
        }
    }
}

/// Shorten a staging file to `size` bytes (a missing one is fine).
fn cut_back(path: &Path, size: u64) -> std::io::Result<()> {
    let file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() > size {
        file.set_len(size)?;
    }
    Ok(())
}

pub struct LocalBlobStore {
    root: PathBuf,
    store: LocalFileSystem,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    /// Ended sessions still in `sessions`, oldest first.
    tombstones: Mutex<std::collections::VecDeque<(std::time::Instant, String)>>,
    buffers: BufferPool,
    /// The filesystem can make unnamed files (`O_TMPFILE`).
    unnamed: bool,
}

impl LocalBlobStore {
    pub fn open(root: impl AsRef<Path>) -> Result<LocalBlobStore> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        let unnamed = place::unnamed_files_work(&root.join("uploads"));
        Ok(LocalBlobStore {
            root,
            store,
            sessions: Mutex::new(HashMap::new()),
            tombstones: Mutex::default(),
            buffers: BufferPool::default(),
            unnamed,
        })
    }

    fn blob_path(digest: &Digest) -> ObjectPath {
        let hex = digest.hex();
        ObjectPath::from(format!(
            "blobs/{}/{}/{}",
            digest.algorithm().as_str(),
            &hex[..2],
            hex
        ))
    }

    fn blob_file(&self, digest: &Digest) -> PathBuf {
        self.root.join(Self::blob_path(digest).as_ref())
    }

    fn upload_file(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Session ids come from URLs: only our own uuid shape may reach the
    /// filesystem.
    /// A session key as the registry makes them (also S3's rule).
    pub(crate) fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }

    /// The in-memory state of session `id` (which the caller knows exists),
    /// reloaded from its staging file after a restart.
    async fn session(&self, id: &str) -> Result<SessionHandle> {
        if !Self::valid_id(id) {
            return Err(Error::upload_unknown(id));
        }
        if let Some(s) = self.sessions.lock().unwrap().get(id) {
            return Ok(s.clone());
        }
        let session = match tokio::fs::metadata(self.upload_file(id)).await {
            Ok(m) => Session {
                hasher: None,
                size: m.len(),
                staged: true,
                ended: None,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Session::empty(),
            Err(e) => return Err(e.into()),
        };
        let handle = Arc::new(tokio::sync::Mutex::new(session));
        Ok(self
            .sessions
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_insert(handle)
            .clone())
    }

    /// Append a chunk to the session's staging file (see
    /// [`BlobStore::upload_append`]).
    async fn append(
        &self,
        id: &str,
        held: &mut Held,
        body: ByteStream,
        limits: AppendLimits,
    ) -> Result<u64> {
        let session = held.session();
        let start = session.size;
        if let Some(expected) = limits.expected_start {
            if expected != start {
                return Err(Error::new(
                    ErrorCode::RangeInvalid,
                    format!("chunk starts at {expected}, upload has {start} bytes"),
                )
                .with_detail(serde_json::json!({ "size": start })));
            }
        }
        let path = self.upload_file(id);
        // Taken out for the append: if the request is dropped from here on,
        // the session has no hash and recomputes it from the file.
        let prev = match session.hasher.take() {
            Some(pending) => pending,
            None => PendingHash::Ready(hash_file(path.clone(), start, Algorithm::Sha256).await?),
        };
        let opened = {
            let path = path.clone();
            spawn_blocking(move || UploadFile::open(&path))
                .await
                .map_err(Error::internal)?
        };
        let (file, closed) = match opened {
            Ok(f) => f,
            Err(e) => {
                held.session().hasher = Some(prev);
                return Err(e.into());
            }
        };
        held.session().staged = true;
        // From here until the outcome is settled, a drop cuts the file back.
        held.pending = Some((path.clone(), start, closed));
        // `pump` returns only once every write it started is done.
        match pump(self.buffers.clone(), file, prev, body, start, limits).await {
            Ok((pending, size)) => {
                held.pending = None;
                let session = held.session();
                session.hasher = Some(pending);
                session.size = size;
                Ok(size)
            }
            Err((e, before)) => {
                // `None`: recomputed from the file on next use.
                held.session().hasher = before.map(PendingHash::Ready);
                // All-or-nothing: cut the file back to where the chunk began.
                let cut = spawn_blocking(move || cut_back(&path, start)).await;
                held.pending = None;
                cut.map_err(Error::internal)??;
                Err(e)
            }
        }
    }

    /// Verify the hash of a session's bytes and make them the blob
    /// `expected` (entering `fence` just before); the session ends either
    /// way, unless placing the bytes failed for a reason a retry may not
    /// meet (a full disk).
    async fn commit(
        &self,
        id: &str,
        session: &mut Session,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(u64, SessionLock)> {
        if !session.staged {
            // Nothing was ever sent: the empty blob.
            return self
                .write_whole(id, session, Bytes::new(), expected, fence)
                .await;
        }
        let path = self.upload_file(id);
        let size = session.size;
        let running = match (session.hasher.take(), expected.algorithm()) {
            (Some(pending), Algorithm::Sha256) => pending.resolve().await.ok(),
            _ => None,
        };
        let hasher = match running {
            Some(h) => h,
            None => hash_file(path.clone(), size, expected.algorithm()).await?,
        };
        let actual = hasher.finish();
        if &actual != expected {
            self.discard(id, session).await?;
            return Err(digest_mismatch(expected, &actual));
        }
        let fenced = fence().await?;
        // Exactly the `size` bytes just verified, durable before visible,
        // and never over a blob already there (see `place::promote`).
        let target = self.blob_file(expected);
        let placed = spawn_blocking(move || place::promote(&path, &target, size))
            .await
            .map_err(Error::internal)?;
        match placed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.discard(id, session).await?;
                return Err(Error::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("{e}; start the upload again"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.end(
            id,
            session,
            Ended::Committed {
                digest: expected.clone(),
                size,
            },
        );
        Ok((size, fenced))
    }

    /// Make `data`, all of a session's bytes, the blob `expected` in one
    /// step (entering `fence` once they are verified); the session ends
    /// either way.
    async fn write_whole(
        &self,
        id: &str,
        session: &mut Session,
        data: Bytes,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(u64, SessionLock)> {
        let actual = Digest::of(expected.algorithm(), &data);
        if &actual != expected {
            self.discard(id, session).await?;
            return Err(digest_mismatch(expected, &actual));
        }
        let fenced = fence().await?;
        let target = self.blob_file(expected);
        let size = data.len() as u64;
        if self.unnamed {
            spawn_blocking(move || place::write_unnamed(&target, &data))
                .await
                .map_err(Error::internal)??;
        } else {
            let path = self.upload_file(id);
            spawn_blocking(move || -> std::io::Result<()> {
                std::fs::write(&path, &data)?;
                place::promote(&path, &target, size)
            })
            .await
            .map_err(Error::internal)??;
        }
        self.end(
            id,
            session,
            Ended::Committed {
                digest: expected.clone(),
                size,
            },
        );
        Ok((size, fenced))
    }

    /// End a session and remove its staging file.
    async fn discard(&self, id: &str, session: &mut Session) -> Result<()> {
        self.remove_staged(id).await?;
        self.end(id, session, Ended::Discarded);
        Ok(())
    }

    async fn remove_staged(&self, id: &str) -> Result<()> {
        match tokio::fs::remove_file(self.upload_file(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Mark a session ended; it stays known as such for a while (see
    /// [`TOMBSTONES`]), then is forgotten.
    fn end(&self, id: &str, session: &mut Session, how: Ended) {
        session.ended = Some(how);
        session.hasher = None;
        let mut tombstones = self.tombstones.lock().unwrap();
        tombstones.push_back((std::time::Instant::now(), id.to_owned()));
        let mut sessions = self.sessions.lock().unwrap();
        while tombstones.len() > TOMBSTONES
            || tombstones
                .front()
                .is_some_and(|(at, _)| at.elapsed() > TOMBSTONE_TTL)
        {
            if let Some((_, old)) = tombstones.pop_front() {
                sessions.remove(&old);
            }
        }
    }
}

fn digest_mismatch(expected: &Digest, actual: &Digest) -> Error {
    Error::new(
        ErrorCode::DigestInvalid,
        "provided digest did not match uploaded content",
    )
    .with_detail(
        serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
    )
}

/// Gather a body of at most [`WHOLE_IN_MEMORY`] bytes, held to `limits`.
async fn gather(mut body: ByteStream, limits: &AppendLimits) -> Result<Bytes> {
    let mut all = bytes::BytesMut::with_capacity(limits.expected_len.unwrap_or(0) as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(interrupted)?;
        all.extend_from_slice(&chunk);
        check_received(limits, 0, all.len() as u64)?;
    }
    check_complete(limits, all.len() as u64)?;
    Ok(all.freeze())
}

/// Hash the first `len` bytes of a file (used after a restart, or when the
/// final digest uses another algorithm than the running hash).
async fn hash_file(path: PathBuf, len: u64, algorithm: Algorithm) -> Result<Hasher> {
    spawn_blocking(move || -> Result<Hasher> {
        let mut file = File::open(&path)?.take(len);
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher)
    })
    .await
    .map_err(Error::internal)?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn stat(&self, blob: BlobRef<'_>) -> Result<Option<u64>> {
        let digest = blob.digest;
        match self.store.head(&Self::blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, blob: BlobRef<'_>, range: Option<Range<u64>>) -> Result<ByteStream> {
        let digest = blob.digest;
        let opts = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let result = match self.store.get_opts(&Self::blob_path(digest), opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(Error::blob_unknown(digest)),
            Err(e) => return Err(e.into()),
        };
        let range = result.range.clone();
        match result.payload {
            // object_store reads local files in 8 KiB steps; large reads on
            // our own keep a pull at disk/page-cache speed.
            GetResultPayload::File(file, _) => Ok(file_stream(file, range)),
            GetResultPayload::Stream(s) => Ok(s.map_err(std::io::Error::other).boxed()),
        }
    }

    async fn delete(&self, blob: BlobRef<'_>) -> Result<()> {
        let digest = blob.digest;
        match self.store.delete(&Self::blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn upload_create(&self, id: &str) -> Result<()> {
        if !Self::valid_id(id) {
            return Err(Error::internal(format!("bad upload id {id:?}")));
        }
        // No file yet: it comes with the first chunk, if any (most blobs
        // arrive whole in their final request).
        self.sessions.lock().unwrap().insert(
            id.to_owned(),
            Arc::new(tokio::sync::Mutex::new(Session::empty())),
        );
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<u64> {
        Ok(self.session(id).await?.lock().await.live(id)?.size)
    }

    async fn upload_append(&self, id: &str, body: ByteStream, limits: AppendLimits) -> Result<u64> {
        let mut held = Held::lock(self.session(id).await?).await;
        held.session().live(id)?;
        self.append(id, &mut held, body, limits).await
    }

    async fn upload_finish(
        &self,
        id: &str,
        last: Option<(ByteStream, AppendLimits)>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)> {
        let (size, fenced) = self.finish(id, last, expected, fence).await?;
        let committed = Committed {
            size,
            location: None,
        };
        Ok((committed, fenced))
    }

    async fn upload_abort(&self, id: &str) -> Result<()> {
        self.abort(id).await
    }

    fn key_of(&self, blob: BlobRef<'_>) -> String {
        Self::blob_path(blob.digest).to_string()
    }

    async fn upload_list(&self) -> Result<Vec<(String, i64)>> {
        self.list_uploads().await
    }

    async fn list(&self) -> Result<BlobListing> {
        self.list_blobs().await
    }

    async fn quarantine(&self, blob: BlobRef<'_>) -> Result<()> {
        self.quarantine_blob(blob).await
    }
}

impl LocalBlobStore {
    async fn finish(
        &self,
        id: &str,
        last: Option<(ByteStream, AppendLimits)>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(u64, SessionLock)> {
        let mut held = Held::lock(self.session(id).await?).await;
        // The same final request again (a retry whose answer was lost, or
        // whose blob link failed), or two at once: the blob is there.
        if let Some(Ended::Committed { digest, size }) = &held.session().ended {
            if digest == expected {
                let size = *size;
                return Ok((size, fence().await?));
            }
        }
        held.session().live(id)?;
        if let Some((body, limits)) = last {
            let session = held.session();
            let whole = !session.staged
                && limits.expected_start.unwrap_or(0) == 0
                && limits.expected_len.is_some_and(|n| n <= WHOLE_IN_MEMORY);
            if whole {
                // All-or-nothing as any chunk: a bad body leaves the session
                // as it was.
                let data = gather(body, &limits).await?;
                return self
                    .write_whole(id, held.session(), data, expected, fence)
                    .await;
            }
            self.append(id, &mut held, body, limits).await?;
        }
        self.commit(id, held.session(), expected, fence).await
    }

    async fn abort(&self, id: &str) -> Result<()> {
        if !Self::valid_id(id) {
            return Ok(());
        }
        let handle = self.sessions.lock().unwrap().get(id).cloned();
        match handle {
            // Wait for any append in flight so its rollback cannot race the
            // unlink.
            Some(h) => match h.lock().await.live(id) {
                Ok(session) => self.discard(id, session).await,
                Err(_) => Ok(()),
            },
            // A session from before a restart, or debris.
            None => self.remove_staged(id).await,
        }
    }
}

#[path = "local_scan.rs"]
mod scan;

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
