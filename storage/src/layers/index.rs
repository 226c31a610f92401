//! Reading a layer blob into its file list: the compression found by its
//! first bytes (gzip, zstd or none, whatever the media type says), then the
//! tar stream entry by entry. Nothing is held but the list: contents are
//! read past, never kept.
//!
//! A layer is attacker-controlled input, so everything is bounded: entries,
//! bytes after decompression (a gzip bomb), time, and the extension records
//! (GNU long names, PAX headers) the tar crate would otherwise read whole
//! into memory; hence raw entries, with those records checked and applied
//! here.

use super::entry::{Entry, Kind, LayerIndex};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much one layer may make the indexer spend.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Entries in the archive (a million empty files is a layer nobody
    /// browses; refusing it keeps an index's memory small).
    pub max_entries: u64,
    /// Bytes of the tar stream after decompression.
    pub max_tar_bytes: u64,
    /// Wall time for one layer.
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 300_000,
            max_tar_bytes: 8 << 30,
            max_time: Duration::from_secs(300),
        }
    }
}

/// Long names and PAX records larger than this are refused: real ones are
/// a few hundred bytes.
const MAX_EXTENSION_BYTES: u64 = 1 << 20;
/// Path and link names longer than this are refused (Linux's PATH_MAX).
const MAX_NAME_BYTES: usize = 4096;

/// How far an indexing has got, for a progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the blob read (compressed, as stored).
    pub read: AtomicU64,
    pub entries: AtomicU64,
}

/// Why a layer has no index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Over a limit; the message says which.
    #[error("too large to index: {0}")]
    TooLarge(String),
    /// Not a (complete) tar archive in a known compression.
    #[error("not a readable layer: {0}")]
    Invalid(String),
    /// Reading the blob failed (the store); worth trying again.
    #[error("reading the layer failed: {0}")]
    Read(String),
}

/// Index the layer blob `blob`.
pub fn index_layer(
    blob: impl Read,
    limits: &Limits,
    progress: &Progress,
) -> Result<LayerIndex, IndexError> {
    let deadline = Instant::now() + limits.max_time;
    let mut counted = BufReader::with_capacity(
        256 << 10,
        Counting {
            inner: blob,
            progress,
            deadline,
            timed_out: false,
            failed: None,
        },
    );
    let head = counted.fill_buf().map(|h| h.to_vec());
    let head = match head {
        Ok(h) => h,
        Err(_) if counted.get_ref().timed_out => {
            return Err(IndexError::TooLarge(format!(
                "indexing took over {:?}",
                limits.max_time
            )))
        }
        Err(e) => return Err(read_error(e)),
    };
    let (compression, decoded): (&str, Box<dyn Read + '_>) = if head.starts_with(&[0x1f, 0x8b]) {
        (
            "gzip",
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut counted)),
        )
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let z = zstd::stream::read::Decoder::with_buffer(&mut counted).map_err(read_error)?;
        ("zstd", Box::new(z))
    } else {
        ("none", Box::new(&mut counted))
    };
    let mut limited = Limited {
        inner: decoded,
        // One byte more than allowed: reading it is what goes over.
        left: limits.max_tar_bytes.saturating_add(1),
        read: 0,
    };
    // What follows the end-of-archive blocks is read too: the gzip trailer
    // (its checksum is checked at the end of the stream) and any padding.
    let result = read_tar(&mut limited, limits, progress).and_then(|entries| {
        io::copy(&mut limited, &mut io::sink())
            .map(|_| entries)
            .map_err(invalid)
    });
    let tar_bytes = limited.read;
    let over = limited.left == 0;
    drop(limited);
    let (timed_out, failed) = {
        let c = counted.get_ref();
        (c.timed_out, c.failed.clone())
    };
    let entries = result.map_err(|e| {
        if let Some(why) = failed {
            IndexError::Read(why)
        } else if timed_out {
            IndexError::TooLarge(format!("indexing took over {:?}", limits.max_time))
        } else if over {
            IndexError::TooLarge(format!("it unpacks to over {} bytes", limits.max_tar_bytes))
        } else {
            e
        }
    })?;
    Ok(LayerIndex {
        entries,
        compression: compression.to_owned(),
        tar_bytes,
    })
}

