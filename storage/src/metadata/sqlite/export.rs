//! Whole-registry reads for `registry migrate`: every blob link and tag,
//! and the manifests page by page (their content may be large).

use super::SqliteMeta;
use crate::error::Result;
use crate::metadata::sql;
use crate::metadata::ManifestRow;

impl SqliteMeta {
    /// Every `(repository, digest, size)` blob link, by repository.
    pub async fn blob_links(&self) -> Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(sql::BLOB_LINKS)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(r, d, s)| (r, d, s.max(0) as u64))
            .collect())
    }

    /// Every `(repository, tag, digest)`.
    pub async fn all_tags(&self) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(sql::ALL_TAGS)
            .fetch_all(&self.reader)
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
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(sql::MANIFEST_PAGE)
            .bind(repo)
            .bind(digest)
            .bind(limit)
            .fetch_all(&self.reader)
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
