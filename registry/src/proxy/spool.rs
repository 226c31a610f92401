//! Blob fetches from an upstream, one per blob however many clients ask:
//! the fetch writes the upstream's bytes to a spool file, and every client
//! of that blob reads the file as it grows (a client that comes late
//! starts at its beginning). When all bytes are in and match the digest,
//! the blob is stored like a pushed one and the spool file goes.
//!
//! Bytes reach clients before the digest is checked, so the last byte is
//! held back until it is: a fetch that fails ends every client's body in
//! an error (a connection closed short of its `Content-Length`, a chunked
//! body aborted, an HTTP/2 reset), never in a clean end. A fetch runs to
//! its end whoever stays to read it (the next pull finds the blob
//! stored), within the limits: its slot among `max_fetches`, the rule's
//! `max_blob_bytes`, the spool's free-space floor, and the read timeout.

use super::limits::{Limits, Slot};
use super::upstream::{Failure, Target, Upstream};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
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
    limits: Arc<Limits>,
    map: Arc<Mutex<HashMap<String, Arc<Fetch>>>>,
}

/// What a fetch needs to run.
pub struct Job {
    /// The most bytes it may bring.
    pub limit: u64,
    pub upstream: Arc<Upstream>,
    pub registry: Registry,
    /// Our repository, which gets the blob.
    pub repo: String,
    /// The upstream's name for it.
    pub upstream_name: String,
    pub digest: Digest,
}

/// Spool files are named `<uuid>.spool`: only those are ever removed
/// (the directory may be one an operator chose, holding other things).
const SPOOL_SUFFIX: &str = ".spool";

/// Bytes written between two looks at the spool's free space.
const SPACE_CHECK_EVERY: u64 = 8 << 20;