fn read_error(e: io::Error) -> IndexError {
    IndexError::Read(e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> IndexError {
    IndexError::Invalid(e.to_string())
}

/// Names and attributes that extension records carry for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
    size: Option<u64>,
}

fn read_tar(
    tar: &mut dyn Read,
    limits: &Limits,
    progress: &Progress,
) -> Result<Vec<Entry>, IndexError> {
    let mut archive = tar::Archive::new(tar);
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    let mut pending = Pending::default();
    let mut count = 0u64;
    let entries = archive.entries().map_err(invalid)?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(invalid)?;
        count += 1;
        if count > limits.max_entries {
            return Err(IndexError::TooLarge(format!(
                "over {} entries",
                limits.max_entries
            )));
        }
        progress.entries.store(count, Ordering::Relaxed);
        let header = entry.header().clone();
        let ty = header.entry_type();
        let size = header.entry_size().map_err(invalid)?;
        if ty.is_gnu_longname()
            || ty.is_gnu_longlink()
            || ty.is_pax_local_extensions()
            || ty.is_pax_global_extensions()
        {
            if size > MAX_EXTENSION_BYTES {
                return Err(IndexError::TooLarge(format!(
                    "an extension record of {size} bytes"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut data).map_err(invalid)?;
            if ty.is_gnu_longname() {
                pending.path = Some(trim_nul(data));
            } else if ty.is_gnu_longlink() {
                pending.link = Some(trim_nul(data));
            } else if ty.is_pax_local_extensions() {
                apply_pax(&data, &mut pending)?;
            }
            continue;
        }
        let p = std::mem::take(&mut pending);
        if let Some(real) = p.size.filter(|&s| s != size) {
            // Only files over 8 GiB need a PAX size, and those are over
            // the byte limit anyway.
            return Err(IndexError::TooLarge(format!("a file of {real} bytes")));
        }
        let name = p.path.unwrap_or_else(|| header.path_bytes().into_owned());
        let link = p
            .link
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        if name.len() > MAX_NAME_BYTES || link.as_ref().is_some_and(|l| l.len() > MAX_NAME_BYTES) {
            return Err(IndexError::Invalid(format!(
                "a name longer than {MAX_NAME_BYTES} bytes"
            )));
        }
        let kind = if ty.is_file() || ty.is_contiguous() || ty.is_gnu_sparse() {
            Kind::File
        } else if ty.is_dir() {
            Kind::Dir
        } else if ty.is_symlink() {
            Kind::Symlink
        } else if ty.is_hard_link() {
            Kind::Hardlink
        } else if ty.is_character_special() {
            Kind::Char
        } else if ty.is_block_special() {
            Kind::Block
        } else if ty.is_fifo() {
            Kind::Fifo
        } else {
            // Other vendor types carry nothing that lands on disk.
            continue;
        };
        let (path, mut note) = normalise(&name);
        let (path, kind) = match whiteout(&path) {
            Some((target, opaque)) => (target, if opaque { Kind::Opaque } else { Kind::Whiteout }),
            None => (path, kind),
        };
        if path == "/" && kind != Kind::Dir && kind != Kind::Opaque {
            note.get_or_insert_with(|| "an entry named for the root itself".to_owned());
        }
        // Docker writes a layer's second whiteout as a hard link to its
        // first: a deletion has no target to show.
        let link = link.filter(|_| !kind.deletes()).map(|l| {
            let (l, lossy) = lossy(&l);
            if lossy {
                note.get_or_insert_with(|| "a link target that is not UTF-8".to_owned());
            }
            if kind == Kind::Hardlink {
                normalise(l.as_bytes()).0
            } else {
                l
            }
        });
        // Read past the content, hashing a file's (kept: only its digest).
        let digest = if kind == Kind::File {
            let mut h = HashWriter(Sha256::new());
            io::copy(&mut entry, &mut h).map_err(invalid)?;
            Some(format!("sha256:{}", hex::encode(h.0.finalize())))
        } else {
            io::copy(&mut entry, &mut io::sink()).map_err(invalid)?;
            None
        };
        let e = Entry {
            digest,
            size: if kind == Kind::File { size } else { 0 },
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: p.uid.or_else(|| header.uid().ok()).unwrap_or(0),
            gid: p.gid.or_else(|| header.gid().ok()).unwrap_or(0),
            mtime: p.mtime.or_else(|| header.mtime().ok()).unwrap_or(0),
            link,
            note,
            path: path.clone(),
            kind,
        };
        // A later entry for the same path replaces the earlier one, as
        // when the archive is unpacked (deletions are kept apart: a
        // whiteout and a new entry at one path are both meaningful).
        let key = if e.kind.deletes() {
            format!("{path}\0{:?}", e.kind)
        } else {
            path
        };
        by_path.insert(key, e);
    }
    let mut out: Vec<Entry> = by_path.into_values().collect();
    out.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then(b.kind.deletes().cmp(&a.kind.deletes()))
    });
    Ok(out)
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

fn apply_pax(data: &[u8], p: &mut Pending) -> Result<(), IndexError> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.map_err(invalid)?;
        let num = || {
            ext.value()
                .ok()
                .and_then(|v| v.split('.').next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match ext.key_bytes() {
            b"path" => p.path = Some(ext.value_bytes().to_vec()),
            b"linkpath" => p.link = Some(ext.value_bytes().to_vec()),
            b"uid" => p.uid = num(),
            b"gid" => p.gid = num(),
            b"mtime" => p.mtime = num(),
            b"size" => p.size = num(),
            _ => {}
        }
    }
    Ok(())
}

fn lossy(name: &[u8]) -> (String, bool) {
    match std::str::from_utf8(name) {
        Ok(s) => (s.to_owned(), false),
        Err(_) => (String::from_utf8_lossy(name).into_owned(), true),
    }
}

/// The absolute path an archive name lands on when unpacked into a root
/// (`.` and empty parts dropped, `..` resolved but never above the root,
/// as container runtimes do), and a note when the name was not plain.
pub fn normalise(name: &[u8]) -> (String, Option<String>) {
    let (text, not_utf8) = lossy(name);
    let mut parts: Vec<&str> = Vec::new();
    let mut climbed = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => climbed |= parts.pop().is_none(),
            p => parts.push(p),
        }
    }
    let path = format!("/{}", parts.join("/"));
    let note = if climbed {
        Some(format!("its name climbs out of the root: {text:?}"))
    } else if not_utf8 {
        Some("its name is not UTF-8".to_owned())
    } else {
        None
    };
    (path, note)
}

