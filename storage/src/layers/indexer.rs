//! One index per layer digest, computed once: kept in the metadata
//! database (for every node, across restarts) and in a bounded cache here
//! (the decoded lists of the layers asked for lately).
//!
//! Indexing runs as a task of its own, not in the request that asked: a
//! client that goes away does not waste the work (or leave anything half
//! written: the row is one insert), and every request for the same layer
//! while it runs waits on that one task. A request waits a while, then is
//! told how far it has got (its caller answers "still indexing").

use super::entry::LayerIndex;
use super::index::{index_layer, IndexError, Limits, Progress};
use super::tree::Stacked;
use crate::blobstore::BlobStore;
use crate::cache::BlobInfo;
use crate::digest::Digest;
use crate::error::Result;
use crate::metadata::{Metadata, StoredLayerIndex};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::TryStreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Entries kept decoded in memory, over all cached layers (about 200
/// bytes each: some 40 MB at most).
const CACHE_ENTRIES: usize = 200_000;

/// What a request for a layer's index gets.
#[derive(Debug, Clone)]
pub enum Indexed {
    Ready(Arc<LayerIndex>),
    /// Still being indexed.
    Pending(Pending),
    /// The layer has no index, and will not have one.
    Refused(IndexError),
}

/// How far the indexing of a layer has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    /// Bytes of the blob read so far, of `size`.
    pub read: u64,
    pub size: u64,
    pub entries: u64,
}

type Outcome = std::result::Result<Arc<LayerIndex>, IndexError>;

struct Running {
    progress: Arc<Progress>,
    size: u64,
    done: Shared<BoxFuture<'static, Outcome>>,
}

#[derive(Default)]
struct Cache {
    by_digest: HashMap<String, Arc<LayerIndex>>,
    /// Oldest first; the first to go when over [`CACHE_ENTRIES`].
    order: VecDeque<String>,
    entries: usize,
}

impl Cache {
    fn get(&self, digest: &str) -> Option<Arc<LayerIndex>> {
        self.by_digest.get(digest).cloned()
    }

    fn put(&mut self, digest: &str, index: Arc<LayerIndex>) {
        if self.by_digest.contains_key(digest) {
            return;
        }
        self.entries += index.entries.len();
        self.by_digest.insert(digest.to_owned(), index);
        self.order.push_back(digest.to_owned());
        // Never evict the one just added: it is what the caller reads.
        while self.entries > CACHE_ENTRIES && self.order.len() > 1 {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(i) = self.by_digest.remove(&old) {
                self.entries -= i.entries.len();
            }
        }
    }
}

/// Layer indexes of this node (cheap to clone).
#[derive(Clone, Default)]
pub struct Indexer {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    limits: Limits,
    cache: Mutex<Cache>,
    running: Mutex<HashMap<String, Running>>,
    /// The last few images stacked, by manifest digest (a tree browser
    /// asks for one directory after another of the same image).
    stacked: Mutex<VecDeque<(String, Arc<Stacked>)>>,
}

/// Stacked images kept.
const STACKED_KEPT: usize = 8;

