//! One entry of a layer's file list, and the list itself as stored.

use serde::{Deserialize, Serialize};

/// What an entry is. `Whiteout` and `Opaque` are the OCI image spec's
/// deletions: `path/.wh.NAME` removes `path/NAME` from the layers below,
/// `path/.wh..wh..opq` hides everything the layers below put in `path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Whiteout,
    Opaque,
}

impl Kind {
    /// The `ls -l` type letter (`-` for a file; `x` for a deletion).
    pub fn letter(self) -> char {
        match self {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Hardlink => 'h',
            Kind::Char => 'c',
            Kind::Block => 'b',
            Kind::Fifo => 'p',
            Kind::Whiteout | Kind::Opaque => 'x',
        }
    }

    /// Whether the entry removes something rather than adding it.
    pub fn deletes(self) -> bool {
        matches!(self, Kind::Whiteout | Kind::Opaque)
    }
}

/// A file, directory, link or deletion in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Absolute and normalised (`/usr/bin/env`); for a whiteout, the path
    /// it deletes; for an opaque marker, the directory it empties.
    pub path: String,
    pub kind: Kind,
    /// Bytes of content (regular files; 0 for everything else).
    pub size: u64,
    /// Permission bits (`0o755`), without the type.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Modification time, Unix seconds.
    pub mtime: u64,
    /// Symlink target, or the path a hard link names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `sha256:…` of a regular file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Set when the name in the archive was not what `path` shows: it
    /// climbed out of the root (`../../etc/passwd`) or was not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Everything a layer holds, sorted by path (one entry per path: the last
/// one in the archive wins, as when it is unpacked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    pub entries: Vec<Entry>,
    /// `gzip`, `zstd` or `none`.
    pub compression: String,
    /// Bytes of the tar stream (after decompression).
    pub tar_bytes: u64,
}

impl LayerIndex {
    /// Regular files and the bytes they hold.
    pub fn files(&self) -> (u64, u64) {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .fold((0, 0), |(n, b), e| (n + 1, b + e.size))
    }

    /// The index as stored in the metadata database: JSON, zstd-compressed
    /// (file lists repeat themselves; 100,000 entries take about 1.5 MB).
    pub fn encode(&self) -> std::io::Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        zstd::bulk::compress(&json, 3)
    }

    pub fn decode(bytes: &[u8]) -> std::io::Result<LayerIndex> {
        let json = zstd::stream::decode_all(bytes)?;
        serde_json::from_slice(&json).map_err(std::io::Error::other)
    }

    /// Entries at `dir` and below (`dir` itself excluded), in path order.
    pub fn under<'a>(&'a self, dir: &str) -> &'a [Entry] {
        under(&self.entries, dir, |e| &e.path)
    }
}

/// The part of `sorted` (by `key`, a path, in byte order) below directory
/// `dir`: every path with a given prefix sits together in byte order.
pub fn under<'a, T>(sorted: &'a [T], dir: &str, key: impl Fn(&T) -> &str) -> &'a [T] {
    let prefix = if dir == "/" {
        "/".to_owned()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    let start = sorted.partition_point(|e| key(e) < prefix.as_str());
    let len = sorted[start..].partition_point(|e| key(e).starts_with(&prefix));
    &sorted[start..start + len]
}

/// Whether `path` is `dir` or lies below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}