/// `(/dir/name, false)` for `/dir/.wh.name`, `(/dir, true)` for the opaque
/// marker `/dir/.wh..wh..opq`.
fn whiteout(path: &str) -> Option<(String, bool)> {
    let (dir, base) = path.rsplit_once('/')?;
    let dir = if dir.is_empty() { "/" } else { dir };
    if base == ".wh..wh..opq" {
        return Some((dir.to_owned(), true));
    }
    let target = base.strip_prefix(".wh.")?;
    if target.is_empty() {
        return None;
    }
    Some((
        if dir == "/" {
            format!("/{target}")
        } else {
            format!("{dir}/{target}")
        },
        false,
    ))
}

/// Counts what is read of the blob, and stops at the deadline.
struct Counting<'p, R> {
    inner: R,
    progress: &'p Progress,
    deadline: Instant,
    timed_out: bool,
    /// Set when the blob itself could not be read (not the layer's fault).
    failed: Option<String>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() > self.deadline {
            self.timed_out = true;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the indexing deadline passed",
            ));
        }
        let n = self
            .inner
            .read(buf)
            .inspect_err(|e| self.failed = Some(e.to_string()))?;
        self.progress.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Fails once more than the limit has been read after decompression.
struct Limited<R> {
    inner: R,
    left: u64,
    read: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("the layer unpacks to more than the limit"));
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        self.left -= n as u64;
        if self.left == 0 {
            return Err(io::Error::other("the layer unpacks to more than the limit"));
        }
        Ok(n)
    }
}

struct HashWriter(Sha256);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
