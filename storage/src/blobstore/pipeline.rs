//! The write path of an upload: bytes received into 4 KiB-aligned buffers,
//! hashed on one blocking thread and written (`O_DIRECT` where possible) on
//! another, both in order, with a bounded number of buffers in flight.

use super::AppendLimits;
use super::ByteStream;
use crate::digest::Hasher;
use crate::error::{Error, ErrorCode, Result};
use futures::StreamExt;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::task::{spawn_blocking, JoinHandle};

/// Bytes gathered before a buffer is handed to the hash and write chains.
/// Large enough that the hand-offs are negligible, small enough to keep
/// memory flat (at most `IN_FLIGHT + 1` buffers per active upload).
pub(super) const IO_CHUNK: usize = 2 << 20;

/// Idle upload buffers kept for reuse (a fresh one costs page faults).
const POOLED_BUFFERS: usize = 4;

/// Alignment of `O_DIRECT` offsets, lengths and buffers.
const DIRECT_ALIGN: usize = 4096;

/// A heap buffer whose data starts at a 4 KiB boundary, as `O_DIRECT`
/// writes need.
struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let mem = vec![0u8; IO_CHUNK + DIRECT_ALIGN];
        let start = mem.as_ptr().align_offset(DIRECT_ALIGN);
        AlignedBuf { mem, start, len: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// Copy as much of `src` as fits below `limit` bytes; returns the count.
    fn fill(&mut self, src: &[u8], limit: usize) -> usize {
        let n = src.len().min(limit - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&src[..n]);
        self.len += n;
        n
    }
}

/// Upload buffers shared by all uploads.
#[derive(Default, Clone)]
pub(super) struct BufferPool(Arc<Mutex<Vec<AlignedBuf>>>);

impl BufferPool {
    fn take(&self) -> AlignedBuf {
        let pooled = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(AlignedBuf::new)
    }

    fn give(&self, mut buf: AlignedBuf) {
        buf.len = 0;
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOLED_BUFFERS {
            pool.push(buf);
        }
    }
}

/// The file of an upload, written at explicit offsets. Whole 4 KiB blocks
/// at aligned offsets go through a second, `O_DIRECT` descriptor: the bytes
/// go to the disk without being copied into the page cache, which costs as
/// much CPU as hashing them. Everything else (an unaligned head or tail) is
/// an ordinary write. Filesystems without `O_DIRECT` (tmpfs) get ordinary
/// writes only.
pub(super) struct UploadFile {
    file: File,
    path: PathBuf,
    direct: DirectState,
    /// Dropped with the file: tells [`Closed`] no write can follow.
    _open: tokio::sync::oneshot::Sender<()>,
}

/// Resolves once an [`UploadFile`] is gone. The write chain runs on a
/// blocking thread that outlives a dropped request (a thread cannot be
/// cancelled); whoever cuts the file back after such a drop waits for this
/// first, or the thread's last writes would land after the cut.
pub(super) struct Closed(tokio::sync::oneshot::Receiver<()>);

impl Closed {
    pub(super) async fn wait(self) {
        // Only ever an error: the sender is dropped, never used.
        let _ = self.0.await;
    }
}

enum DirectState {
    Unopened,
    Open(File),
    Unsupported,
}

