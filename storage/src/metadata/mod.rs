//! The metadata database: repositories, blob links, manifests, tags and
//! upload sessions. All SQL of the registry lives in this module.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one
//! connection (no SQLITE_BUSY between our own writers) and reads through a
//! separate pool that WAL lets run alongside.

mod inspect;

pub use inspect::{BlobUse, RepoSummary, TagRow};

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::ParsedManifest;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Metadata {
    writer: SqlitePool,
    reader: SqlitePool,
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

impl Metadata {
    pub async fn open(path: &Path) -> Result<Metadata> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes; only an OS
            // crash can lose the last commits, never corrupt the database.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
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
        Ok(Metadata { writer, reader })
    }

    /// Cheap liveness probe of the database.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn repo_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    pub async fn repo_exists(&self, name: &str) -> Result<bool> {
        Ok(self.repo_id(name).await?.is_some())
    }

    // ---- blobs -------------------------------------------------------------

    /// Record a committed blob and link it into `repo` (creating the repo).
    pub async fn link_blob(&self, repo: &str, digest: &Digest, size: u64) -> Result<()> {
        self.link_blob_finishing_upload(repo, digest, size, None)
            .await
    }

    /// [`Metadata::link_blob`], also ending upload session `upload` in the
    /// same transaction (one write instead of two per pushed blob).
    pub async fn link_blob_finishing_upload(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        upload: Option<&str>,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.writer.begin().await?;
        if let Some(id) = upload {
            sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let done = sqlx::query(
            "DELETE FROM repo_blobs WHERE digest = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.to_string())
        .bind(repo)
        .execute(&self.writer)
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
        .execute(&self.writer)
        .await?;
        Ok(())
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

    /// Upload sessions not touched since `before` (unix seconds).
    pub async fn stale_uploads(&self, before: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < $1")
                .bind(before)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    pub async fn all_upload_ids(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM uploads")
            .fetch_all(&self.reader)
            .await?)
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
        let now = now();
        let mut tx = self.writer.begin().await?;
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        for blob in &parsed.blobs {
            let linked: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(blob.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if linked.is_none() {
                return Err(Error::new(
                    ErrorCode::ManifestBlobUnknown,
                    "manifest references a blob unknown to this repository",
                )
                .with_detail(serde_json::json!({ "digest": blob.to_string() })));
            }
        }
        for child in &parsed.children {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(child.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(Error::new(
                    ErrorCode::ManifestBlobUnknown,
                    "index references a manifest unknown to this repository",
                )
                .with_detail(serde_json::json!({ "digest": child.to_string() })));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO manifests
               (repo_id, digest, media_type, artifact_type, subject, annotations, size, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(&parsed.media_type)
        .bind(&parsed.artifact_type)
        .bind(parsed.subject.as_ref().map(|s| s.to_string()))
        .bind(parsed.annotations.as_ref().map(|a| a.to_string()))
        .bind(content.len() as i64)
        .bind(content)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() > 0 {
            let refs = parsed
                .blobs
                .iter()
                .map(|d| ("blob", d))
                .chain(parsed.children.iter().map(|d| ("manifest", d)));
            for (position, (kind, reference)) in refs.enumerate() {
                sqlx::query(
                    "INSERT INTO manifest_refs (repo_id, manifest_digest, position, kind, ref_digest)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(repo_id)
                .bind(digest.to_string())
                .bind(position as i64)
                .bind(kind)
                .bind(reference.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            )
            .bind(repo_id)
            .bind(tag)
            .bind(digest.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
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
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.to_string())
        .bind(repo)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(tag)
        .bind(repo)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
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

async fn ensure_repo(tx: &mut sqlx::SqliteConnection, name: &str, now: i64) -> Result<i64> {
    sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?,
    )
}
