//! Garbage collection on SQLite: each step is one write transaction (the
//! single writer makes it atomic against every push); a dry run runs them
//! all in one transaction and rolls it back. The steps themselves are
//! `metadata::gc`'s.

use super::SqliteMeta;
use crate::blobstore::SessionLock;
use crate::error::Result;
use crate::metadata::gc::{self, BelowRow, GcTx, LinkRow, ManifestRow};
use crate::metadata::{GcClock, GcStep};
use sqlx::SqliteConnection;

type Sql<T> = std::result::Result<T, sqlx::Error>;

struct Tx<'a>(&'a mut SqliteConnection);

#[async_trait::async_trait]
impl GcTx for Tx<'_> {
    async fn manifest_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<ManifestRow>, bool)> {
        let rows: Vec<ManifestRow> =
            sqlx::query_as(&format!("{}{}", gc::MANIFEST_FACTS, gc::QUEUE_DUE))
                .bind(cut)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?;
        let more = rows.len() as i64 == limit;
        Ok((rows, more))
    }

    async fn link_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<LinkRow>, bool)> {
        let rows: Vec<LinkRow> = sqlx::query_as(&format!("{}{}", gc::LINK_FACTS, gc::QUEUE_DUE))
            .bind(cut)
            .bind(limit)
            .fetch_all(&mut *self.0)
            .await?;
        let more = rows.len() as i64 == limit;
        Ok((rows, more))
    }

    async fn now_ms(&mut self) -> Sql<i64> {
        sqlx::query_scalar("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")
            .fetch_one(&mut *self.0)
            .await
    }

    async fn referrers_below(&mut self, repo_id: i64, digest: &str) -> Sql<Vec<BelowRow>> {
        sqlx::query_as(gc::REFERRERS_BELOW)
            .bind(repo_id)
            .bind(digest)
            .fetch_all(&mut *self.0)
            .await
    }

    async fn exec(&mut self, sql: &'static str, repo_id: i64, digest: &str, n: i64) -> Sql<u64> {
        Ok(sqlx::query(sql)
            .bind(repo_id)
            .bind(digest)
            .bind(n)
            .execute(&mut *self.0)
            .await?
            .rows_affected())
    }

    async fn blob_in_use(&mut self, digest: &str) -> Sql<bool> {
        sqlx::query_scalar(gc::BLOB_IN_USE)
            .bind(digest)
            .fetch_one(&mut *self.0)
            .await
    }

    async fn blob_row(&mut self, digest: &str) -> Sql<Option<(i64, Option<String>, Option<i64>)>> {
        sqlx::query_as(gc::BLOB_ROW)
            .bind(digest)
            .fetch_optional(&mut *self.0)
            .await
    }

    async fn delete_blob_rows(&mut self, digest: &str, blob_too: bool) -> Sql<()> {
        if blob_too {
            sqlx::query(gc::DELETE_BLOB)
                .bind(digest)
                .execute(&mut *self.0)
                .await?;
        }
        sqlx::query(gc::DROP_BLOB_ROW)
            .bind(digest)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn due_blobs(&mut self, cut: i64, limit: i64) -> Sql<Vec<String>> {
        sqlx::query_scalar(gc::BLOB_DUE)
            .bind(cut)
            .bind(limit)
            .fetch_all(&mut *self.0)
            .await
    }

    async fn lock_blobs(&mut self, _digests: &[String]) -> Sql<()> {
        Ok(())
    }
}

impl SqliteMeta {
    pub async fn gc_manifests(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let step = gc::manifests(&mut Tx(&mut tx), clock, limit).await?;
        tx.commit().await?;
        Ok(step)
    }

    pub async fn gc_links(&self, clock: GcClock, limit: i64) -> Result<GcStep> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let step = gc::links(&mut Tx(&mut tx), clock, limit).await?;
        tx.commit().await?;
        Ok(step)
    }

    pub async fn gc_due_blobs(&self, clock: GcClock, limit: i64) -> Result<Vec<String>> {
        let mut conn = self.reader.acquire().await?;
        let mut tx = Tx(&mut conn);
        let cut = clock.cut(tx.now_ms().await?);
        Ok(tx.due_blobs(cut, limit).await?)
    }

    pub async fn gc_blobs(
        &self,
        clock: GcClock,
        digests: &[String],
        forced: &[String],
    ) -> Result<GcStep> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let step = gc::blobs(&mut Tx(&mut tx), clock, digests, forced).await?;
        tx.commit().await?;
        Ok(step)
    }

    pub async fn gc_dry_run(&self, clock: GcClock) -> Result<GcStep> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let all = gc::dry_run(&mut Tx(&mut tx), clock).await?;
        tx.rollback().await?;
        Ok(all)
    }

    pub async fn enter_fence(&self, digest: &str) -> Result<SessionLock> {
        Ok(self.fences.enter(digest).await)
    }

    pub async fn take_fences(&self, digests: &[String]) -> Result<(Vec<String>, SessionLock)> {
        Ok(self.fences.try_take(digests))
    }

    pub async fn try_gc_lease(&self) -> Result<Option<SessionLock>> {
        Ok(self.upload_locks.try_lock("\0gc"))
    }
}
