//! What garbage collection decides, shared by both databases: the liveness
//! rules of a manifest (pure, unit-tested), the steps of a collection over
//! a transaction ([`GcTx`], one implementation per database, over the
//! queries both run, [`GcRows`]) and the query text both run.
//!
//! A manifest is kept while it is *anchored* (tagged, a child of an index
//! in its repository, or within the retention window after a tag left it),
//! while it is a referrer whose subject is stored (a signature lives with
//! its image), and while any referrer below it (by `subject`, to any
//! depth) is anchored (an image stays while a kept signature names it).

use crate::metadata::{GcBlob, GcClock, GcManifest, GcStep};

/// Why a manifest is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Tagged or a child of an index: until that changes (which queues it).
    Held,
    /// Within the retention window until this time.
    Until(i64),
}

/// What is known of a queued manifest.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub present: bool,
    pub tagged: bool,
    pub child: bool,
    /// When a tag last left it.
    pub untagged_at: Option<i64>,
    pub subject_present: bool,
    /// The strongest anchor among referrers below it.
    pub below: Option<Anchor>,
}

/// The outcome of reviewing a queued manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No longer stored: drop the queue row.
    Gone,
    /// Kept; the queue row goes (whatever unanchors it queues it again).
    Live,
    /// Kept until this time: review again then.
    Until(i64),
    Garbage,
}

/// The anchor of a manifest by its own facts.
pub fn anchor(
    tagged: bool,
    child: bool,
    untagged_at: Option<i64>,
    now: i64,
    retention: i64,
) -> Option<Anchor> {
    if tagged || child {
        return Some(Anchor::Held);
    }
    match untagged_at {
        Some(at) if at + retention > now => Some(Anchor::Until(at + retention)),
        _ => None,
    }
}

/// The stronger of two anchors.
pub fn stronger(a: Option<Anchor>, b: Option<Anchor>) -> Option<Anchor> {
    match (a, b) {
        (Some(Anchor::Held), _) | (_, Some(Anchor::Held)) => Some(Anchor::Held),
        (Some(Anchor::Until(x)), Some(Anchor::Until(y))) => Some(Anchor::Until(x.max(y))),
        (x, None) => x,
        (None, y) => y,
    }
}

pub fn verdict(f: &Facts, now: i64, retention: i64) -> Verdict {
    if !f.present {
        return Verdict::Gone;
    }
    if f.subject_present {
        return Verdict::Live;
    }
    match stronger(
        anchor(f.tagged, f.child, f.untagged_at, now, retention),
        f.below,
    ) {
        Some(Anchor::Held) => Verdict::Live,
        Some(Anchor::Until(t)) => Verdict::Until(t),
        None => Verdict::Garbage,
    }
}

/// Queued manifests with their facts: repo id, digest, since, repository,
/// size, tagged, child of an index, last untagged, subject stored, has
/// referrers (a missing manifest has a NULL size). Each database adds
/// which rows (see [`QUEUE_DUE`]).
pub const MANIFEST_FACTS: &str = "SELECT q.repo_id, q.digest, q.since, r.name, m.size,
  EXISTS(SELECT 1 FROM tags t WHERE t.repo_id = q.repo_id AND t.digest = q.digest),
  EXISTS(SELECT 1 FROM manifest_refs x WHERE x.ref_digest = q.digest AND x.repo_id = q.repo_id AND x.kind = 'manifest'),
  (SELECT MAX(h.at) FROM tag_history h WHERE h.repo_id = q.repo_id AND h.old_digest = q.digest),
  EXISTS(SELECT 1 FROM manifests s WHERE s.repo_id = q.repo_id AND s.digest = m.subject),
  EXISTS(SELECT 1 FROM manifests c WHERE c.repo_id = q.repo_id AND c.subject = q.digest)
FROM gc_manifest_queue q
LEFT JOIN manifests m ON m.repo_id = q.repo_id AND m.digest = q.digest
LEFT JOIN repositories r ON r.id = q.repo_id";

/// Which queued rows are due: `$1` cut (milliseconds), `$2` limit.
pub const QUEUE_DUE: &str = " WHERE q.since <= $1 ORDER BY q.since, q.repo_id, q.digest LIMIT $2";

