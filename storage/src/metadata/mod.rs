//! The metadata database: repositories, blob links, manifests, tags and
//! upload sessions. All SQL of the registry lives in this module.
//!
//! SQLite commits one writer at a time: writes go through a small pool of
//! writer connections (multi-statement transactions take the lock up front
//! with BEGIN IMMEDIATE, single statements wait in busy_timeout) and reads
//! through a separate pool that WAL lets run alongside.

mod busy;
mod group;
mod inspect;

pub use inspect::{BlobUse, RepoSummary, TagRow};

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::ParsedManifest;
use group::{group_commit, grouped, Pending};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Metadata {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Repository name → id, filled only with committed rows. Repositories
    /// are never deleted, so an entry never goes stale; it saves every
    /// push a lookup on the single writer connection.
    repo_ids: Arc<Mutex<HashMap<String, i64>>>,
    /// New upload sessions, written in groups ([`group_commit`]).
    new_uploads: tokio::sync::mpsc::UnboundedSender<Pending<(String, String)>>,
}

/// A manifest as stored: its exact bytes and the type it was pushed with.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A manifest whose `subject` is some digest (referrers API).
#[derive(Debug, Clone)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

impl Metadata {
    pub async fn open(path: &Path) -> Result<Metadata> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes; only an OS
            // crash can lose the last commits, never corrupt the database.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy::BUDGET)
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
            .after_connect(|conn, _| Box::pin(busy::install(conn)))
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
        Ok(Metadata {
            writer,
            reader,
            repo_ids: Arc::default(),
            new_uploads,
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
        upload: Option<&str>,
    ) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)
               ON CONFLICT (digest) DO NOTHING;
             INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($4, $1, $3)
               ON CONFLICT (repo_id, digest) DO NOTHING;
             DELETE FROM uploads WHERE id = $5;",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(now())
        .bind(repo_id)
        .bind(upload)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Size of a blob if it is linked in `repo`.
    pub async fn linked_blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repo_blobs rb
             JOIN repositories r ON r.id = rb.repo_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo)
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await?;
        Ok(size.map(|s| s as u64))
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

    // ---- manifests and tags ------------------------------------------------

    /// Store a manifest (and point `tag` at it) after checking that all it
    /// references exists in the repository. One transaction: a tag never
    /// points at a manifest that is not there.
    pub async fn put_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        parsed: &ParsedManifest,
        content: &[u8],
        tag: Option<&str>,
    ) -> Result<()> {
        let missing_blob = |d: &Digest| {
            Error::new(
                ErrorCode::ManifestBlobUnknown,
                "manifest references a blob unknown to this repository",
            )
            .with_detail(serde_json::json!({ "digest": d.to_string() }))
        };
        let missing_child = |d: &Digest| {
            Error::new(
                ErrorCode::ManifestBlobUnknown,
                "index references a manifest unknown to this repository",
            )
            .with_detail(serde_json::json!({ "digest": d.to_string() }))
        };
        // A repository without rows cannot hold what the manifest names:
        // fail before creating it.
        let repo_id = match self.repo_id(repo).await? {
            Some(id) => id,
            None => match (parsed.blobs.first(), parsed.children.first()) {
                (Some(b), _) => return Err(missing_blob(b)),
                (None, Some(c)) => return Err(missing_child(c)),
                (None, None) => self.ensure_repo(repo).await?,
            },
        };
        let now = now();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let present =
            |table| format!("SELECT digest FROM {table} WHERE repo_id = $1 AND digest IN");
        if let Some(d) =
            first_missing(&mut tx, &present("repo_blobs"), repo_id, &parsed.blobs).await?
        {
            return Err(missing_blob(&d));
        }
        if let Some(d) =
            first_missing(&mut tx, &present("manifests"), repo_id, &parsed.children).await?
        {
            return Err(missing_child(&d));
        }
        // One round trip for the manifest, its references and its tag: the
        // single writer connection is the bottleneck of small pushes.
        // $1 repository, $2 digest, $9 now; references from $10 on.
        let refs: Vec<(&str, &Digest)> = parsed
            .blobs
            .iter()
            .map(|d| ("blob", d))
            .chain(parsed.children.iter().map(|d| ("manifest", d)))
            .collect();
        let (first, rest) = refs.split_at(refs.len().min(BATCH));
        let mut sql = String::from(
            "INSERT INTO manifests
               (repo_id, digest, media_type, artifact_type, subject, annotations, size, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repo_id, digest) DO NOTHING;",
        );
        let mut next = 10;
        if !first.is_empty() {
            sql.push_str(&refs_insert(&mut next, first.len()));
        }
        if tag.is_some() {
            sql.push_str(&format!(
                "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, ${next}, $2, $9)
                 ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at;"
            ));
        }
        let mut q = sqlx::query(&sql)
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(&parsed.media_type)
            .bind(&parsed.artifact_type)
            .bind(parsed.subject.as_ref().map(|s| s.to_string()))
            .bind(parsed.annotations.as_ref().map(|a| a.to_string()))
            .bind(content.len() as i64)
            .bind(content)
            .bind(now);
        for (i, (kind, reference)) in first.iter().enumerate() {
            q = q.bind(i as i64).bind(*kind).bind(reference.to_string());
        }
        if let Some(tag) = tag {
            q = q.bind(tag);
        }
        q.execute(&mut *tx).await?;
        // Manifests with more references than one batch: the rest.
        for (n, batch) in rest.chunks(BATCH).enumerate() {
            let mut next = 3;
            let sql = refs_insert(&mut next, batch.len());
            let mut q = sqlx::query(&sql).bind(repo_id).bind(digest.to_string());
            for (i, (kind, reference)) in batch.iter().enumerate() {
                let position = BATCH * (n + 1) + i;
                q = q
                    .bind(position as i64)
                    .bind(*kind)
                    .bind(reference.to_string());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.media_type, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repo)
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| StoredManifest {
            digest: digest.clone(),
            media_type: r.get(0),
            content: r.get(1),
        }))
    }

    pub async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(StoredManifest {
                digest: r.get::<String, _>(0).parse()?,
                media_type: r.get(1),
                content: r.get(2),
            })
        })
        .transpose()
    }

    /// Delete a manifest; its tags and reference rows go with it.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.delete_in_repo("manifests", "digest", &digest.to_string(), repo)
            .await
    }

    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        self.delete_in_repo("tags", "name", tag, repo).await
    }

    /// Tags of `repo` in byte order after `last`, at most `limit`; `None` if
    /// the repository does not exist.
    pub async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(tags))
    }

    /// Repository names in byte order after `last`, at most `limit`.
    pub async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
             FROM manifests m JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repo)
        .bind(subject.to_string())
        .bind(artifact_type)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                let annotations: Option<String> = r.get(4);
                Ok(Referrer {
                    digest: r.get(0),
                    media_type: r.get(1),
                    size: r.get(2),
                    artifact_type: r.get(3),
                    annotations: annotations
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(Error::internal)?,
                })
            })
            .collect()
    }
}

