//! The read path of a download: a committed blob streamed in large steps,
//! each a read-only mapping of the file (registered in `windows`, so the
//! server can `sendfile` it without touching the mapping) or, for small
//! ranges, a plain read.

use super::windows;
use super::ByteStream;
use bytes::Bytes;
use futures::StreamExt;
use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use tokio::task::spawn_blocking;

/// Bytes per step of a download: one blocking-pool hand-off per step is
/// negligible, and memory per download stays small.
const READ_CHUNK: usize = 2 << 20;

/// How far ahead of each step the kernel is asked to read (asynchronously):
/// a blob that is not in the page cache (just pushed with `O_DIRECT`, or
/// evicted) then streams at the disk's speed rather than the speed of
/// its default readahead.
const READ_AHEAD: u64 = 32 << 20;

/// Below this, a step is a plain read; from it on, a mapping.
const MAP_MIN: usize = 256 << 10;

/// A read-only, shared mapping of part of a committed blob file, unmapped
/// when the last `Bytes` pointing into it is dropped (after the socket
/// write). The server's socket writer sends it with `sendfile` from the
/// file (no copy here, and the pages are never faulted into this process);
/// any other reader reads the mapping (one copy instead of two). Committed
/// blobs are immutable and never truncated (only unlinked, which keeps a
/// mapping valid), so the mapped pages stay readable.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        windows::unregister(self.ptr as usize);
        // SAFETY: `ptr`/`len` are exactly what mmap returned.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// `want` bytes of `file` at `pos` as a mapping. Not pre-faulted: the
/// `sendfile` path never reads it. `pos + want` must be within the file.
fn map_range(file: &Arc<File>, pos: u64, want: usize) -> std::io::Result<Bytes> {
    const PAGE: u64 = 4096;
    let base = pos - pos % PAGE;
    let delta = (pos - base) as usize;
    let len = delta + want;
    // SAFETY: a fresh read-only mapping of a range inside an open file;
    // ownership goes to `Mapped`, which unmaps it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            base as libc::off_t,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    windows::register(ptr as usize, len, file.clone(), base);
    Ok(Bytes::from_owner(Mapped { ptr, len }).slice(delta..))
}

/// `want` bytes of `file` at `pos`, read into a fresh buffer.
fn read_range(file: &File, pos: u64, want: usize) -> std::io::Result<Bytes> {
    let mut buf = vec![0u8; want];
    file.read_exact_at(&mut buf, pos)?;
    Ok(Bytes::from(buf))
}

/// `want` bytes of `file` at `pos` the way a download step sends them: a
/// mapping the server can `sendfile` (from `MAP_MIN` bytes on) or a plain
/// read. For files that only grow while read (a pull-through cache's
/// spool): `pos + want` must be written already. Blocking.
pub fn file_window(file: &Arc<File>, pos: u64, want: usize) -> std::io::Result<Bytes> {
    if want >= MAP_MIN {
        if let Ok(b) = map_range(file, pos, want) {
            return Ok(b);
        }
    }
    read_range(file, pos, want)
}

/// Steps prepared ahead of the one being sent. hyper asks for the next
/// chunk only once the current one is almost written; preparing it then
/// (a blocking-pool hand-off) left the socket idle for a moment per step.
const STEPS_AHEAD: usize = 2;

/// Stream `range` of an open file in `READ_CHUNK` steps on the blocking
/// pool, each prepared while the ones before it are sent.
pub(super) fn file_stream(file: File, range: Range<u64>) -> ByteStream {
    let file = Arc::new(file);
    let (start, end) = (range.start, range.end);
    let steps = (start..end).step_by(READ_CHUNK);
    futures::stream::iter(steps)
        .map(move |pos| {
            let file = file.clone();
            let want = (end - pos).min(READ_CHUNK as u64) as usize;
            // Read-ahead advice for what enters the horizon with this step
            // (the first step advises the whole horizon): advising cached
            // pages again costs a page-cache walk per page.
            let horizon = end.min(pos + READ_AHEAD);
            let advise_from = if pos == start {
                pos
            } else {
                horizon.saturating_sub(READ_CHUNK as u64).max(pos)
            };
            let step = spawn_blocking(move || -> std::io::Result<Bytes> {
                if horizon > advise_from {
                    // SAFETY: plain advice on an open descriptor.
                    unsafe {
                        libc::posix_fadvise(
                            file.as_raw_fd(),
                            advise_from as libc::off_t,
                            (horizon - advise_from) as libc::off_t,
                            libc::POSIX_FADV_WILLNEED,
                        );
                    }
                }
                // The range was checked against the file's size when it was
                // opened; check again that nothing shrank before mapping.
                let mapped = if want >= MAP_MIN && file.metadata()?.len() >= end {
                    map_range(&file, pos, want).ok()
                } else {
                    None
                };
                match mapped {
                    Some(b) => Ok(b),
                    None => read_range(&file, pos, want),
                }
            });
            async move { step.await.map_err(std::io::Error::other)? }
        })
        .buffered(STEPS_AHEAD)
        .boxed()
}