impl UploadFile {
    /// Open the staging file, creating it with the session's first bytes.
    pub(super) fn open(path: &Path) -> std::io::Result<(UploadFile, Closed)> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let (open, closed) = tokio::sync::oneshot::channel();
        let upload = UploadFile {
            file,
            path: path.to_path_buf(),
            direct: DirectState::Unopened,
            _open: open,
        };
        Ok((upload, Closed(closed)))
    }

    /// The `O_DIRECT` descriptor, opened on first use (small uploads never
    /// need it).
    fn direct(&mut self) -> Option<&File> {
        if let DirectState::Unopened = self.direct {
            self.direct = match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&self.path)
            {
                Ok(f) => DirectState::Open(f),
                Err(_) => DirectState::Unsupported,
            };
        }
        match &self.direct {
            DirectState::Open(f) => Some(f),
            _ => None,
        }
    }

    fn write_at(&mut self, data: &[u8], pos: u64) -> std::io::Result<()> {
        let aligned = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
        if pos.is_multiple_of(DIRECT_ALIGN as u64)
            && data.as_ptr().align_offset(DIRECT_ALIGN) == 0
            && aligned > 0
        {
            if let Some(direct) = self.direct() {
                match direct.write_all_at(&data[..aligned], pos) {
                    Ok(()) => {
                        return self
                            .file
                            .write_all_at(&data[aligned..], pos + aligned as u64)
                    }
                    // Not supported here after all: ordinary writes from now on.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.direct = DirectState::Unsupported
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.file.write_all_at(data, pos)
    }
}

/// Buffers of one upload in flight at once (being filled, hashed or
/// written): enough to absorb the jitter between the three, few enough to
/// keep memory flat.
const IN_FLIGHT: usize = 4;

/// A full buffer shared by the hash and the write chains; back to the pool
/// (and its in-flight permit released) when both are done with it.
struct Shared {
    buf: Option<AlignedBuf>,
    pool: BufferPool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Shared {
    fn data(&self) -> &[u8] {
        self.buf.as_ref().expect("buffer present until drop").data()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give(buf);
        }
    }
}

/// The running hash of an upload, possibly still catching up with bytes
/// already written: a chunk's `202` goes out once its bytes are on disk,
/// and the next chunk's hashing continues from this without waiting, so a
/// chunked push does not stall at every request boundary.
// One per upload session: boxing the hasher would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum PendingHash {
    Ready(Hasher),
    Running(JoinHandle<Hasher>),
}

impl PendingHash {
    pub(super) async fn resolve(self) -> Result<Hasher> {
        match self {
            PendingHash::Ready(h) => Ok(h),
            PendingHash::Running(job) => job.await.map_err(Error::internal),
        }
    }

    /// The hasher, from a blocking thread.
    fn resolve_blocking(self) -> Option<Hasher> {
        match self {
            PendingHash::Ready(h) => Some(h),
            PendingHash::Running(job) => tokio::runtime::Handle::current().block_on(job).ok(),
        }
    }
}

/// Receives into one buffer while earlier ones are hashed (one blocking
/// thread, in order) and written (another blocking thread, in order), each
/// chain at its own pace: network, hashing and disk all stay busy.
struct Writer {
    hash_tx: Option<tokio::sync::mpsc::UnboundedSender<Arc<Shared>>>,
    write_tx: Option<tokio::sync::mpsc::UnboundedSender<(Arc<Shared>, u64)>>,
    /// The hash chain: the state before this append (for a rollback) and
    /// after it; `None` if the previous state was lost.
    hash: JoinHandle<Option<(Hasher, Hasher)>>,
    write: JoinHandle<std::io::Result<()>>,
    pool: BufferPool,
    permits: Arc<tokio::sync::Semaphore>,
    /// File offset of the next byte handed to `submit`.
    pos: u64,
}

impl Writer {
    fn start(
        pool: BufferPool,
        permits: Arc<tokio::sync::Semaphore>,
        mut file: UploadFile,
        prev: PendingHash,
        pos: u64,
    ) -> Writer {
        let (hash_tx, mut hash_rx) = tokio::sync::mpsc::unbounded_channel::<Arc<Shared>>();
        let (write_tx, mut write_rx) = tokio::sync::mpsc::unbounded_channel::<(Arc<Shared>, u64)>();
        let hash = spawn_blocking(move || {
            // Buffers queue (bounded by the permits) while the previous
            // request's hashing finishes.
            let before = prev.resolve_blocking()?;
            let mut hasher = before.clone();
            while let Some(buf) = hash_rx.blocking_recv() {
                hasher.update(buf.data());
            }
            Some((before, hasher))
        });
        let write = spawn_blocking(move || {
            while let Some((buf, pos)) = write_rx.blocking_recv() {
                file.write_at(buf.data(), pos)?;
            }
            Ok(())
        });
        Writer {
            hash_tx: Some(hash_tx),
            write_tx: Some(write_tx),
            hash,
            write,
            pool,
            permits,
            pos,
        }
    }

    /// How many bytes the buffer starting at `pos` should hold: a full
    /// chunk, or less so that the next one starts block-aligned.
    fn want(pos: u64) -> usize {
        IO_CHUNK - (pos % DIRECT_ALIGN as u64) as usize
    }

    /// Leave to submit a buffer, once fewer than `IN_FLIGHT` are in use.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)
    }

    fn submit(&mut self, buf: AlignedBuf, permit: tokio::sync::OwnedSemaphorePermit) -> bool {
        let pos = self.pos;
        self.pos += buf.len as u64;
        let shared = Arc::new(Shared {
            buf: Some(buf),
            pool: self.pool.clone(),
            _permit: permit,
        });
        let hashed = self
            .hash_tx
            .as_ref()
            .is_some_and(|tx| tx.send(shared.clone()).is_ok());
        let written = self
            .write_tx
            .as_ref()
            .is_some_and(|tx| tx.send((shared, pos)).is_ok());
        // A closed chain has stopped on an error, which `finish` returns.
        hashed && written
    }

    /// Close both chains and wait for the writes (so a rollback truncates
    /// after them); the hash chain may still be running.
    async fn drain(mut self) -> (Result<()>, JoinHandle<Option<(Hasher, Hasher)>>) {
        self.hash_tx = None;
        self.write_tx = None;
        let written = match self.write.await {
            Ok(w) => w.map_err(Error::from),
            Err(e) => Err(Error::internal(e)),
        };
        (written, self.hash)
    }

    /// The append succeeded: once written, hand back the hash (perhaps
    /// still running) of everything so far. On a write error, the error
    /// and the state before this append.
    async fn finish(self) -> std::result::Result<PendingHash, (Error, Option<Hasher>)> {
        let (written, hash) = self.drain().await;
        match written {
            Ok(()) => Ok(PendingHash::Running(tokio::spawn(async move {
                match hash.await {
                    Ok(Some((_, after))) => after,
                    // `resolve` turns this task's panic into an internal
                    // error; the session then recomputes from the file.
                    _ => panic!("upload hash chain lost its state"),
                }
            }))),
            Err(e) => Err((e, hash.await.ok().flatten().map(|(before, _)| before))),
        }
    }

    /// The append failed: the write error, if a write failed, and the
    /// state before the append, if still known.
    async fn abort(self) -> (Option<Error>, Option<Hasher>) {
        let (written, hash) = self.drain().await;
        let before = hash.await.ok().flatten().map(|(before, _)| before);
        (written.err(), before)
    }
}

