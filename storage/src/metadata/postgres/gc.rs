//! Garbage collection on PostgreSQL, where several nodes push while one
//! collects. Each step locks what it may remove (`FOR UPDATE SKIP LOCKED`:
//! a row a push holds is left for the next run, never waited for) and only
//! then reads the facts it decides on, in a new statement that sees every
//! push committed before the lock: a manifest write holds its children and
//! blob links `FOR SHARE` and its tag's manifest by foreign key, so it
//! either committed before the lock (and is seen) or waits for the
//! collection and then finds what it names gone (and fails cleanly). The
//! steps themselves are `metadata::gc`'s, run by `metadata::collection`.

use super::PgMeta;
use crate::metadata::gc::{self, GcTx, LinkRow, ManifestRow};
use sqlx::PgConnection;
use std::collections::HashSet;

type Sql<T> = std::result::Result<T, sqlx::Error>;

const KEYS: &str =
    " WHERE (q.repo_id, q.digest) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))";

struct Tx<'a>(&'a mut PgConnection);

/// Where a step reads its facts: the queue, the table whose rows it may
/// remove, and the facts of queued rows.
struct Source {
    queue: &'static str,
    table: &'static str,
    facts: &'static str,
}

impl Tx<'_> {
    /// The facts of the rows of `from.queue` due at `cut` (at most `limit`)
    /// that this step may act on: those whose `from.table` row this
    /// transaction now holds, and those without one (`stored` gives the
    /// key of a row that has one); and whether there may be more.
    async fn due_facts<R>(
        &mut self,
        from: Source,
        cut: i64,
        limit: i64,
        stored: fn(&R) -> Option<(i64, String)>,
    ) -> Sql<(Vec<R>, bool)>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let Source {
            queue,
            table,
            facts,
        } = from;
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT repo_id, digest FROM {queue} WHERE since <= $1 ORDER BY since, repo_id, digest LIMIT $2"
        ))
        .bind(cut)
        .bind(limit)
        .fetch_all(&mut *self.0)
        .await?;
        let more = rows.len() as i64 == limit;
        let (ids, digests): (Vec<i64>, Vec<String>) = rows.into_iter().unzip();
        let locked: HashSet<(i64, String)> = sqlx::query_as(&format!(
            "SELECT repo_id, digest FROM {table}
             WHERE (repo_id, digest) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
             FOR UPDATE SKIP LOCKED"
        ))
        .bind(&ids)
        .bind(&digests)
        .fetch_all(&mut *self.0)
        .await?
        .into_iter()
        .collect();
        // Read after the lock: sees every push committed before it.
        let rows: Vec<R> = sqlx::query_as(&format!("{facts}{KEYS}"))
            .bind(&ids)
            .bind(&digests)
            .fetch_all(&mut *self.0)
            .await?;
        // A stored row a push holds waits for the next run.
        let rows = rows
            .into_iter()
            .filter(|r| stored(r).is_none_or(|key| locked.contains(&key)))
            .collect();
        Ok((rows, more))
    }
}

crate::metadata::gc::impl_gc_rows!(Tx);

#[async_trait::async_trait]
impl GcTx for Tx<'_> {
    async fn manifest_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<ManifestRow>, bool)> {
        let from = Source {
            queue: "gc_manifest_queue",
            table: "manifests",
            facts: gc::MANIFEST_FACTS,
        };
        // A manifest is stored where it has a size.
        let stored = |r: &ManifestRow| r.4.map(|_| (r.0, r.1.clone()));
        self.due_facts(from, cut, limit, stored).await
    }

    async fn link_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<LinkRow>, bool)> {
        let from = Source {
            queue: "gc_link_queue",
            table: "repo_blobs",
            facts: gc::LINK_FACTS,
        };
        let stored = |r: &LinkRow| r.4.then(|| (r.0, r.1.clone()));
        self.due_facts(from, cut, limit, stored).await
    }

    async fn now_ms(&mut self) -> Sql<i64> {
        sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT")
            .fetch_one(&mut *self.0)
            .await
    }

    async fn lock_blobs(&mut self, digests: &[String]) -> Sql<()> {
        // The caller holds the fences, so no link can appear; the row lock
        // orders this against anything else touching the rows.
        sqlx::query("SELECT digest FROM blobs WHERE digest = ANY($1) ORDER BY digest FOR UPDATE")
            .bind(digests)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

crate::metadata::collection::impl_collection!(PgMeta, Tx);
