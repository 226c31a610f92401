//! Garbage collection on SQLite: each step is one write transaction (the
//! single writer makes it atomic against every push), so a step may act on
//! every due row it reads. The steps themselves are `metadata::gc`'s, run
//! by `metadata::collection`.

use super::SqliteMeta;
use crate::metadata::gc::{self, GcTx, LinkRow, ManifestRow};
use sqlx::SqliteConnection;

type Sql<T> = std::result::Result<T, sqlx::Error>;

struct Tx<'a>(&'a mut SqliteConnection);

impl Tx<'_> {
    /// Rows of `facts` due at `cut`, at most `limit`, and whether there
    /// may be more.
    async fn due<R>(&mut self, facts: &str, cut: i64, limit: i64) -> Sql<(Vec<R>, bool)>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let rows: Vec<R> = sqlx::query_as(&format!("{facts}{}", gc::QUEUE_DUE))
            .bind(cut)
            .bind(limit)
            .fetch_all(&mut *self.0)
            .await?;
        let more = rows.len() as i64 == limit;
        Ok((rows, more))
    }
}

crate::metadata::gc::impl_gc_rows!(Tx);

#[async_trait::async_trait]
impl GcTx for Tx<'_> {
    async fn now_ms(&mut self) -> Sql<i64> {
        sqlx::query_scalar("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")
            .fetch_one(&mut *self.0)
            .await
    }

    async fn manifest_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<ManifestRow>, bool)> {
        self.due(gc::MANIFEST_FACTS, cut, limit).await
    }

    async fn link_facts(&mut self, cut: i64, limit: i64) -> Sql<(Vec<LinkRow>, bool)> {
        self.due(gc::LINK_FACTS, cut, limit).await
    }

    async fn lock_blobs(&mut self, _digests: &[String]) -> Sql<()> {
        Ok(())
    }
}

crate::metadata::collection::impl_collection!(SqliteMeta, Tx);