/// A body that broke off mid-way.
pub(super) fn interrupted(e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::BlobUploadInvalid,
        format!("upload body interrupted: {e}"),
    )
}

/// The limits every arriving piece of a body is held to, `received` bytes
/// into a chunk that starts at `start`.
pub(super) fn check_received(limits: &AppendLimits, start: u64, received: u64) -> Result<()> {
    if let Some(max) = limits.max_total {
        if start + received > max {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!("blob exceeds the configured limit of {max} bytes"),
            ));
        }
    }
    match limits.expected_len {
        Some(len) if received > len => Err(Error::new(
            ErrorCode::SizeInvalid,
            format!("body is longer than the declared {len} bytes"),
        )),
        _ => Ok(()),
    }
}

/// A whole body must be as long as declared.
pub(super) fn check_complete(limits: &AppendLimits, received: u64) -> Result<()> {
    match limits.expected_len {
        Some(len) if received != len => Err(Error::new(
            ErrorCode::SizeInvalid,
            format!("body has {received} bytes, {len} were declared"),
        )),
        _ => Ok(()),
    }
}

/// Where the bytes of an append go: straight to one blocking step when the
/// whole body fits in one buffer (small blobs: no threads to set up), else
/// to the pipelined [`Writer`], started when the first buffer is full.
// One per append, on the stack of `pump`: the size difference is harmless.
#[allow(clippy::large_enum_variant)]
enum Sink {
    Direct(UploadFile, PendingHash),
    Piped(Writer),
}