impl Indexer {
    pub fn new(limits: Limits) -> Indexer {
        Indexer {
            inner: Arc::new(Inner {
                limits,
                ..Default::default()
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Image `manifest`'s stacked layers, if stacked lately.
    pub fn stacked(&self, manifest: &str) -> Option<Arc<Stacked>> {
        let kept = self.inner.stacked.lock().unwrap();
        kept.iter()
            .find(|(d, _)| d == manifest)
            .map(|(_, s)| s.clone())
    }

    pub fn keep_stacked(&self, manifest: &str, stacked: Arc<Stacked>) {
        let mut kept = self.inner.stacked.lock().unwrap();
        if kept.iter().any(|(d, _)| d == manifest) {
            return;
        }
        if kept.len() >= STACKED_KEPT {
            kept.pop_front();
        }
        kept.push_back((manifest.to_owned(), stacked));
    }

    /// The index of layer `digest` (stored as `blob`), waiting at most
    /// `wait` for an indexing to finish.
    pub async fn get(
        &self,
        digest: &Digest,
        blob: &BlobInfo,
        meta: &Metadata,
        blobs: &Arc<dyn BlobStore>,
        wait: Duration,
    ) -> Result<Indexed> {
        let key = digest.to_string();
        if let Some(i) = self.inner.cache.lock().unwrap().get(&key) {
            return Ok(Indexed::Ready(i));
        }
        if let Some(stored) = meta.layer_index(&key).await? {
            return Ok(match self.decode_stored(&key, stored) {
                Ok(i) => Indexed::Ready(i),
                Err(e) => Indexed::Refused(e),
            });
        }
        let (progress, size, done) = self.start(digest, blob, meta, blobs);
        match tokio::time::timeout(wait, done).await {
            Ok(Ok(i)) => Ok(Indexed::Ready(i)),
            Ok(Err(IndexError::Read(why))) => Err(crate::error::Error::new(
                crate::error::ErrorCode::Unavailable,
                format!("reading layer {digest} failed: {why}"),
            )),
            Ok(Err(e)) => Ok(Indexed::Refused(e)),
            Err(_) => Ok(Indexed::Pending(Pending {
                read: progress.read.load(Ordering::Relaxed),
                size,
                entries: progress.entries.load(Ordering::Relaxed),
            })),
        }
    }

    fn decode_stored(
        &self,
        key: &str,
        stored: StoredLayerIndex,
    ) -> std::result::Result<Arc<LayerIndex>, IndexError> {
        let detail = stored.detail.unwrap_or_default();
        match stored.state.as_str() {
            "ready" => {
                let decoded = stored
                    .data
                    .as_deref()
                    .map(LayerIndex::decode)
                    .transpose()
                    .map_err(|e| {
                        IndexError::Invalid(format!("the stored index is unreadable: {e}"))
                    })?
                    .unwrap_or_default();
                let i = Arc::new(decoded);
                self.inner.cache.lock().unwrap().put(key, i.clone());
                Ok(i)
            }
            "too_large" => Err(IndexError::TooLarge(detail)),
            _ => Err(IndexError::Invalid(detail)),
        }
    }

    /// The running indexing of `digest`, started if none is.
    fn start(
        &self,
        digest: &Digest,
        blob: &BlobInfo,
        meta: &Metadata,
        blobs: &Arc<dyn BlobStore>,
    ) -> (Arc<Progress>, u64, Shared<BoxFuture<'static, Outcome>>) {
        let key = digest.to_string();
        let mut running = self.inner.running.lock().unwrap();
        // A run that ended since the caller looked has filled the cache
        // before leaving `running`.
        if let Some(i) = self.inner.cache.lock().unwrap().get(&key) {
            let done = futures::future::ready(Ok(i)).boxed().shared();
            return (Arc::new(Progress::default()), blob.size, done);
        }
        if let Some(r) = running.get(&key) {
            return (r.progress.clone(), r.size, r.done.clone());
        }
        let progress = Arc::new(Progress::default());
        let task = tokio::spawn(run(
            self.clone(),
            digest.clone(),
            blob.clone(),
            meta.clone(),
            blobs.clone(),
            progress.clone(),
        ));
        let done = async move {
            task.await
                .unwrap_or_else(|e| Err(IndexError::Read(format!("the indexing task failed: {e}"))))
        }
        .boxed()
        .shared();
        running.insert(
            key,
            Running {
                progress: progress.clone(),
                size: blob.size,
                done: done.clone(),
            },
        );
        (progress, blob.size, done)
    }
}

/// Index a layer, keep the outcome, and let the next request start anew
/// if this one could not read the blob.
async fn run(
    me: Indexer,
    digest: Digest,
    blob: BlobInfo,
    meta: Metadata,
    blobs: Arc<dyn BlobStore>,
    progress: Arc<Progress>,
) -> Outcome {
    let key = digest.to_string();
    let outcome = index_blob(&me, &digest, &blob, &blobs, progress).await;
    let stored = match &outcome {
        Ok(index) => match index.encode() {
            Ok(data) => Some(StoredLayerIndex {
                state: "ready".into(),
                detail: None,
                data: Some(data),
                entries: index.entries.len() as i64,
            }),
            Err(_) => None,
        },
        Err(IndexError::TooLarge(why)) => Some(refusal("too_large", why)),
        Err(IndexError::Invalid(why)) => Some(refusal("invalid", why)),
        Err(IndexError::Read(_)) => None,
    };
    if let Some(s) = stored {
        if let Err(e) = meta.put_layer_index(&key, &s, crate::metadata::now()).await {
            tracing::warn!(layer = %key, error = %e, "keeping a layer's file list failed");
        }
    }
    if let Ok(index) = &outcome {
        me.inner.cache.lock().unwrap().put(&key, index.clone());
    }
    me.inner.running.lock().unwrap().remove(&key);
    outcome
}

fn refusal(state: &str, why: &str) -> StoredLayerIndex {
    StoredLayerIndex {
        state: state.into(),
        detail: Some(why.to_owned()),
        data: None,
        entries: 0,
    }
}

async fn index_blob(
    me: &Indexer,
    digest: &Digest,
    blob: &BlobInfo,
    blobs: &Arc<dyn BlobStore>,
    progress: Arc<Progress>,
) -> Outcome {
    let started = std::time::Instant::now();
    let stream = blobs
        .get(blob.as_ref(digest), None)
        .await
        .map_err(|e| IndexError::Read(e.to_string()))?;
    let reader = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
    let limits = me.inner.limits.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let sync = tokio_util::io::SyncIoBridge::new(reader);
        index_layer(sync, &limits, &progress)
    })
    .await
    .unwrap_or_else(|e| Err(IndexError::Read(format!("the indexing task failed: {e}"))));
    match &outcome {
        Ok(i) => tracing::info!(
            layer = %digest,
            entries = i.entries.len(),
            ms = started.elapsed().as_millis() as u64,
            "indexed a layer's files"
        ),
        Err(e) => tracing::info!(layer = %digest, error = %e, "a layer could not be indexed"),
    }
    outcome.map(Arc::new)
}
