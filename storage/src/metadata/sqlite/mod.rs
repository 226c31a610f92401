//! The metadata database on SQLite (the embedded default): repositories,
//! blob links, manifests, tags, upload sessions and accounts.
//!
//! SQLite commits one writer at a time: writes go through a small pool of
//! writer connections (multi-statement transactions take the lock up front
//! with BEGIN IMMEDIATE, single statements wait in busy_timeout) and reads
//! through a separate pool that WAL lets run alongside. Most concerns run
//! the SQL both databases share (`shared_concerns!`); here are only the
//! pushes' writes (`pushes.rs`), the in-process locks (`locks.rs`) and
//! what a collection step reads (`gc.rs`).

pub mod busy;
mod gc;
mod group;
mod locks;
mod pushes;

use crate::error::{Error, Result};
use crate::metadata::{now, MetaStore, RepoIds};
use group::Pending;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{SqlitePool, Transaction};
use std::path::Path;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteMeta {
    writer: SqlitePool,
    reader: SqlitePool,
    repo_ids: RepoIds,
    /// New upload sessions, written in groups ([`group::group_commit`]).
    new_uploads: tokio::sync::mpsc::UnboundedSender<Pending<(String, String)>>,
    upload_locks: crate::blobstore::LocalSessionLocks,
    fences: crate::blobstore::LocalFences,
}

impl SqliteMeta {
    /// Open (creating and migrating) the database at `path`; a write waits
    /// at most `busy_timeout` for another writer's lock.
    pub async fn open(path: &Path, busy_timeout: std::time::Duration) -> Result<SqliteMeta> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes; only an OS
            // crash can lose the last commits, never corrupt the database.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            // Checkpoint every 32 MiB of WAL instead of 4: a checkpoint
            // fsyncs twice and rewrites the hot pages, which small pushes
            // touch over and over.
            .pragma("wal_autocheckpoint", "8192")
            .foreign_keys(true);
        // Several writer connections: SQLite still commits one at a time,
        // but each connection has its own worker thread, so round trips
        // overlap instead of queueing. Multi-statement transactions take
        // the write lock up front (BEGIN IMMEDIATE) so none can fail on a
        // read-to-write upgrade; single statements wait in busy_timeout.
        let writer = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| Box::pin(busy::install(conn, busy_timeout)))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::internal(format!("database migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(true))
            .await?;
        let (new_uploads, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(group::group_commit(
            writer.clone(),
            rx,
            pushes::insert_uploads,
        ));
        Ok(SqliteMeta {
            writer,
            reader,
            repo_ids: RepoIds::default(),
            new_uploads,
            upload_locks: Default::default(),
            fences: Default::default(),
        })
    }

    // ---- what the shared bodies use (see `metadata`) -----------------------

    /// SQLite's `LIKE` already ignores ASCII case.
    const LIKE: &'static str = "LIKE";

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// A write transaction holding the write lock from its start, so that
    /// it never fails on a read-to-write upgrade.
    async fn begin(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Create repository `name` unless it exists; its id.
    async fn insert_repo(&self, name: &str) -> Result<i64> {
        sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_one(&self.writer)
                .await?,
        )
    }
}

crate::metadata::shared_concerns!(SqliteMeta);

#[async_trait::async_trait]
impl MetaStore for SqliteMeta {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
