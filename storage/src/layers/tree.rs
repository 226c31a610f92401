//! Layers stacked into the file system a container starts from, what that
//! wasted, directory listings, and the difference of two images.
//!
//! Stacking follows the OCI image spec's "applying changesets": a layer's
//! whiteouts delete from the layers below it only, then its entries are
//! added; an entry that is not a directory hides whatever was below its
//! path, a directory merges with the one below.
//!
//! Waste is as `dive` counts it: the bytes of files a later layer
//! overwrites or deletes (they are still in the image's blobs, pulled by
//! everyone), and efficiency = 1 − wasted / all file bytes of all layers.

use super::entry::{under, Entry, Kind, LayerIndex};
use super::secrets::looks_secret;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An entry of the stacked file system, and the layer (0-based) it is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    #[serde(flatten)]
    pub entry: Entry,
    pub layer: usize,
}

/// A file that a later layer hid: the bytes its hidden versions hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wasted {
    pub path: String,
    pub wasted_bytes: u64,
    /// Versions of it that later layers overwrote or deleted.
    pub versions: u32,
    /// The layers those versions were in.
    pub layers: Vec<usize>,
}

/// A file whose name says it may hold a secret, in any layer (one a later
/// layer deleted is still in the image's blobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub path: String,
    pub layer: usize,
    pub reason: String,
    /// Not in the stacked file system any more, but still in its layer.
    pub deleted: bool,
}

/// What an image's layers wasted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waste {
    /// Bytes of every regular file of every layer.
    pub total_bytes: u64,
    pub wasted_bytes: u64,
    /// 1 − wasted / total (1 when there are no file bytes).
    pub efficiency: f64,
    /// Worst first.
    pub files: Vec<Wasted>,
    pub secrets: Vec<Secret>,
}

/// The stacked file system of an image.
#[derive(Debug, Clone)]
pub struct Stacked {
    /// By path; no deletions.
    pub nodes: Vec<Node>,
    pub waste: Waste,
}

/// Stack `layers`, lowest first.
pub fn stack(layers: &[&LayerIndex]) -> Stacked {
    let mut fs: BTreeMap<String, Node> = BTreeMap::new();
    let mut wasted: HashMap<String, Wasted> = HashMap::new();
    let mut secrets = Vec::new();
    let mut total = 0u64;
    let hide = |n: Node, wasted: &mut HashMap<String, Wasted>| {
        if n.entry.kind == Kind::File && n.entry.size > 0 {
            let w = wasted
                .entry(n.entry.path.clone())
                .or_insert_with(|| Wasted {
                    path: n.entry.path.clone(),
                    wasted_bytes: 0,
                    versions: 0,
                    layers: Vec::new(),
                });
            w.wasted_bytes += n.entry.size;
            w.versions += 1;
            if !w.layers.contains(&n.layer) {
                w.layers.push(n.layer);
            }
        }
    };
    for (layer, index) in layers.iter().enumerate() {
        for e in index.entries.iter().filter(|e| e.kind.deletes()) {
            if e.kind == Kind::Whiteout {
                if let Some(n) = fs.remove(&e.path) {
                    hide(n, &mut wasted);
                }
            }
            for n in remove_below(&mut fs, &e.path) {
                hide(n, &mut wasted);
            }
        }
        for e in index.entries.iter().filter(|e| !e.kind.deletes()) {
            if e.kind == Kind::File {
                total += e.size;
            }
            if let Some(reason) = looks_secret(&e.path, e.kind) {
                secrets.push(Secret {
                    path: e.path.clone(),
                    layer,
                    reason: reason.to_owned(),
                    deleted: false,
                });
            }
            let below_is_dir = fs.get(&e.path).is_some_and(|n| n.entry.kind == Kind::Dir);
            if e.kind != Kind::Dir || !below_is_dir {
                for n in remove_below(&mut fs, &e.path) {
                    hide(n, &mut wasted);
                }
            }
            let node = Node {
                entry: e.clone(),
                layer,
            };
            if let Some(old) = fs.insert(e.path.clone(), node) {
                hide(old, &mut wasted);
            }
        }
    }
    for s in &mut secrets {
        s.deleted = fs.get(&s.path).is_none_or(|n| n.layer != s.layer);
    }
    let mut files: Vec<Wasted> = wasted.into_values().collect();
    files.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then(a.path.cmp(&b.path))
    });
    let wasted_bytes = files.iter().map(|w| w.wasted_bytes).sum();
    Stacked {
        nodes: fs.into_values().collect(),
        waste: Waste {
            total_bytes: total,
            wasted_bytes,
            efficiency: efficiency(wasted_bytes, total),
            files,
            secrets,
        },
    }
}

/// 1 − wasted / total.
pub fn efficiency(wasted: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        1.0 - wasted as f64 / total as f64
    }
}

