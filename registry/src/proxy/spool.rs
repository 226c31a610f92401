//! Blob fetches from an upstream, one per blob however many clients ask:
//! the fetch writes the upstream's bytes to a spool file, and every client
//! of that blob reads the file as it grows (a client that comes late
//! starts at its beginning). When all bytes are in and match the digest,
//! the blob is stored like a pushed one and the spool file goes.

use super::upstream::{Failure, Upstream};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use storage::blobstore::ByteStream;
use storage::digest::Hasher;
use storage::{Digest, Error, ErrorCode, Registry};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the upstream's answer.
    Connecting,
    /// Bytes are coming.
    Receiving,
    /// All bytes are in the spool file and match the digest; storing.
    Received,
    /// Stored: readable from the blob store like any other blob.
    Stored,
    Failed(ErrorCode, Arc<str>),
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: Phase,
    /// The upstream's `Content-Length`, when it sent one.
    pub size: Option<u64>,
    /// Bytes in the spool file so far.
    pub written: u64,
}

/// One blob being fetched.
pub struct Fetch {
    pub path: PathBuf,
    progress: watch::Sender<Progress>,
}

impl Fetch {
    pub fn watch(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn fail(&self, e: &Error) {
        let failed = Phase::Failed(e.code, Arc::from(e.message.as_str()));
        self.progress.send_modify(|p| p.phase = failed);
    }
}

/// The fetches in progress, by upstream repository and digest.
pub struct Fetches {
    dir: PathBuf,
    map: Arc<Mutex<HashMap<String, Arc<Fetch>>>>,
}

/// What a fetch needs to run.
pub struct Job {
    pub upstream: Arc<Upstream>,
    pub registry: Registry,
    /// Our repository, which gets the blob.
    pub repo: String,
    /// The upstream's name for it.
    pub upstream_name: String,
    pub digest: Digest,
}

impl Fetches {
    /// Spool files live in `dir`; what a crash left there goes now.
    pub fn new(dir: PathBuf) -> std::io::Result<Fetches> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Fetches {
            dir,
            map: Default::default(),
        })
    }

    /// The fetch of `job`'s blob: the one in progress, or a new one.
    /// `true` when this call started it.
    pub fn join(&self, job: Job) -> (Arc<Fetch>, bool) {
        let key = format!("{}@{}", job.upstream_name, job.digest);
        let mut map = self.map.lock().expect("fetch map");
        if let Some(f) = map.get(&key) {
            return (f.clone(), false);
        }
        let fetch = Arc::new(Fetch {
            path: self.dir.join(uuid::Uuid::new_v4().to_string()),
            progress: watch::channel(Progress {
                phase: Phase::Connecting,
                size: None,
                written: 0,
            })
            .0,
        });
        map.insert(key.clone(), fetch.clone());
        let (map_ref, running) = (self.map.clone(), fetch.clone());
        // Its own task: it runs to the end whoever stays to read.
        tokio::spawn(async move {
            use futures::FutureExt as _;
            // A panic must still end the fetch: its waiters would wait
            // forever, and its entry would stand for every later request.
            let outcome = std::panic::AssertUnwindSafe(run(&running, &job))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(Error::new(ErrorCode::Internal, "the blob fetch failed")));
            if let Err(e) = outcome {
                tracing::warn!(repository = %job.repo, digest = %job.digest, error = %e.message, "pull-through: blob fetch failed");
                running.fail(&e);
            }
            map_ref.lock().expect("fetch map").remove(&key);
            let _ = tokio::fs::remove_file(&running.path).await;
        });
        (fetch, true)
    }
}

