//! Mapped windows of blob files, findable by address.
//!
//! A download hands hyper `Bytes` that point into read-only mappings of the
//! blob file (see `read`). A socket writer that finds such bytes here can
//! send them with `sendfile(2)` from the file instead of copying them from
//! the mapping: the page cache goes to the socket with no copy in this
//! process, which is what nginx does. Anything else (HTTP/2, tests) just
//! reads the mapping.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Window {
    len: usize,
    file: Arc<File>,
    /// File offset of the window's first byte.
    offset: u64,
}

/// Live windows by start address.
static WINDOWS: Mutex<BTreeMap<usize, Window>> = Mutex::new(BTreeMap::new());

/// How many windows are live: every response write asks, and most happen
/// with no download in flight.
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn table() -> std::sync::MutexGuard<'static, BTreeMap<usize, Window>> {
    WINDOWS.lock().unwrap_or_else(|e| e.into_inner())
}

/// `len` bytes at `addr` now mirror `file` from `offset` on.
pub(super) fn register(addr: usize, len: usize, file: Arc<File>, offset: u64) {
    table().insert(addr, Window { len, file, offset });
    LIVE.fetch_add(1, Ordering::Release);
}

/// The window at `addr` is about to be unmapped.
pub(super) fn unregister(addr: usize) {
    if table().remove(&addr).is_some() {
        LIVE.fetch_sub(1, Ordering::Release);
    }
}

/// If `bytes` lie wholly inside a live window: its file and the file
/// offset of `bytes[0]`. The caller must hold the `Bytes` that `bytes`
/// borrows from while it uses the answer, which keeps the window alive.
pub fn file_source(bytes: &[u8]) -> Option<(Arc<File>, u64)> {
    if bytes.is_empty() || LIVE.load(Ordering::Acquire) == 0 {
        return None;
    }
    let addr = bytes.as_ptr() as usize;
    let t = table();
    let (&start, w) = t.range(..=addr).next_back()?;
    let within = addr + bytes.len() <= start + w.len;
    within.then(|| (w.file.clone(), w.offset + (addr - start) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_bytes_inside_a_window() {
        let file = Arc::new(tempfile::tempfile().unwrap());
        let mem = [0u8; 100];
        let base = mem.as_ptr() as usize;
        register(base + 10, 50, file, 4096);
        let (_, off) = file_source(&mem[10..60]).expect("whole window");
        assert_eq!(off, 4096);
        let (_, off) = file_source(&mem[25..30]).expect("inside");
        assert_eq!(off, 4096 + 15);
        assert!(file_source(&mem[5..20]).is_none(), "starts before");
        assert!(file_source(&mem[50..61]).is_none(), "runs past the end");
        assert!(file_source(&mem[60..70]).is_none(), "after");
        unregister(base + 10);
        assert!(file_source(&mem[10..60]).is_none());
    }
}