/// Referrers of `$2` in repository id `$1` with their own anchor facts:
/// digest, tagged, child of an index, last untagged.
pub const REFERRERS_BELOW: &str = "SELECT c.digest,
  EXISTS(SELECT 1 FROM tags t WHERE t.repo_id = c.repo_id AND t.digest = c.digest),
  EXISTS(SELECT 1 FROM manifest_refs x WHERE x.ref_digest = c.digest AND x.repo_id = c.repo_id AND x.kind = 'manifest'),
  (SELECT MAX(h.at) FROM tag_history h WHERE h.repo_id = c.repo_id AND h.old_digest = c.digest)
FROM manifests c WHERE c.repo_id = $1 AND c.subject = $2";

/// Delete manifest `$2` of repository id `$1` if its queue row is still
/// due at `$3` (a delete earlier in the same step may have queued it anew).
pub const DELETE_DUE_MANIFEST: &str = "DELETE FROM manifests WHERE repo_id = $1 AND digest = $2
  AND EXISTS(SELECT 1 FROM gc_manifest_queue q WHERE q.repo_id = $1 AND q.digest = $2 AND q.since <= $3)";

/// Drop a reviewed queue row unless it was queued anew since (`$3`: the
/// `since` reviewed).
pub const DROP_MANIFEST_ROW: &str =
    "DELETE FROM gc_manifest_queue WHERE repo_id = $1 AND digest = $2 AND since = $3";

/// Review a manifest again at `$3` (milliseconds).
pub const REQUEUE_MANIFEST: &str =
    "UPDATE gc_manifest_queue SET since = $3 WHERE repo_id = $1 AND digest = $2";

/// Queued links: repo id, digest, since, repository, link stored,
/// referenced by a manifest of the repository (rows as for manifests).
pub const LINK_FACTS: &str = "SELECT q.repo_id, q.digest, q.since, r.name,
  EXISTS(SELECT 1 FROM repo_blobs l WHERE l.repo_id = q.repo_id AND l.digest = q.digest),
  EXISTS(SELECT 1 FROM manifest_refs x WHERE x.ref_digest = q.digest AND x.repo_id = q.repo_id AND x.kind = 'blob')
FROM gc_link_queue q LEFT JOIN repositories r ON r.id = q.repo_id";

pub const DELETE_DUE_LINK: &str = "DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2
  AND EXISTS(SELECT 1 FROM gc_link_queue q WHERE q.repo_id = $1 AND q.digest = $2 AND q.since <= $3)";

pub const DROP_LINK_ROW: &str =
    "DELETE FROM gc_link_queue WHERE repo_id = $1 AND digest = $2 AND since = $3";

/// Whether blob `$1` is linked or referenced anywhere.
pub const BLOB_IN_USE: &str = "SELECT EXISTS(SELECT 1 FROM repo_blobs WHERE digest = $1)
  OR EXISTS(SELECT 1 FROM manifest_refs WHERE ref_digest = $1 AND kind = 'blob')";

/// Due blobs: `$1` cut (milliseconds), `$2` limit.
pub const BLOB_DUE: &str =
    "SELECT digest FROM gc_blob_queue WHERE since <= $1 ORDER BY since, digest LIMIT $2";

/// A blob's row, with its queue time (NULL: not queued).
pub const BLOB_ROW: &str = "SELECT b.size, b.location, q.since FROM blobs b
  LEFT JOIN gc_blob_queue q ON q.digest = b.digest WHERE b.digest = $1";

pub const DELETE_BLOB: &str = "DELETE FROM blobs WHERE digest = $1";
pub const DROP_BLOB_ROW: &str = "DELETE FROM gc_blob_queue WHERE digest = $1";

/// `(repo id, digest, since, repository, size, tagged, child, untagged
/// at, subject stored, has referrers)` of [`MANIFEST_FACTS`].
pub type ManifestRow = (
    i64,
    String,
    i64,
    Option<String>,
    Option<i64>,
    bool,
    bool,
    Option<i64>,
    bool,
    bool,
);
/// `(repo id, digest, since, repository, linked, referenced)` of [`LINK_FACTS`].
pub type LinkRow = (i64, String, i64, Option<String>, bool, bool);
/// `(digest, tagged, child, untagged at)` of [`REFERRERS_BELOW`].
pub type BelowRow = (String, bool, bool, Option<i64>);