impl Fetches {
    /// Spool files live in the limits' spool directory; what a crash left
    /// there goes now.
    pub fn new(limits: Arc<Limits>) -> std::io::Result<Fetches> {
        let dir = limits.spool();
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(SPOOL_SUFFIX) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Fetches {
            limits,
            map: Default::default(),
        })
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// The fetch of `job`'s blob: the one in progress, or a new one if
    /// the limits allow (`true` when this call started it).
    pub fn join(&self, job: Job) -> Result<(Arc<Fetch>, bool), Error> {
        let key = format!("{}@{}", job.upstream_name, job.digest);
        let mut map = self.map.lock().expect("fetch map");
        if let Some(f) = map.get(&key) {
            return Ok((f.clone(), false));
        }
        let slot = self.limits.slot()?;
        self.limits.check_space(0)?;
        let fetch = Arc::new(Fetch {
            path: self
                .limits
                .spool()
                .join(format!("{}{SPOOL_SUFFIX}", uuid::Uuid::new_v4())),
            progress: watch::channel(Progress {
                phase: Phase::Connecting,
                size: None,
                written: 0,
            })
            .0,
        });
        map.insert(key.clone(), fetch.clone());
        let (map_ref, running, limits) = (self.map.clone(), fetch.clone(), self.limits.clone());
        // Its own task: it runs to the end whoever stays to read.
        tokio::spawn(async move {
            use futures::FutureExt as _;
            // Held until the spool file is gone.
            let _slot: Slot = slot;
            // A panic must still end the fetch: its waiters would wait
            // forever, and its entry would stand for every later request.
            let outcome = std::panic::AssertUnwindSafe(run(&running, &job, &limits))
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
        Ok((fetch, true))
    }
}

async fn run(fetch: &Fetch, job: &Job, limits: &Limits) -> Result<(), Error> {
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
            Target::Blob(&job.digest),
            None,
        )
        .await
        .map_err(|f| f.to_error(up.base(), unknown))?;
    super::count_fetch("blob");
    let size = resp.content_length();
    if let Some(size) = size {
        // Refused on its word, before a byte of it is read.
        if size > job.limit {
            return Err(too_large(job, &format!("is {size} bytes")));
        }
        limits.check_space(size)?;
    }
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
        let after = written + chunk.len() as u64;
        // Cut off at the first byte past what it declared or may bring:
        // returning drops the answer, and the spool file goes with the fetch.
        if size.is_some_and(|s| after > s) {
            return Err(bad(&job.digest, "more bytes than its Content-Length"));
        }
        if after > job.limit {
            return Err(too_large(job, "ran past the limit and was cut off"));
        }
        if after / SPACE_CHECK_EVERY > written / SPACE_CHECK_EVERY {
            limits.check_space(0)?;
        }
        file.write_all(&chunk).await?;
        // tokio hands writes to a thread and returns before they are done:
        // readers must not be told of bytes the file does not hold yet.
        file.flush().await?;
        hasher.update(&chunk);
        written = after;
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

fn too_large(job: &Job, what: &str) -> Error {
    super::refused("too_large");
    Error::new(
        ErrorCode::Denied,
        format!(
            "blob {} {what}: the limit for blobs of the pull-through cache {}/ is {} bytes \
             (max_blob_bytes); nothing was stored",
            job.digest,
            job.upstream.rule().prefix,
            job.limit
        ),
    )
}

fn bad(digest: &Digest, what: &str) -> Error {
    super::refused("bad_bytes");
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
/// it sends stored blobs), waiting for more until all are in. The last
/// byte waits for the digest check, and a failed fetch ends the stream in
/// an error at once, so that no client ever sees a clean end of bad
/// bytes. `None` when the spool file is gone (the blob is stored by now).
pub fn follow(fetch: &Fetch) -> std::io::Result<Option<ByteStream>> {
    let file = match std::fs::File::open(&fetch.path) {
        Ok(f) => Arc::new(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let rx = fetch.watch();
    let stream = futures::stream::unfold(Some((file, rx, 0u64)), |state| async move {
        let (file, mut rx, offset) = state?;
        // The fetch's task is over: its last word is in the channel.
        let mut over = false;
        loop {
            let p = rx.borrow_and_update().clone();
            if let Phase::Failed(_, m) = &p.phase {
                return Some((Err(std::io::Error::other(m.to_string())), None));
            }
            let done = matches!(p.phase, Phase::Received | Phase::Stored);
            let sendable = if done {
                p.written
            } else {
                p.written.saturating_sub(1)
            };
            let ready = sendable.saturating_sub(offset);
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
            if done {
                return None;
            }
            if over {
                return Some((Err(short()), None));
            }
            over = rx.changed().await.is_err();
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    const N: usize = 300 << 10;

    /// A fetch with all `N` bytes in its spool file, not yet checked.
    fn received_unchecked(dir: &std::path::Path) -> Fetch {
        let path = dir.join("x.spool");
        std::fs::write(&path, vec![7u8; N]).unwrap();
        Fetch {
            path,
            progress: watch::channel(Progress {
                phase: Phase::Receiving,
                size: Some(N as u64),
                written: N as u64,
            })
            .0,
        }
    }

    #[tokio::test]
    async fn the_last_byte_waits_for_the_digest_check() {
        let dir = tempfile::tempdir().unwrap();
        let fetch = received_unchecked(dir.path());
        let mut s = follow(&fetch).unwrap().expect("a spool file");
        assert_eq!(s.next().await.unwrap().unwrap().len(), N - 1);
        assert!(
            s.next().now_or_never().is_none(),
            "the last byte went before the digest was checked"
        );
        fetch.progress.send_modify(|p| p.phase = Phase::Received);
        assert_eq!(s.next().await.unwrap().unwrap().len(), 1);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_failed_fetch_ends_every_reader_in_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fetch = received_unchecked(dir.path());
        let mut s = follow(&fetch).unwrap().expect("a spool file");
        assert_eq!(s.next().await.unwrap().unwrap().len(), N - 1);
        fetch.fail(&Error::new(ErrorCode::Unavailable, "bad digest"));
        let e = s.next().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("bad digest"));
        assert!(s.next().await.is_none());
        // A reader that comes after the failure gets the error at once.
        let mut late = follow(&fetch).unwrap().expect("a spool file");
        assert!(late.next().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_fetch_gone_without_a_word_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fetch = received_unchecked(dir.path());
        let mut s = follow(&fetch).unwrap().expect("a spool file");
        assert_eq!(s.next().await.unwrap().unwrap().len(), N - 1);
        drop(fetch);
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
