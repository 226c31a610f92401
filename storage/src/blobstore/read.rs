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

/// Stream `range` of an open file in `READ_CHUNK` steps on the blocking
/// pool.
pub(super) fn file_stream(file: File, range: Range<u64>) -> ByteStream {
    // State: the file, the next byte to send, the end, and how far the
    // kernel was already asked to read ahead.
    futures::stream::try_unfold(
        (Some(Arc::new(file)), range.start, range.end, range.start),
        |(file, pos, end, advised)| async move {
            if pos >= end {
                return Ok(None);
            }
            let file = file.expect("file present while bytes remain");
            let want = (end - pos).min(READ_CHUNK as u64) as usize;
            let horizon = end.min(pos + READ_AHEAD);
            let (file, buf) = spawn_blocking(move || -> std::io::Result<(Arc<File>, Bytes)> {
                if horizon > advised {
                    // Only what is new since the last step: advising cached
                    // pages again costs a page-cache walk per page.
                    // SAFETY: plain advice on an open descriptor.
                    unsafe {
                        libc::posix_fadvise(
                            file.as_raw_fd(),
                            advised as libc::off_t,
                            (horizon - advised) as libc::off_t,
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
                let buf = match mapped {
                    Some(b) => b,
                    None => read_range(&file, pos, want)?,
                };
                Ok((file, buf))
            })
            .await
            .map_err(std::io::Error::other)??;
            let next = pos + buf.len() as u64;
            Ok(Some((buf, (Some(file), next, end, horizon.max(advised)))))
        },
    )
    .boxed()
}