async fn run(fetch: &Fetch, job: &Job) -> Result<(), Error> {
    // A fetch that ended just before this one began may have stored it.
    if job.registry.blob(&job.repo, &job.digest).await.is_ok() {
        fetch.progress.send_modify(|p| p.phase = Phase::Stored);
        return Ok(());
    }
    let up = &job.upstream;
    let unknown = || Error::blob_unknown(&job.digest);
    let resp = up
        .send(
            reqwest::Method::GET,
            &job.upstream_name,
            &format!("blobs/{}", job.digest),
            None,
        )
        .await
        .map_err(|f| f.to_error(up.base(), unknown))?;
    super::count_fetch("blob");
    let size = resp.content_length();
    let mut file = tokio::fs::File::create(&fetch.path).await?;
    fetch.progress.send_modify(|p| {
        p.phase = Phase::Receiving;
        p.size = size;
    });
    let mut hasher = Hasher::new(job.digest.algorithm());
    let mut written = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Failure::Unreachable(format!("the blob's body broke off: {e}"))
                .to_error(up.base(), unknown)
        })?;
        if size.is_some_and(|s| written + chunk.len() as u64 > s) {
            return Err(bad(&job.digest, "more bytes than its Content-Length"));
        }
        file.write_all(&chunk).await?;
        hasher.update(&chunk);
        written += chunk.len() as u64;
        fetch.progress.send_modify(|p| p.written = written);
    }
    file.flush().await?;
    drop(file);
    if size.is_some_and(|s| s != written) {
        return Err(bad(&job.digest, "fewer bytes than its Content-Length"));
    }
    let actual = hasher.finish();
    if actual != job.digest {
        return Err(bad(&job.digest, &format!("bytes whose digest is {actual}")));
    }
    metrics::counter!("registry_upstream_received_bytes_total").increment(written);
    fetch.progress.send_modify(|p| {
        p.phase = Phase::Received;
        p.size = Some(written);
    });
    // Stored as a push would: digest checked again, quota, fences.
    let stream = file_stream(tokio::fs::File::open(&fetch.path).await?);
    job.registry
        .upload_monolithic(&job.repo, &job.digest, stream, Some(written))
        .await?;
    fetch.progress.send_modify(|p| p.phase = Phase::Stored);
    tracing::info!(repository = %job.repo, digest = %job.digest, bytes = written, upstream = %up.base(), "pull-through: blob fetched and stored");
    Ok(())
}

fn bad(digest: &Digest, what: &str) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("the upstream sent {what} for {digest}; nothing was stored"),
    )
}

/// Bytes per step of a reader (as a committed blob's download steps).
const STEP: u64 = 2 << 20;
/// While bytes are still coming, a reader waits for this many before it
/// sends a step (small steps cost a blocking-pool hand-off each).
const MIN_STEP: u64 = 256 << 10;

/// The bytes of a fetch as they arrive: steps of its spool file up to what
/// has been written (mapped windows the server sends with `sendfile`, as
/// it sends stored blobs), waiting for more until all are in. `None` when
/// the spool file is gone (the blob is stored by now).
pub fn follow(fetch: &Fetch) -> std::io::Result<Option<ByteStream>> {
    let file = match std::fs::File::open(&fetch.path) {
        Ok(f) => Arc::new(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let rx = fetch.watch();
    let stream = futures::stream::unfold(Some((file, rx, 0u64)), |state| async move {
        let (file, mut rx, offset) = state?;
        loop {
            let p = rx.borrow_and_update().clone();
            let done = matches!(p.phase, Phase::Received | Phase::Stored);
            let ready = p.written.saturating_sub(offset);
            if ready > 0 && (done || ready >= MIN_STEP) {
                let want = ready.min(STEP) as usize;
                let f = file.clone();
                let step = tokio::task::spawn_blocking(move || {
                    storage::blobstore::file_window(&f, offset, want)
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
                return Some(match step {
                    Ok(b) => (Ok(b), Some((file, rx, offset + want as u64))),
                    Err(e) => (Err(e), None),
                });
            }
            match p.phase {
                _ if done => return None,
                Phase::Failed(_, m) => {
                    return Some((Err(std::io::Error::other(m.to_string())), None))
                }
                _ => {
                    if rx.changed().await.is_err() && rx.borrow().written <= offset {
                        return Some((Err(short()), None));
                    }
                }
            }
        }
    });
    Ok(Some(stream.boxed()))
}

fn short() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the upstream fetch ended early",
    )
}

/// A file's bytes as a stream.
fn file_stream(file: tokio::fs::File) -> ByteStream {
    tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).boxed()
}

/// Where spool files go under the data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("pull-through")
}
