//! The metadata database on PostgreSQL: what several stateless registry
//! nodes share. The same schema and, where the dialects agree, the same
//! SQL as SQLite; what differs: one statement per query (multi-statement
//! writes are transactions), `= ANY($n)` arrays instead of long `IN` lists,
//! `COLLATE "C"` on cursored names (in the schema), `ILIKE` for the
//! repository filter (SQLite's `LIKE` ignores ASCII case), sums cast back
//! to `BIGINT`, and concurrent writers: a transaction that loses a
//! serialization race or a deadlock is retried, never answered with a 500.

mod accounts;
mod check;
mod export;
mod fences;
mod gc;
mod history;
mod immutability;
mod inspect;
mod lease;
mod manifests;
mod store;
pub mod watch;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::metadata::now;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Transactions retried after a serialization failure or a deadlock.
const RETRIES: usize = 5;

#[derive(Clone)]
pub struct PgMeta {
    pool: PgPool,
    /// Connections that hold blob fences and the collection lease.
    fence_pool: PgPool,
    /// Upload leases this node holds (renewed together).
    leases: Arc<lease::Leases>,
    /// Repository name → id; ids never change for a name (see SQLite's).
    repo_ids: Arc<Mutex<HashMap<String, i64>>>,
}

/// Whether `e` is worth running the transaction again: a serialization
/// failure (40001) or a deadlock (40P01).
pub(super) fn retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40001") | Some("40P01")))
}

/// Run `op` (a whole transaction) again while it fails retryably.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            match $body.await {
                Err(e)
                    if attempt + 1 < crate::metadata::postgres::RETRIES
                        && crate::metadata::postgres::retryable(&e) =>
                {
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}
pub(super) use retrying;

impl PgMeta {
    /// Connect to `url` (`postgres://user:pass@host:port/db`) and migrate;
    /// a statement waits at most `busy_timeout` for locks.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<PgMeta> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("invalid PostgreSQL URL: {e}")))?
            .options([(
                "lock_timeout",
                format!("{}ms", busy_timeout.as_millis().max(1)),
            )]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A database that does not answer makes requests fail fast
            // (503), not hang.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await?;
        let fence_pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::internal(format!("database migration failed: {e}")))?;
        let leases = Arc::new(lease::Leases::default());
        lease::Leases::keep(pool.clone(), Arc::downgrade(&leases));
        Ok(PgMeta {
            pool,
            fence_pool,
            leases,
            repo_ids: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn cached_repo_id(&self, name: &str) -> Option<i64> {
        self.repo_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    fn remember_repo_id(&self, name: &str, id: i64) {
        self.repo_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), id);
    }

    async fn repo_id(&self, name: &str) -> Result<Option<i64>> {
        if let Some(id) = self.cached_repo_id(name) {
            return Ok(Some(id));
        }
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(id) = id {
            self.remember_repo_id(name, id);
        }
        Ok(id)
    }

    /// The id of `name`, creating the repository if needed.
    async fn ensure_repo(&self, name: &str) -> Result<i64> {
        if let Some(id) = self.repo_id(name).await? {
            return Ok(id);
        }
        // Inserted or found in one statement, whoever wins a race. DO
        // UPDATE (a no-op) and not DO NOTHING: with DO NOTHING, a row
        // another transaction inserted meanwhile is returned by neither the
        // INSERT nor a SELECT on this statement's snapshot (seen as "no
        // rows" when two pushes created one repository at once).
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        self.remember_repo_id(name, id);
        Ok(id)
    }

    pub async fn repo_exists(&self, name: &str) -> Result<bool> {
        Ok(self.repo_id(name).await?.is_some())
    }

    // ---- blobs -------------------------------------------------------------

    pub async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        let digest = digest.to_string();
        retrying!(async {
            let mut tx = self.pool.begin().await?;
            let now = now();
            sqlx::query(
                "INSERT INTO blobs (digest, size, created_at, location) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&digest)
            .bind(size as i64)
            .bind(now)
            .bind(location)
            .execute(&mut *tx)
            .await?;
            // DO UPDATE, not NOTHING: it waits for a collection that holds
            // the link, then links anew if that removed it.
            sqlx::query(
                "INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = repo_blobs.created_at",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Unreferenced until a manifest names it: the grace period of
            // collection starts now.
            sqlx::query(
                "INSERT INTO gc_link_queue (repo_id, digest, since)
                 VALUES ($1, $2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)
                 ON CONFLICT (repo_id, digest) DO UPDATE SET since = GREATEST(gc_link_queue.since, excluded.since)",
            )
            .bind(repo_id)
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
            if let Some(id) = upload {
                sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn linked_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, Option<String>)>> {
        let row: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT b.size, b.location FROM repo_blobs rb
             JOIN repositories r ON r.id = rb.repo_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo)
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(s, l)| (s as u64, l)))
    }

    pub async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.delete_in_repo("repo_blobs", "digest", &digest.to_string(), repo)
            .await
    }

    /// Delete the row of `table` (a per-repository table; names are ours,
    /// never input) whose `column` is `value`; true if there was one.
    async fn delete_in_repo(
        &self,
        table: &str,
        column: &str,
        value: &str,
        repo: &str,
    ) -> Result<bool> {
        let sql = format!(
            "DELETE FROM {table} WHERE {column} = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)"
        );
        let done = sqlx::query(&sql)
            .bind(value)
            .bind(repo)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- uploads -----------------------------------------------------------

    pub async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO uploads (id, repo, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(repo)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM uploads WHERE id = $1 AND repo = $2")
                .bind(id)
                .bind(repo)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    pub async fn touch_upload(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE uploads SET updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, version FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET state = $3, version = version + 1, updated_at = $4
             WHERE id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .bind(state)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, repo FROM uploads WHERE $1::BIGINT IS NULL OR updated_at < $1",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }
}

crate::metadata::lifecycle::lifecycle_methods!(PgMeta, pool, pool);
