//! In-process caches in front of the metadata database for the hot read
//! paths (manifest GET/HEAD, blob HEAD/GET). This process is the only
//! writer of the database, so every change passes through [`Registry`]
//! (crate::Registry), which invalidates here after it commits.
//!
//! - manifests by `(repo, digest)`: immutable content, dropped only when the
//!   manifest is deleted;
//! - tags `(repo, tag) -> digest`: updated on push, dropped on tag or
//!   manifest delete;
//! - blob links `(repo, digest) -> (size, location)`: dropped on unlink;
//! - upload sessions `id -> repo` this process opened: added when the row
//!   is committed, dropped before the row is deleted, so a hit always means
//!   the row exists (a miss asks the database: sessions from before a
//!   restart).
//!
//! Only positive answers are cached. A lookup that raced with a write must
//! not store what it read before that write: every invalidation bumps an
//! epoch, and a fill is stored only if the epoch is still the one seen
//! before the database was read. Each map is bounded; when full it is
//! simply cleared (cheap, and the next reads refill it).

use crate::blobstore::BlobRef;
use crate::digest::Digest;
use crate::metadata::{Invalidation, StoredManifest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A committed blob as a repository sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    /// The store's name for its bytes, when not derived from the digest.
    pub location: Option<Arc<str>>,
}

impl BlobInfo {
    pub fn as_ref<'a>(&'a self, digest: &'a Digest) -> BlobRef<'a> {
        BlobRef {
            digest,
            location: self.location.as_deref(),
        }
    }
}

const MAX_TAGS: usize = 100_000;
const MAX_LINKS: usize = 100_000;
const MAX_MANIFEST_ENTRIES: usize = 10_000;
const MAX_UPLOADS: usize = 100_000;
/// Manifests larger than this are not cached.
const MAX_CACHED_MANIFEST: usize = 256 << 10;
/// Total manifest bytes kept in memory.
const MAX_MANIFEST_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Inner {
    epoch: u64,
    tags: HashMap<(String, String), Digest>,
    links: HashMap<(String, Digest), BlobInfo>,
    manifests: HashMap<(String, Digest), Arc<StoredManifest>>,
    manifest_bytes: usize,
    uploads: HashMap<String, String>,
    /// Other nodes' changes cannot be heard right now: hold nothing.
    deaf: bool,
}

/// Count a lookup of `cache` (`registry_cache_requests_total`), through
/// handles made once (a key built per lookup costs more than the lookup).
fn counted<T>(cache: &'static str, found: Option<T>) -> Option<T> {
    use std::sync::LazyLock;
    type Pair = (metrics::Counter, metrics::Counter);
    fn pair(cache: &'static str) -> Pair {
        (
            metrics::counter!("registry_cache_requests_total", "cache" => cache, "result" => "hit"),
            metrics::counter!("registry_cache_requests_total", "cache" => cache, "result" => "miss"),
        )
    }
    static TAG: LazyLock<Pair> = LazyLock::new(|| pair("tag"));
    static MANIFEST: LazyLock<Pair> = LazyLock::new(|| pair("manifest"));
    static LINK: LazyLock<Pair> = LazyLock::new(|| pair("link"));
    let (hit, miss) = match cache {
        "tag" => &*TAG,
        "manifest" => &*MANIFEST,
        _ => &*LINK,
    };
    if found.is_some() {
        hit.increment(1);
    } else {
        miss.increment(1);
    }
    found
}

#[derive(Default, Clone)]
pub struct Cache {
    inner: Arc<Mutex<Inner>>,
}