/// Rows per multi-row statement: far below SQLite's bound-parameter limit.
const BATCH: usize = 300;

/// The first of `wanted` that `select` (a query ending in `IN`, taking the
/// repository id as `$1`) does not return; one statement per batch instead
/// of one per digest.
async fn first_missing(
    tx: &mut sqlx::SqliteConnection,
    select: &str,
    repo_id: i64,
    wanted: &[Digest],
) -> Result<Option<Digest>> {
    for batch in wanted.chunks(BATCH) {
        let params: Vec<String> = (2..batch.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!("{select} ({})", params.join(", "));
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(repo_id);
        for d in batch {
            q = q.bind(d.to_string());
        }
        let found: std::collections::HashSet<String> =
            q.fetch_all(&mut *tx).await?.into_iter().collect();
        if let Some(d) = batch.iter().find(|d| !found.contains(&d.to_string())) {
            return Ok(Some(d.clone()));
        }
    }
    Ok(None)
}

/// `INSERT` of `rows` manifest references; `$1`/`$2` are the repository and
/// manifest, each row takes the next three parameters from `*next`. A
/// re-pushed manifest already has its rows: conflicts are no-ops.
fn refs_insert(next: &mut usize, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|_| {
            let row = format!("($1, $2, ${}, ${}, ${})", *next, *next + 1, *next + 2);
            *next += 3;
            row
        })
        .collect();
    format!(
        "INSERT INTO manifest_refs (repo_id, manifest_digest, position, kind, ref_digest) VALUES {}
         ON CONFLICT DO NOTHING;",
        values.join(", ")
    )
}