/// Take everything strictly below `dir` out of `fs`.
fn remove_below(fs: &mut BTreeMap<String, Node>, dir: &str) -> Vec<Node> {
    let prefix = if dir == "/" {
        "/".to_owned()
    } else {
        format!("{dir}/")
    };
    let keys: Vec<String> = fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    keys.iter().filter_map(|k| fs.remove(k)).collect()
}

/// One line of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub entry: Entry,
    /// The layer it is from (stacked listings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Listed only because something below it is (no entry of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implied: bool,
    /// For a directory: bytes of the regular files below it, and how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_files: Option<u64>,
    /// Why its name suggests a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The listing of `dir` down to `depth` levels (1: its children), from
/// entries sorted by path, directories with what lies below them; by path,
/// a deletion before an addition at the same path (a layer that empties a
/// directory lists it twice: emptied, then made).
///
/// Each child is found once and the entries below it are skipped by binary
/// search, so a listing costs its rows plus one sum over what lies below
/// them, without an allocation per entry.
pub fn list<T>(
    sorted: &[T],
    dir: &str,
    depth: usize,
    entry: impl for<'x> Fn(&'x T) -> (&'x Entry, Option<usize>),
) -> Vec<Row> {
    let mut out = Vec::new();
    let below = under(sorted, dir, |t| &entry(t).0.path);
    walk(below, dir, depth.max(1), &entry, &mut out);
    out.sort_by(|a, b| {
        a.entry
            .path
            .cmp(&b.entry.path)
            .then(b.entry.kind.deletes().cmp(&a.entry.kind.deletes()))
    });
    out
}

fn walk<'a, T, F>(slice: &'a [T], dir: &str, depth: usize, entry: &F, out: &mut Vec<Row>)
where
    F: for<'x> Fn(&'x T) -> (&'x Entry, Option<usize>),
{
    let base = if dir == "/" { 1 } else { dir.len() + 1 };
    let mut seen: HashSet<&'a str> = HashSet::new();
    let mut i = 0;
    while i < slice.len() {
        let path: &'a str = &entry(&slice[i]).0.path;
        let child = match path[base..].find('/') {
            Some(n) => &path[..base + n],
            None => path,
        };
        let subtree = under(slice, child, |t| &entry(t).0.path);
        if !seen.insert(child) {
            // Met before (a sibling like `a-b` sorts between `a` and
            // `a/...`): its subtree was listed then.
            i += subtree.len().max(1);
            continue;
        }
        let mut own = i;
        while own < slice.len() && entry(&slice[own]).0.path == child {
            own += 1;
        }
        let (bytes, files) = subtree
            .iter()
            .map(|t| entry(t).0)
            .filter(|e| e.kind == Kind::File)
            .fold((0, 0), |(b, n), e| (b + e.size, n + 1));
        let mut is_dir = own == i;
        if own == i {
            let mut row = implied_dir(child);
            row.total_bytes = Some(bytes);
            row.total_files = Some(files);
            out.push(row);
        }
        for t in &slice[i..own] {
            let (e, layer) = entry(t);
            let dir_like = e.kind == Kind::Dir;
            is_dir |= dir_like;
            out.push(Row {
                entry: e.clone(),
                layer,
                implied: false,
                total_bytes: dir_like.then_some(bytes),
                total_files: dir_like.then_some(files),
                secret: looks_secret(&e.path, e.kind).map(str::to_owned),
            });
        }
        if depth > 1 && is_dir {
            walk(subtree, child, depth - 1, entry, out);
        }
        i = if own > i {
            own
        } else {
            i + subtree.len().max(1)
        };
    }
}

fn implied_dir(path: &str) -> Row {
    Row {
        entry: Entry {
            path: path.to_owned(),
            kind: Kind::Dir,
            size: 0,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            link: None,
            note: None,
            digest: None,
        },
        layer: None,
        implied: true,
        total_bytes: Some(0),
        total_files: Some(0),
        secret: None,
    }
}

/// How a path differs between two images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Entry>,
}

/// What changed from stacked file system `a` to `b` (both by path):
/// contents by digest, and type, mode, owner and link target.
pub fn diff(a: &[Node], b: &[Node]) -> Vec<Change> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    let same = |x: &Entry, y: &Entry| {
        x.kind == y.kind
            && x.size == y.size
            && x.mode == y.mode
            && x.uid == y.uid
            && x.gid == y.gid
            && x.link == y.link
            && x.digest == y.digest
    };
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.entry.path.cmp(&y.entry.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push(change(&a[i].entry.path, "removed", Some(&a[i].entry), None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(change(&b[j].entry.path, "added", None, Some(&b[j].entry)));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if !same(&a[i].entry, &b[j].entry) {
                    out.push(change(
                        &a[i].entry.path,
                        "changed",
                        Some(&a[i].entry),
                        Some(&b[j].entry),
                    ));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn change(path: &str, what: &str, from: Option<&Entry>, to: Option<&Entry>) -> Change {
    Change {
        path: path.to_owned(),
        change: what.to_owned(),
        from: from.cloned(),
        to: to.cloned(),
    }
}
