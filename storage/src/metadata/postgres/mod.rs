//! The metadata database on PostgreSQL: what several stateless registry
//! nodes share. The same schema and, where the dialects agree, the same
//! SQL as SQLite (`shared_concerns!`). What differs lives here: the
//! pushes' writes (`pushes.rs`: one statement per query, multi-statement
//! writes are transactions, `= ANY($n)` arrays instead of long `IN`
//! lists), locks across nodes (`locks.rs`, `advisory.rs`, `lease.rs`),
//! what a collection step may act on (`gc.rs`: rows it could lock), the
//! feed of other nodes' changes (`watch.rs`), `COLLATE "C"` on cursored
//! names (in the schema) and `ILIKE` for the repository filter (SQLite's
//! `LIKE` ignores ASCII case). Writers are concurrent: a transaction that
//! loses a serialization race or a deadlock is retried
//! (`metadata::retrying`), never answered with a 500.

mod advisory;
mod gc;
mod lease;
mod locks;
mod pushes;
pub mod watch;

use crate::error::{Error, Result};
use crate::metadata::{now, Invalidation, MetaStore, RepoIds};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, Postgres};
use sqlx::{PgPool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct PgMeta {
    pool: PgPool,
    /// Connections that hold blob fences and the collection lease.
    fence_pool: PgPool,
    /// Upload leases this node holds (renewed together).
    leases: Arc<lease::Leases>,
    repo_ids: RepoIds,
}

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
            repo_ids: RepoIds::default(),
        })
    }

    // ---- what the shared bodies use (see `metadata`) -----------------------

    /// PostgreSQL's `LIKE` minds case.
    const LIKE: &'static str = "ILIKE";

    /// One pool serves reads and writes.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin().await
    }

    /// Create repository `name` unless it exists; its id.
    async fn insert_repo(&self, name: &str) -> Result<i64> {
        // Inserted or found in one statement, whoever wins a race. DO
        // UPDATE (a no-op) and not DO NOTHING: with DO NOTHING, a row
        // another transaction inserted meanwhile is returned by neither the
        // INSERT nor a SELECT on this statement's snapshot (seen as "no
        // rows" when two pushes created one repository at once).
        Ok(sqlx::query_scalar(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }
}

crate::metadata::shared_concerns!(PgMeta);

#[async_trait::async_trait]
impl MetaStore for PgMeta {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn watch(&self, on: Arc<dyn Fn(Invalidation) + Send + Sync>) -> bool {
        watch::listen(self.pool.clone(), on);
        true
    }
}