/// Token from [`Cache::epoch`], passed back to a fill.
#[derive(Clone, Copy)]
pub struct Epoch(u64);

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn epoch(&self) -> Epoch {
        let g = self.lock();
        // A fill while deaf can never match: nothing is stored.
        Epoch(if g.deaf { u64::MAX } else { g.epoch })
    }

    /// Apply another node's change (or the loss or return of the channel
    /// that tells of them).
    pub fn apply(&self, change: Invalidation) {
        match change {
            Invalidation::Tag { repo, tag } => self.drop_tag(&repo, &tag),
            Invalidation::Manifest { repo, digest } => {
                if let Ok(d) = digest.parse() {
                    self.drop_manifest(&repo, &d);
                }
            }
            Invalidation::Link { repo, digest } => {
                if let Ok(d) = digest.parse() {
                    self.drop_link(&repo, &d);
                }
            }
            Invalidation::Lost => self.forget_all(true),
            Invalidation::Listening => self.forget_all(false),
        }
    }

    fn forget_all(&self, deaf: bool) {
        let mut g = self.lock();
        g.epoch += 1;
        g.deaf = deaf;
        g.tags.clear();
        g.links.clear();
        g.manifests.clear();
        g.manifest_bytes = 0;
    }

    // ---- reads and fills ----------------------------------------------

    pub fn tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        let found = self
            .lock()
            .tags
            .get(&(repo.to_owned(), tag.to_owned()))
            .cloned();
        counted("tag", found)
    }

    pub fn fill_tag(&self, seen: Epoch, repo: &str, tag: &str, digest: &Digest) {
        let mut g = self.lock();
        if g.epoch != seen.0 {
            return;
        }
        if g.tags.len() >= MAX_TAGS {
            g.tags.clear();
        }
        g.tags
            .insert((repo.to_owned(), tag.to_owned()), digest.clone());
    }

    pub fn link(&self, repo: &str, digest: &Digest) -> Option<BlobInfo> {
        let found = self
            .lock()
            .links
            .get(&(repo.to_owned(), digest.clone()))
            .cloned();
        counted("link", found)
    }

    pub fn fill_link(&self, seen: Epoch, repo: &str, digest: &Digest, blob: BlobInfo) {
        let mut g = self.lock();
        if g.epoch != seen.0 {
            return;
        }
        if g.links.len() >= MAX_LINKS {
            g.links.clear();
        }
        g.links.insert((repo.to_owned(), digest.clone()), blob);
    }

    /// True if this process opened upload `id` in `repo` and it has not
    /// ended.
    pub fn upload_in(&self, id: &str, repo: &str) -> bool {
        self.lock().uploads.get(id).is_some_and(|r| r == repo)
    }

    pub fn manifest(&self, repo: &str, digest: &Digest) -> Option<Arc<StoredManifest>> {
        let found = self
            .lock()
            .manifests
            .get(&(repo.to_owned(), digest.clone()))
            .cloned();
        counted("manifest", found)
    }

    pub fn fill_manifest(&self, seen: Epoch, repo: &str, m: &Arc<StoredManifest>) {
        let size = m.content.len();
        if size > MAX_CACHED_MANIFEST {
            return;
        }
        let mut g = self.lock();
        if g.epoch != seen.0 {
            return;
        }
        if g.manifests.len() >= MAX_MANIFEST_ENTRIES || g.manifest_bytes + size > MAX_MANIFEST_BYTES
        {
            g.manifests.clear();
            g.manifest_bytes = 0;
        }
        if g.manifests
            .insert((repo.to_owned(), m.digest.clone()), m.clone())
            .is_none()
        {
            g.manifest_bytes += size;
        }
    }

    // ---- invalidation (after the database committed) -------------------

    /// `tag` now points at `digest` (we just wrote it). An entry already
    /// cached is updated; others are left for a read to fill, so pushing
    /// many tags does not fill memory with tags nobody pulls.
    pub fn set_tag(&self, repo: &str, tag: &str, digest: &Digest) {
        let mut g = self.lock();
        g.epoch += 1;
        if let Some(d) = g.tags.get_mut(&(repo.to_owned(), tag.to_owned())) {
            *d = digest.clone();
        }
    }

    pub fn drop_tag(&self, repo: &str, tag: &str) {
        let mut g = self.lock();
        g.epoch += 1;
        g.tags.remove(&(repo.to_owned(), tag.to_owned()));
    }

    /// A manifest is gone, and with it every tag on it.
    pub fn drop_manifest(&self, repo: &str, digest: &Digest) {
        let mut g = self.lock();
        g.epoch += 1;
        if let Some(m) = g.manifests.remove(&(repo.to_owned(), digest.clone())) {
            g.manifest_bytes -= m.content.len();
        }
        g.tags.retain(|(r, _), d| !(r == repo && d == digest));
    }

    /// Upload `id` of `repo` was just committed to the database.
    pub fn add_upload(&self, id: &str, repo: &str) {
        let mut g = self.lock();
        if g.uploads.len() >= MAX_UPLOADS {
            g.uploads.clear();
        }
        g.uploads.insert(id.to_owned(), repo.to_owned());
    }

    /// Upload `id` is about to end (before its row goes).
    pub fn drop_upload(&self, id: &str) {
        self.lock().uploads.remove(id);
    }

    pub fn drop_link(&self, repo: &str, digest: &Digest) {
        let mut g = self.lock();
        g.epoch += 1;
        g.links.remove(&(repo.to_owned(), digest.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_fill_is_refused() {
        let c = Cache::default();
        let d1 = Digest::sha256_of(b"1");
        let d2 = Digest::sha256_of(b"2");
        let seen = c.epoch();
        // A write lands between the read of the database and the fill.
        c.set_tag("r", "t", &d2);
        c.fill_tag(seen, "r", "t", &d1);
        assert_eq!(c.tag("r", "t"), None, "stale fill refused");
        // A push updates a tag that is cached, and caches no other.
        c.fill_tag(c.epoch(), "r", "t", &d1);
        c.set_tag("r", "t", &d2);
        c.set_tag("r", "other", &d2);
        assert_eq!(c.tag("r", "t"), Some(d2.clone()));
        assert_eq!(c.tag("r", "other"), None);
        c.drop_manifest("r", &d2);
        assert_eq!(c.tag("r", "t"), None);
        let seen = c.epoch();
        let five = BlobInfo {
            size: 5,
            location: None,
        };
        c.fill_link(seen, "r", &d1, five.clone());
        assert_eq!(c.link("r", &d1), Some(five));
        c.drop_link("r", &d1);
        assert_eq!(c.link("r", &d1), None);
    }

    #[test]
    fn upload_sessions_belong_to_their_repository() {
        let c = Cache::default();
        c.add_upload("u1", "a/b");
        assert!(c.upload_in("u1", "a/b"));
        assert!(!c.upload_in("u1", "a/c"));
        assert!(!c.upload_in("u2", "a/b"));
        c.drop_upload("u1");
        assert!(!c.upload_in("u1", "a/b"));
    }

    #[test]
    fn other_nodes_changes_and_a_deaf_spell() {
        let c = Cache::default();
        let d1 = Digest::sha256_of(b"1");
        c.fill_tag(c.epoch(), "r", "t", &d1);
        c.apply(Invalidation::Tag {
            repo: "r".into(),
            tag: "t".into(),
        });
        assert_eq!(c.tag("r", "t"), None);
        c.fill_tag(c.epoch(), "r", "t", &d1);
        c.apply(Invalidation::Manifest {
            repo: "r".into(),
            digest: d1.to_string(),
        });
        assert_eq!(c.tag("r", "t"), None, "tags on a deleted manifest go");
        // Deaf: nothing cached is kept, nothing new is stored.
        c.fill_tag(c.epoch(), "r", "t", &d1);
        c.apply(Invalidation::Lost);
        assert_eq!(c.tag("r", "t"), None);
        let seen = c.epoch();
        c.fill_tag(seen, "r", "t", &d1);
        assert_eq!(c.tag("r", "t"), None, "filled while deaf");
        c.apply(Invalidation::Listening);
        c.fill_tag(seen, "r", "t", &d1);
        assert_eq!(c.tag("r", "t"), None, "a fill begun while deaf is refused");
        c.fill_tag(c.epoch(), "r", "t", &d1);
        assert_eq!(c.tag("r", "t"), Some(d1));
    }
}
