//! Read-only queries behind the web view and `/api/v1`, on PostgreSQL.

use super::PgMeta;
use crate::error::Result;
use crate::metadata::{BlobUse, RepoSummary, TagRow};
use sqlx::Row;

/// `LIKE` pattern matching `needle` anywhere, with wildcards escaped.
fn contains_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl PgMeta {
    pub async fn repo_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepoSummary>> {
        let rows = sqlx::query(
            "SELECT r.name,
               (SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id),
               (SELECT COALESCE(SUM(b.size), 0)::BIGINT FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repo_id = r.id),
               (SELECT MAX(t.updated_at) FROM tags t WHERE t.repo_id = r.id)
             FROM repositories r
             WHERE r.name > $1 AND ($2::TEXT IS NULL OR r.name ILIKE $2 ESCAPE '\\')
             ORDER BY r.name LIMIT $3",
        )
        .bind(last.unwrap_or(""))
        .bind(filter.map(contains_pattern))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RepoSummary {
                name: r.get(0),
                tag_count: r.get(1),
                size: r.get(2),
                last_push: r.get(3),
            })
            .collect())
    }

    /// Tags of `repo` after `last`, with their manifests; `None` if the
    /// repository does not exist.
    pub async fn tag_rows(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<TagRow>>> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT t.name, t.digest, m.media_type, t.updated_at, m.content,
               (SELECT COALESCE(SUM(b.size), 0)::BIGINT FROM manifest_refs mr JOIN blobs b ON b.digest = mr.ref_digest
                 WHERE mr.repo_id = t.repo_id AND mr.kind = 'blob'
                   AND (mr.manifest_digest = t.digest OR mr.manifest_digest IN
                     (SELECT c.ref_digest FROM manifest_refs c
                       WHERE c.repo_id = t.repo_id AND c.manifest_digest = t.digest AND c.kind = 'manifest')))
             FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
             WHERE t.repo_id = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|r| TagRow {
                    tag: r.get(0),
                    digest: r.get(1),
                    media_type: r.get(2),
                    pushed: r.get(3),
                    content: r.get(4),
                    size: r.get(5),
                })
                .collect(),
        ))
    }

    /// Every manifest in the registry that references one of `blobs`.
    pub async fn blob_uses(&self, blobs: &[String]) -> Result<Vec<BlobUse>> {
        if blobs.is_empty() {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT DISTINCT mr.ref_digest, r.name, mr.manifest_digest, COALESCE(t.name, pt.name)
             FROM manifest_refs mr
             JOIN repositories r ON r.id = mr.repo_id
             LEFT JOIN tags t ON t.repo_id = mr.repo_id AND t.digest = mr.manifest_digest
             LEFT JOIN manifest_refs p ON p.repo_id = mr.repo_id AND p.kind = 'manifest'
               AND p.ref_digest = mr.manifest_digest
             LEFT JOIN tags pt ON pt.repo_id = p.repo_id AND pt.digest = p.manifest_digest
             WHERE mr.kind = 'blob' AND mr.ref_digest = ANY($1)
             ORDER BY r.name, mr.manifest_digest",
        )
        .bind(blobs);
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| BlobUse {
                blob: r.get(0),
                repository: r.get(1),
                manifest: r.get(2),
                tag: r.get(3),
            })
            .collect())
    }

    /// Size and location of a blob if the registry has it.
    pub async fn blob_any(&self, digest: &str) -> Result<Option<(i64, Option<String>)>> {
        Ok(
            sqlx::query_as("SELECT size, location FROM blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
