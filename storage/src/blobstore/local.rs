//! Blob store on local disk, through `object_store`'s `LocalFileSystem`.
//!
//! On-disk layout under the data directory (the one place it is defined):
//! - `blobs/<algorithm>/<first two hex chars>/<hex>`: committed blobs, one
//!   file per digest for the whole registry, immutable once renamed in place.
//! - `uploads/<upload uuid>-<16 hex of sha256(repository)>`: bytes of an
//!   upload in progress (the session's row is in the metadata database).
//!   An append-only file, so it survives restarts; its name ties it to its
//!   repository. The running hash lives in memory and is recomputed from
//!   the file after a restart.
//! - `registry.db`: the metadata database (see `crate::metadata`).

use super::pipeline::{pump, BufferPool, PendingHash, UploadFile, IO_CHUNK};
use super::read::file_stream;
use super::{AppendLimits, BlobStore, ByteStream};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, ErrorCode, Result};
use async_trait::async_trait;
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
}

type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

pub struct LocalBlobStore {
    root: PathBuf,
    store: LocalFileSystem,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    buffers: BufferPool,
}

impl LocalBlobStore {
    pub fn open(root: impl AsRef<Path>) -> Result<LocalBlobStore> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(LocalBlobStore {
            root,
            store,
            sessions: Mutex::new(HashMap::new()),
            buffers: BufferPool::default(),
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

    fn upload_object(id: &str) -> ObjectPath {
        ObjectPath::from(format!("uploads/{id}"))
    }

    fn upload_file(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Session ids come from URLs: only our own uuid shape may reach the
    /// filesystem.
    fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }

    /// The in-memory session for `id`, reloaded from disk after a restart.
    async fn session(&self, id: &str) -> Result<Option<SessionHandle>> {
        if !Self::valid_id(id) {
            return Ok(None);
        }
        if let Some(s) = self.sessions.lock().unwrap().get(id) {
            return Ok(Some(s.clone()));
        }
        let size = match tokio::fs::metadata(self.upload_file(id)).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let handle = Arc::new(tokio::sync::Mutex::new(Session { hasher: None, size }));
        Ok(Some(
            self.sessions
                .lock()
                .unwrap()
                .entry(id.to_owned())
                .or_insert(handle)
                .clone(),
        ))
    }

    fn forget(&self, id: &str) {
        self.sessions.lock().unwrap().remove(id);
    }
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
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.store.head(&Self::blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream> {
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

    async fn delete(&self, digest: &Digest) -> Result<()> {
        match self.store.delete(&Self::blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn upload_create(&self, id: &str) -> Result<()> {
        if !Self::valid_id(id) {
            return Err(Error::internal(format!("bad upload id {id:?}")));
        }
        tokio::fs::File::create(self.upload_file(id)).await?;
        let session = Session {
            hasher: Some(PendingHash::Ready(Hasher::new(Algorithm::Sha256))),
            size: 0,
        };
        self.sessions
            .lock()
            .unwrap()
            .insert(id.to_owned(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<Option<u64>> {
        match self.session(id).await? {
            Some(s) => Ok(Some(s.lock().await.size)),
            None => Ok(None),
        }
    }

    async fn upload_append(&self, id: &str, body: ByteStream, limits: AppendLimits) -> Result<u64> {
        let handle = self
            .session(id)
            .await?
            .ok_or_else(|| Error::upload_unknown(id))?;
        let mut session = handle.lock().await;
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
        let prev = match session.hasher.take() {
            Some(pending) => pending,
            None => PendingHash::Ready(hash_file(path.clone(), start, Algorithm::Sha256).await?),
        };
        let file = {
            let path = path.clone();
            spawn_blocking(move || UploadFile::open(&path))
                .await
                .map_err(Error::internal)?
        };
        let file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                drop(session);
                self.forget(id);
                return Err(Error::upload_unknown(id));
            }
            Err(e) => {
                session.hasher = Some(prev);
                return Err(e.into());
            }
        };
        match pump(self.buffers.clone(), file, prev, body, start, limits).await {
            Ok((pending, size)) => {
                session.hasher = Some(pending);
                session.size = size;
                Ok(size)
            }
            Err((e, before)) => {
                // `None`: recomputed from the file on next use.
                session.hasher = before.map(PendingHash::Ready);
                // All-or-nothing: cut the file back to where the chunk began.
                spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)?
                        .set_len(start)
                })
                .await
                .map_err(Error::internal)??;
                Err(e)
            }
        }
    }

    async fn upload_commit(&self, id: &str, expected: &Digest) -> Result<u64> {
        let handle = self
            .session(id)
            .await?
            .ok_or_else(|| Error::upload_unknown(id))?;
        let mut session = handle.lock().await;
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
            drop(session);
            self.upload_abort(id).await?;
            return Err(Error::new(
                ErrorCode::DigestInvalid,
                "provided digest did not match uploaded content",
            )
            .with_detail(serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() })));
        }
        // Durable before visible: a crash after the rename must not expose a
        // blob whose bytes are not on disk.
        let sync_path = path.clone();
        spawn_blocking(move || File::open(sync_path)?.sync_all())
            .await
            .map_err(Error::internal)??;
        let target = Self::blob_path(expected);
        if self.stat(expected).await?.is_some() {
            tokio::fs::remove_file(&path).await?;
        } else {
            self.store.rename(&Self::upload_object(id), &target).await?;
        }
        drop(session);
        self.forget(id);
        Ok(size)
    }

    async fn upload_abort(&self, id: &str) -> Result<()> {
        if !Self::valid_id(id) {
            return Ok(());
        }
        let handle = self.sessions.lock().unwrap().get(id).cloned();
        // Wait for any append in flight so its rollback cannot race the unlink.
        let _guard = match &handle {
            Some(h) => Some(h.lock().await),
            None => None,
        };
        match tokio::fs::remove_file(self.upload_file(id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.forget(id);
        Ok(())
    }

    async fn upload_list(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // The file's mtime moves with every append: it is the session's
            // last activity, and it survives restarts.
            let modified = match entry.metadata().await {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let secs = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            out.push((name, secs));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(parts: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    async fn read_all(s: ByteStream) -> Vec<u8> {
        s.try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn chunked_upload_commit_and_range_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store.upload_create("u1").await.unwrap();
        store
            .upload_append("u1", body(vec![b"hello ", b"wor"]), AppendLimits::default())
            .await
            .unwrap();
        // A chunk that does not start at the current offset is refused.
        let err = store
            .upload_append(
                "u1",
                body(vec![b"x"]),
                AppendLimits {
                    expected_start: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::RangeInvalid);
        store
            .upload_append("u1", body(vec![b"ld"]), AppendLimits::default())
            .await
            .unwrap();
        let digest = Digest::sha256_of(b"hello world");
        assert_eq!(store.upload_commit("u1", &digest).await.unwrap(), 11);
        assert_eq!(store.stat(&digest).await.unwrap(), Some(11));
        assert_eq!(
            read_all(store.get(&digest, None).await.unwrap()).await,
            b"hello world"
        );
        assert_eq!(
            read_all(store.get(&digest, Some(6..9)).await.unwrap()).await,
            b"wor"
        );
        assert_eq!(store.upload_size("u1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn short_chunk_rolls_back_and_restart_rehashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store.upload_create("u2").await.unwrap();
        store
            .upload_append("u2", body(vec![b"abc"]), AppendLimits::default())
            .await
            .unwrap();
        let err = store
            .upload_append(
                "u2",
                body(vec![b"de"]),
                AppendLimits {
                    expected_len: Some(5),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::SizeInvalid);
        assert_eq!(store.upload_size("u2").await.unwrap(), Some(3));
        drop(store);
        // A new process knows nothing but the file: the hash is recomputed.
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store
            .upload_append("u2", body(vec![b"def"]), AppendLimits::default())
            .await
            .unwrap();
        let wrong = Digest::sha256_of(b"nope");
        let err = store.upload_commit("u2", &wrong).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::DigestInvalid);
        assert_eq!(store.stat(&wrong).await.unwrap(), None);
        assert_eq!(store.upload_size("u2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sha512_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store.upload_create("u3").await.unwrap();
        store
            .upload_append("u3", body(vec![b"data"]), AppendLimits::default())
            .await
            .unwrap();
        let d = Digest::of(Algorithm::Sha512, b"data");
        store.upload_commit("u3", &d).await.unwrap();
        assert_eq!(store.stat(&d).await.unwrap(), Some(4));
    }

    fn big(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn stream(data: Vec<u8>) -> ByteStream {
        // Several frames, as a socket delivers them.
        let frames: Vec<std::io::Result<Bytes>> = data
            .chunks(300_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(frames).boxed()
    }

    #[tokio::test]
    async fn large_chunks_chain_their_hash_and_roll_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        store.upload_create("u4").await.unwrap();
        let (a, b, c) = (big(1, 5 << 20), big(2, 3 << 20), big(3, (4 << 20) + 17));
        store
            .upload_append("u4", stream(a.clone()), AppendLimits::default())
            .await
            .unwrap();
        // A chunk that turns out short (declared longer) goes whole, and the
        // hash chain is back where it was.
        let err = store
            .upload_append(
                "u4",
                stream(b.clone()),
                AppendLimits {
                    expected_len: Some((3 << 20) + 1),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::SizeInvalid);
        assert_eq!(store.upload_size("u4").await.unwrap(), Some(5 << 20));
        store
            .upload_append("u4", stream(b.clone()), AppendLimits::default())
            .await
            .unwrap();
        store
            .upload_append("u4", stream(c.clone()), AppendLimits::default())
            .await
            .unwrap();
        let all = [a, b, c].concat();
        let digest = Digest::sha256_of(&all);
        assert_eq!(
            store.upload_commit("u4", &digest).await.unwrap(),
            all.len() as u64
        );
        assert_eq!(read_all(store.get(&digest, None).await.unwrap()).await, all);
    }
}
