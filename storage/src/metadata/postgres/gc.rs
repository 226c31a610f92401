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

impl Tx<'_> {
    /// Due `(repo id, digest)` of `queue` (at most `limit`), and of them
    /// those whose `table` row this transaction now holds.
    async fn due_locked(
        &mut self,
        queue: &str,
        table: &str,
        cut: i64,
        limit: i64,
    ) -> Sql<(Vec<i64>, Vec<String>, HashSet<(i64, String)>)> {
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT repo_id, digest FROM {queue} WHERE since <= $1 ORDER BY since, repo_id, digest LIMIT $2"
        ))
        .bind(cut)
        .bind(limit)
        .fetch_all(&mut *self.0)
        .await?;
        let (ids, digests): (Vec<i64>, Vec<String>) = rows.into_iter().unzip();
        let locked = sqlx::query_as(&format!(
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
        Ok((ids, digests, locked))
    }
}

crate::metadata::gc::impl_gc_rows!(Tx);

#[async_trait::async_trait]
impl GcTx for Tx<'_> {
    async fn manifest_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<ManifestRow>, bool)> {
        let (ids, digests, locked) = self
            .due_locked("gc_manifest_queue", "manifests", cut, limit)
            .await?;
        let more = ids.len() as i64 == limit;
        let rows: Vec<ManifestRow> = sqlx::query_as(&format!("{}{KEYS}", gc::MANIFEST_FACTS))
            .bind(&ids)
            .bind(&digests)
            .fetch_all(&mut *self.0)
            .await?;
        // A stored manifest a push holds waits for the next run.
        let rows = rows
            .into_iter()
            .filter(|r| r.4.is_none() || locked.contains(&(r.0, r.1.clone())))
            .collect();
        Ok((rows, more))
    }

    async fn link_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<LinkRow>, bool)> {
        let (ids, digests, locked) = self
            .due_locked("gc_link_queue", "repo_blobs", cut, limit)
            .await?;
        let more = ids.len() as i64 == limit;
        let rows: Vec<LinkRow> = sqlx::query_as(&format!("{}{KEYS}", gc::LINK_FACTS))
            .bind(&ids)
            .bind(&digests)
            .fetch_all(&mut *self.0)
            .await?;
        let rows = rows
            .into_iter()
            .filter(|r| !r.4 || locked.contains(&(r.0, r.1.clone())))
            .collect();
        Ok((rows, more))
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