type Sql<T> = std::result::Result<T, sqlx::Error>;

/// What a collection step asks of the database, inside one transaction,
/// where both databases run the same SQL: [`impl_gc_rows`] implements it
/// for a dialect's transaction.
#[async_trait::async_trait]
pub trait GcRows: Send {
    async fn referrers_below(&mut self, repo_id: i64, digest: &str) -> Sql<Vec<BelowRow>>;
    /// Run `sql` with `$1` repo id, `$2` digest, `$3` number; rows affected.
    async fn exec(&mut self, sql: &'static str, repo_id: i64, digest: &str, n: i64) -> Sql<u64>;
    async fn blob_in_use(&mut self, digest: &str) -> Sql<bool>;
    async fn blob_row(&mut self, digest: &str) -> Sql<Option<(i64, Option<String>, Option<i64>)>>;
    /// Drop a blob's queue row, and with `blob_too` its row.
    async fn delete_blob_rows(&mut self, digest: &str, blob_too: bool) -> Sql<()>;
    async fn due_blobs(&mut self, cut: i64, limit: i64) -> Sql<Vec<String>>;
}

/// What differs: each database answers in its own dialect (and PostgreSQL
/// locks what it returns); the decisions below are the same for both.
#[async_trait::async_trait]
pub trait GcTx: GcRows {
    /// The database's clock, unix milliseconds (what wrote the queues).
    async fn now_ms(&mut self) -> Sql<i64>;
    /// Manifest rows due at `cut` (at most `limit`) that this step may act on.
    async fn manifest_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<ManifestRow>, bool)>;
    async fn link_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<LinkRow>, bool)>;
    /// Lock the rows of blobs about to be reviewed (a no-op where the
    /// database has a single writer).
    async fn lock_blobs(&mut self, digests: &[String]) -> Sql<()>;
}

