//! The metadata database on SQLite (the embedded default): repositories,
//! blob links, manifests, tags, upload sessions and accounts.
//!
//! SQLite commits one writer at a time: writes go through a small pool of
//! writer connections (multi-statement transactions take the lock up front
//! with BEGIN IMMEDIATE, single statements wait in busy_timeout) and reads
//! through a separate pool that WAL lets run alongside.

mod accounts;
pub mod busy;
mod check;
mod export;
mod gc;
mod group;
mod history;
mod immutability;
mod inspect;
mod manifests;
mod store;

use super::now;
use crate::digest::Digest;
use crate::error::{Error, Result};
use group::{group_commit, grouped, Pending};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteMeta {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Repository name → id, filled only with committed rows. Repositories
    /// are never deleted, so an entry never goes stale; it saves every
    /// push a lookup on the single writer connection.
    repo_ids: Arc<Mutex<HashMap<String, i64>>>,
    /// New upload sessions, written in groups ([`group_commit`]).
    new_uploads: tokio::sync::mpsc::UnboundedSender<Pending<(String, String)>>,
    upload_locks: crate::blobstore::LocalSessionLocks,
    fences: crate::blobstore::LocalFences,
}

/// `(id, repository)` of new upload sessions.
async fn insert_uploads(
    writer: SqlitePool,
    rows: Vec<(String, String)>,
) -> std::result::Result<(), sqlx::Error> {
    let values: Vec<String> = (0..rows.len())
        .map(|i| format!("(${}, ${}, $1, $1)", 2 * i + 2, 2 * i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO uploads (id, repo, created_at, updated_at) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(now());
    for (id, repo) in rows {
        q = q.bind(id).bind(repo);
    }
    q.execute(&writer).await.map(|_| ())
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
        tokio::spawn(group_commit(writer.clone(), rx, insert_uploads));
        Ok(SqliteMeta {
            writer,
            reader,
            repo_ids: Arc::default(),
            new_uploads,
            upload_locks: Default::default(),
            fences: Default::default(),
        })
    }

    /// Cheap liveness probe of the database.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
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
            .fetch_optional(&self.reader)
            .await?;
        if let Some(id) = id {
            self.remember_repo_id(name, id);
        }
        Ok(id)
    }

    /// The id of `name`, creating the repository if needed (in a commit of
    /// its own, so the id is real once returned).
    async fn ensure_repo(&self, name: &str) -> Result<i64> {
        if let Some(id) = self.repo_id(name).await? {
            return Ok(id);
        }
        sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now())
        .execute(&self.writer)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?;
        self.remember_repo_id(name, id);
        Ok(id)
    }

    pub async fn repo_exists(&self, name: &str) -> Result<bool> {
        Ok(self.repo_id(name).await?.is_some())
    }

    // ---- blobs -------------------------------------------------------------

    /// Record a committed blob, link it into `repo` (creating the repo) and
    /// end upload session `upload`, in one round trip to the writer. Should
    /// a later statement fail, a `blobs` row without a link is harmless
    /// (nothing can read it) and a leftover session is purged.
    pub async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, location) VALUES ($1, $2, $3, $6)
               ON CONFLICT (digest) DO NOTHING;
             INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($4, $1, $3)
               ON CONFLICT (repo_id, digest) DO NOTHING;
             INSERT INTO gc_link_queue (repo_id, digest, since)
               VALUES ($4, $1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
               ON CONFLICT (repo_id, digest) DO UPDATE SET since = MAX(since, excluded.since);
             DELETE FROM uploads WHERE id = $5;",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(now())
        .bind(repo_id)
        .bind(upload)
        .bind(location)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Size and location of a blob if it is linked in `repo`.
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
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(s, l)| (s as u64, l)))
    }

    /// Repositories a blob is linked in, in name order (at most `limit`).
    pub async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Remove the link of a blob from a repository; the bytes stay for any
    /// other repository (garbage collection reclaims unreferenced ones).
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
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- uploads -----------------------------------------------------------

    /// Record a new upload session; returns once its row is committed.
    pub async fn create_upload(&self, id: &str, repo: &str) -> Result<()> {
        grouped(&self.new_uploads, (id.to_owned(), repo.to_owned())).await
    }

    /// True when upload `id` exists and belongs to `repo`.
    pub async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM uploads WHERE id = $1 AND repo = $2")
                .bind(id)
                .bind(repo)
                .fetch_optional(&self.reader)
                .await?;
        Ok(found.is_some())
    }

    pub async fn touch_upload(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE uploads SET updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The saved state of upload `id` and its version, if the session exists.
    pub async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, version FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    /// Save the state of upload `id` if it is still at `version` (no other
    /// request changed it meanwhile); false if it was.
    pub async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET state = $3, version = version + 1, updated_at = $4
             WHERE id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .bind(state)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One node serves an embedded database: the lock is in this process.
    pub async fn try_lock_upload(&self, id: &str) -> Result<Option<crate::blobstore::SessionLock>> {
        Ok(self.upload_locks.try_lock(id))
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `(id, repository)` of the sessions not touched since `before` (unix
    /// seconds), or of all sessions.
    pub async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT id, repo FROM uploads WHERE $1 IS NULL OR updated_at < $1")
                .bind(before)
                .fetch_all(&self.reader)
                .await?,
        )
    }
}

crate::metadata::lifecycle::lifecycle_methods!(SqliteMeta, reader, writer);
