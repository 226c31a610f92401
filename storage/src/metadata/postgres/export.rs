//! Whole-registry reads for `registry migrate`: every blob link and tag,
//! and the manifests page by page (their content may be large).

use super::PgMeta;
use crate::error::Result;
use crate::metadata::ManifestRow;

impl PgMeta {
    /// Every `(repository, digest, size)` blob link, by repository.
    pub async fn blob_links(&self) -> Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT r.name, rb.digest, b.size FROM repo_blobs rb
             JOIN repositories r ON r.id = rb.repo_id
             JOIN blobs b ON b.digest = rb.digest
             ORDER BY r.name, rb.digest",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(r, d, s)| (r, d, s.max(0) as u64))
            .collect())
    }

    /// Every `(repository, tag, digest)`.
    pub async fn all_tags(&self) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT r.name, t.name, t.digest FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             ORDER BY r.name, t.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Up to `limit` manifests after `(repository, digest)` `after`, in
    /// that order.
    pub async fn manifest_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ManifestRow>> {
        let (repo, digest) = after.unwrap_or(("", ""));
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT r.name, m.digest, m.media_type, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id
             WHERE (r.name, m.digest) > ($1, $2)
             ORDER BY r.name, m.digest LIMIT $3",
        )
        .bind(repo)
        .bind(digest)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(repo, digest, media_type, content)| ManifestRow {
                repo,
                digest,
                media_type,
                content,
            })
            .collect())
    }
}