/// [`GcRows`] for `$tx`, a dialect's wrapper of a connection.
macro_rules! impl_gc_rows {
    ($tx:ident) => {
        #[async_trait::async_trait]
        impl $crate::metadata::gc::GcRows for $tx<'_> {
            async fn referrers_below(
                &mut self,
                repo_id: i64,
                digest: &str,
            ) -> sqlx::Result<Vec<$crate::metadata::gc::BelowRow>> {
                sqlx::query_as($crate::metadata::gc::REFERRERS_BELOW)
                    .bind(repo_id)
                    .bind(digest)
                    .fetch_all(&mut *self.0)
                    .await
            }

            async fn exec(
                &mut self,
                sql: &'static str,
                repo_id: i64,
                digest: &str,
                n: i64,
            ) -> sqlx::Result<u64> {
                Ok(sqlx::query(sql)
                    .bind(repo_id)
                    .bind(digest)
                    .bind(n)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn blob_in_use(&mut self, digest: &str) -> sqlx::Result<bool> {
                sqlx::query_scalar($crate::metadata::gc::BLOB_IN_USE)
                    .bind(digest)
                    .fetch_one(&mut *self.0)
                    .await
            }

            async fn blob_row(
                &mut self,
                digest: &str,
            ) -> sqlx::Result<Option<(i64, Option<String>, Option<i64>)>> {
                sqlx::query_as($crate::metadata::gc::BLOB_ROW)
                    .bind(digest)
                    .fetch_optional(&mut *self.0)
                    .await
            }

            async fn delete_blob_rows(&mut self, digest: &str, blob_too: bool) -> sqlx::Result<()> {
                if blob_too {
                    sqlx::query($crate::metadata::gc::DELETE_BLOB)
                        .bind(digest)
                        .execute(&mut *self.0)
                        .await?;
                }
                sqlx::query($crate::metadata::gc::DROP_BLOB_ROW)
                    .bind(digest)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn due_blobs(&mut self, cut: i64, limit: i64) -> sqlx::Result<Vec<String>> {
                sqlx::query_scalar($crate::metadata::gc::BLOB_DUE)
                    .bind(cut)
                    .bind(limit)
                    .fetch_all(&mut *self.0)
                    .await
            }
        }
    };
}
pub(crate) use impl_gc_rows;

/// The strongest anchor among the referrers below `digest`, to any depth.
async fn below(
    tx: &mut dyn GcTx,
    repo_id: i64,
    digest: &str,
    clock: GcClock,
) -> Sql<Option<Anchor>> {
    let mut best = None;
    let mut todo = vec![digest.to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        for (child, tagged, index_child, untagged_at) in tx.referrers_below(repo_id, &d).await? {
            best = stronger(
                best,
                anchor(tagged, index_child, untagged_at, clock.now, clock.retention),
            );
            if best == Some(Anchor::Held) {
                return Ok(best);
            }
            todo.push(child);
        }
    }
    Ok(best)
}

async fn judge(tx: &mut dyn GcTx, row: &ManifestRow, clock: GcClock) -> Sql<Verdict> {
    let (repo_id, digest, _, _, size, tagged, child, untagged_at, subject_present, referred) = row;
    let mut facts = Facts {
        present: size.is_some(),
        tagged: *tagged,
        child: *child,
        untagged_at: *untagged_at,
        subject_present: *subject_present,
        below: None,
    };
    if facts.present && *referred && !tagged && !child && !subject_present {
        facts.below = below(tx, *repo_id, digest, clock).await?;
    }
    Ok(verdict(&facts, clock.now, clock.retention))
}

/// Review due manifests: remove the garbage, then settle the rest. The
/// garbage goes first, and the facts are read again after each removal,
/// because a removal changes what the others hang on (a referrer whose
/// subject just went).
pub async fn manifests(tx: &mut dyn GcTx, clock: GcClock, limit: i64) -> Sql<GcStep> {
    let mut step = GcStep::default();
    let cut = clock.cut(tx.now_ms().await?);
    loop {
        let (rows, more) = tx.manifest_facts(cut, limit).await?;
        let mut removed = 0;
        let mut settled = Vec::new();
        for row in rows {
            match judge(tx, &row, clock).await? {
                Verdict::Garbage => {
                    let (repo_id, digest, since, repo, size, ..) = &row;
                    if tx.exec(DELETE_DUE_MANIFEST, *repo_id, digest, cut).await? > 0 {
                        removed += 1;
                        step.reviewed += 1;
                        step.manifests.push(GcManifest {
                            repo: repo.clone().unwrap_or_default(),
                            digest: digest.clone(),
                            size: size.unwrap_or(0) as u64,
                        });
                        tx.exec(DROP_MANIFEST_ROW, *repo_id, digest, *since).await?;
                    }
                }
                v => settled.push((row, v)),
            }
        }
        if removed > 0 {
            // Read again: what is left may hang on what went.
            continue;
        }
        for ((repo_id, digest, since, ..), v) in settled {
            step.reviewed += 1;
            match v {
                Verdict::Until(t) => {
                    tx.exec(REQUEUE_MANIFEST, repo_id, &digest, t * 1000)
                        .await?;
                }
                _ => {
                    tx.exec(DROP_MANIFEST_ROW, repo_id, &digest, since).await?;
                }
            }
        }
        step.more = more;
        return Ok(step);
    }
}

/// Review due blob links: those no manifest of their repository names go.
pub async fn links(tx: &mut dyn GcTx, clock: GcClock, limit: i64) -> Sql<GcStep> {
    let cut = clock.cut(tx.now_ms().await?);
    let (rows, more) = tx.link_facts(cut, limit).await?;
    let mut step = GcStep {
        reviewed: rows.len() as u64,
        more,
        ..GcStep::default()
    };
    for (repo_id, digest, since, repo, linked, referenced) in rows {
        if linked && !referenced && tx.exec(DELETE_DUE_LINK, repo_id, &digest, cut).await? > 0 {
            step.links.push((repo.unwrap_or_default(), digest.clone()));
            if !tx.blob_in_use(&digest).await? {
                step.orphaned.push(digest.clone());
            }
        }
        tx.exec(DROP_LINK_ROW, repo_id, &digest, since).await?;
    }
    Ok(step)
}

/// Remove the rows of those of `digests` no one uses (the caller holds
/// their fences); `forced` ones need not be due (their last link went in
/// this collection, after waiting out the grace period).
pub async fn blobs(
    tx: &mut dyn GcTx,
    clock: GcClock,
    digests: &[String],
    forced: &[String],
) -> Sql<GcStep> {
    let mut step = GcStep {
        reviewed: digests.len() as u64,
        ..GcStep::default()
    };
    tx.lock_blobs(digests).await?;
    let cut = clock.cut(tx.now_ms().await?);
    for digest in digests {
        let row = tx.blob_row(digest).await?;
        let in_use = tx.blob_in_use(digest).await?;
        match row {
            None => tx.delete_blob_rows(digest, false).await?,
            Some((size, location, since)) => {
                let due = forced.contains(digest) || since.is_some_and(|s| s <= cut);
                if !due {
                    // Queued anew meanwhile: a later run looks again.
                    continue;
                }
                if !in_use {
                    step.blobs.push(GcBlob {
                        digest: digest.clone(),
                        size: size as u64,
                        location,
                    });
                    tx.delete_blob_rows(digest, true).await?;
                } else {
                    tx.delete_blob_rows(digest, false).await?;
                }
            }
        }
    }
    Ok(step)
}

/// Every step until nothing is due, in the caller's transaction (which it
/// rolls back): exactly what a run would remove now, cascades included.
pub async fn dry_run(tx: &mut dyn GcTx, clock: GcClock) -> Sql<GcStep> {
    let mut all = GcStep::default();
    loop {
        let m = manifests(tx, clock, 1000).await?;
        let l = links(tx, clock, 1000).await?;
        let cut = clock.cut(tx.now_ms().await?);
        let mut due = tx.due_blobs(cut, 1000).await?;
        let forced = l.orphaned.clone();
        due.extend(forced.iter().cloned());
        due.sort();
        due.dedup();
        let b = blobs(tx, clock, &due, &forced).await?;
        let reviewed = m.reviewed + l.reviewed + b.reviewed;
        let removed = m.manifests.len() + l.links.len() + b.blobs.len();
        let more = m.more || l.more || removed > 0;
        all.absorb(m);
        all.absorb(l);
        all.absorb(b);
        if reviewed == 0 || !more {
            break;
        }
    }
    all.more = false;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn facts() -> Facts {
        Facts {
            present: true,
            ..Facts::default()
        }
    }

    #[test]
    fn untagged_unreferenced_is_garbage_and_anchors_keep() {
        assert_eq!(verdict(&facts(), 100 * DAY, 7 * DAY), Verdict::Garbage);
        let gone = Facts::default();
        assert_eq!(verdict(&gone, 0, 0), Verdict::Gone);
        let tagged = Facts {
            tagged: true,
            ..facts()
        };
        assert_eq!(verdict(&tagged, 0, 0), Verdict::Live);
        let child = Facts {
            child: true,
            ..facts()
        };
        assert_eq!(verdict(&child, 0, 0), Verdict::Live);
        let referrer = Facts {
            subject_present: true,
            ..facts()
        };
        assert_eq!(verdict(&referrer, 0, 0), Verdict::Live);
    }

    #[test]
    fn retention_window_keeps_until_it_ends() {
        let f = Facts {
            untagged_at: Some(10 * DAY),
            ..facts()
        };
        assert_eq!(verdict(&f, 12 * DAY, 7 * DAY), Verdict::Until(17 * DAY));
        assert_eq!(verdict(&f, 17 * DAY, 7 * DAY), Verdict::Garbage);
        assert_eq!(verdict(&f, 11 * DAY, 0), Verdict::Garbage, "retention off");
    }

    #[test]
    fn a_kept_referrer_below_keeps_its_subject() {
        let f = Facts {
            below: Some(Anchor::Held),
            ..facts()
        };
        assert_eq!(verdict(&f, 0, 0), Verdict::Live);
        let f = Facts {
            below: Some(Anchor::Until(5)),
            untagged_at: Some(0),
            ..facts()
        };
        assert_eq!(verdict(&f, 1, 3), Verdict::Until(5), "the later of the two");
        assert_eq!(
            stronger(Some(Anchor::Until(9)), Some(Anchor::Held)),
            Some(Anchor::Held)
        );
        assert_eq!(stronger(None, None), None);
    }
}