/// Append `body` at `start`. On success, the hash after it (perhaps still
/// running) and the new size; on failure, the error and the hash before it
/// (`None` if lost) for the rollback.
pub(super) async fn pump(
    pool: BufferPool,
    file: UploadFile,
    prev: PendingHash,
    mut body: ByteStream,
    start: u64,
    limits: AppendLimits,
) -> std::result::Result<(PendingHash, u64), (Error, Option<Hasher>)> {
    let mut sink = Some(Sink::Direct(file, prev));
    let mut received: u64 = 0;
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut buf = pool.take();
    let mut want = Writer::want(start);
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(interrupted)?;
            received += chunk.len() as u64;
            check_received(&limits, start, received)?;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let n = buf.fill(rest, want);
                rest = &rest[n..];
                if buf.len == want {
                    let writer = match sink.take().expect("sink present") {
                        Sink::Direct(file, hasher) => {
                            Writer::start(pool.clone(), permits.clone(), file, hasher, start)
                        }
                        Sink::Piped(w) => w,
                    };
                    let writer = sink.insert(Sink::Piped(writer));
                    let Sink::Piped(writer) = writer else {
                        unreachable!()
                    };
                    let permit = writer.permit().await?;
                    let full = std::mem::replace(&mut buf, pool.take());
                    if !writer.submit(full, permit) {
                        // A chain stopped: the bytes from here on were not
                        // written, so the append fails (with the chain's own
                        // error where it has one, see `abort`).
                        return Err(Error::internal("upload pipeline stopped"));
                    }
                    want = Writer::want(writer.pos);
                }
            }
        }
        check_complete(&limits, received)
    }
    .await;
    let size = start + received;
    match sink.take().expect("sink present") {
        Sink::Direct(mut file, prev) => {
            // Small bodies: one blocking step, after the previous hash.
            let before = prev.resolve().await.map_err(|e| (e, None))?;
            if let Err(e) = outcome {
                pool.give(buf);
                return Err((e, Some(before)));
            }
            if buf.len == 0 {
                pool.give(buf);
                return Ok((PendingHash::Ready(before), size));
            }
            let mut hasher = before.clone();
            let done = spawn_blocking(move || -> std::io::Result<(Hasher, AlignedBuf)> {
                hasher.update(buf.data());
                file.write_at(buf.data(), start)?;
                Ok((hasher, buf))
            })
            .await;
            match done {
                Ok(Ok((after, buf))) => {
                    pool.give(buf);
                    Ok((PendingHash::Ready(after), size))
                }
                Ok(Err(e)) => Err((e.into(), Some(before))),
                Err(e) => Err((Error::internal(e), Some(before))),
            }
        }
        Sink::Piped(mut writer) => {
            let outcome = match outcome {
                Ok(()) if buf.len > 0 => match writer.permit().await {
                    Ok(permit) => {
                        if writer.submit(buf, permit) {
                            Ok(())
                        } else {
                            Err(Error::internal("upload pipeline stopped"))
                        }
                    }
                    Err(e) => Err(e),
                },
                other => {
                    pool.give(buf);
                    other
                }
            };
            if let Err(e) = outcome {
                let (write_error, before) = writer.abort().await;
                // A failed write (a full disk) says more than its symptom.
                return Err((write_error.unwrap_or(e), before));
            }
            let pending = writer.finish().await?;
            Ok((pending, size))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A previous append whose hash was lost (its task died) stops the hash
    /// chain; the bytes after that point are never written, so the append
    /// must fail rather than report them.
    #[tokio::test]
    async fn a_lost_hash_chain_fails_the_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staged");
        let (file, _closed) = UploadFile::open(&path).unwrap();
        let lost = PendingHash::Running(tokio::spawn(async {
            panic!("hash task lost (deliberately, for this test)")
        }));
        let pieces: Vec<std::io::Result<Bytes>> = (0..12)
            .map(|i| Ok(Bytes::from(vec![i as u8; IO_CHUNK / 2])))
            .collect();
        let body = futures::stream::iter(pieces).boxed();
        let outcome = pump(
            BufferPool::default(),
            file,
            lost,
            body,
            0,
            AppendLimits::default(),
        )
        .await;
        match outcome {
            Ok((_, size)) => panic!("append reported {size} bytes with its hash chain lost"),
            Err((_, before)) => assert!(before.is_none(), "the state before is unknown"),
        }
    }
}
