//! Whole-registry reads for `registry check` (every row that claims
//! something about the blob store or about other rows, and the repair of a
//! lost blob) and `registry migrate` (every blob link and tag, and the
//! manifests page by page: their content may be large). The same SQL on
//! both databases: one body, [`impl_audit`].

use super::{DanglingRef, ManifestRow};
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Audit: Send + Sync {
    /// Every `(digest, size, location)` the database holds as a committed blob.
    async fn blob_rows(&self) -> Result<Vec<(String, u64, Option<String>)>>;
    /// References of manifests to blobs not linked in their repository, or
    /// to child manifests not in it.
    async fn dangling_refs(&self) -> Result<Vec<DanglingRef>>;
    /// Call `each(repo, digest, content)` for every stored manifest, one row
    /// in memory at a time.
    async fn each_manifest(
        &self,
        each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
    ) -> Result<u64>;
    /// Forget a blob whose bytes are gone or corrupt: its links (clients
    /// then push it again) and its row. Returns the repositories that had it.
    async fn drop_blob(&self, digest: &str) -> Result<Vec<String>>;
    /// Every `(repository, digest, size)` blob link, by repository.
    async fn blob_links(&self) -> Result<Vec<(String, String, u64)>>;
    /// Every `(repository, tag, digest)`.
    async fn all_tags(&self) -> Result<Vec<(String, String, String)>>;
    /// Up to `limit` manifests after `(repository, digest)` `after`, in
    /// that order.
    async fn manifest_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ManifestRow>>;
}

/// [`Audit`] for a dialect.
macro_rules! impl_audit {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Audit for $ty {
            async fn blob_rows(&self) -> $crate::error::Result<Vec<(String, u64, Option<String>)>> {
                let rows: Vec<(String, i64, Option<String>)> =
                    sqlx::query_as("SELECT digest, size, location FROM blobs")
                        .fetch_all(self.reader())
                        .await?;
                Ok(rows.into_iter().map(|(d, s, l)| (d, s as u64, l)).collect())
            }

            async fn dangling_refs(
                &self,
            ) -> $crate::error::Result<Vec<$crate::metadata::DanglingRef>> {
                let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT r.name, mr.manifest_digest, mr.kind, mr.ref_digest
                     FROM manifest_refs mr JOIN repositories r ON r.id = mr.repo_id
                     WHERE (mr.kind = 'blob' AND NOT EXISTS (
                              SELECT 1 FROM repo_blobs rb
                              WHERE rb.repo_id = mr.repo_id AND rb.digest = mr.ref_digest))
                        OR (mr.kind = 'manifest' AND NOT EXISTS (
                              SELECT 1 FROM manifests m
                              WHERE m.repo_id = mr.repo_id AND m.digest = mr.ref_digest))
                     ORDER BY r.name, mr.manifest_digest, mr.position",
                )
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(repo, manifest, kind, digest)| $crate::metadata::DanglingRef {
                            repo,
                            manifest,
                            kind,
                            digest,
                        },
                    )
                    .collect())
            }

            async fn each_manifest(
                &self,
                each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
            ) -> $crate::error::Result<u64> {
                use futures::TryStreamExt;
                let mut rows = sqlx::query_as::<_, (String, String, Vec<u8>)>(
                    "SELECT r.name, m.digest, m.content FROM manifests m
                     JOIN repositories r ON r.id = m.repo_id",
                )
                .fetch(self.reader());
                let mut n = 0;
                while let Some((repo, digest, content)) = rows.try_next().await? {
                    each(repo, digest, content);
                    n += 1;
                }
                Ok(n)
            }

            async fn drop_blob(&self, digest: &str) -> $crate::error::Result<Vec<String>> {
                Ok($crate::metadata::retrying!(async {
                    let mut tx = self.begin().await?;
                    let repos: Vec<String> = sqlx::query_scalar(
                        "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
                         WHERE rb.digest = $1 ORDER BY r.name",
                    )
                    .bind(digest)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM repo_blobs WHERE digest = $1")
                        .bind(digest)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM blobs WHERE digest = $1")
                        .bind(digest)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(repos)
                })?)
            }

            async fn blob_links(&self) -> $crate::error::Result<Vec<(String, String, u64)>> {
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as($crate::metadata::sql::BLOB_LINKS)
                        .fetch_all(self.reader())
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(r, d, s)| (r, d, s.max(0) as u64))
                    .collect())
            }

            async fn all_tags(&self) -> $crate::error::Result<Vec<(String, String, String)>> {
                Ok(sqlx::query_as($crate::metadata::sql::ALL_TAGS)
                    .fetch_all(self.reader())
                    .await?)
            }

            async fn manifest_page(
                &self,
                after: Option<(&str, &str)>,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::metadata::ManifestRow>> {
                let (repo, digest) = after.unwrap_or(("", ""));
                let rows: Vec<(String, String, String, Vec<u8>)> =
                    sqlx::query_as($crate::metadata::sql::MANIFEST_PAGE)
                        .bind(repo)
                        .bind(digest)
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(repo, digest, media_type, content)| $crate::metadata::ManifestRow {
                            repo,
                            digest,
                            media_type,
                            content,
                        },
                    )
                    .collect())
            }
        }
    };
}
pub(crate) use impl_audit;
