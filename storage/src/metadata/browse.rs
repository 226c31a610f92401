//! Read-only queries behind the web view and `/api/v1`: summaries of
//! repositories and tags, and which images use a blob. The same SQL on
//! both databases (but for the case-insensitive `LIKE`, the dialect's
//! `LIKE`): one body, [`impl_browse`].

use super::{BlobUse, RepoSummary, TagRow};
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Browse: Send + Sync {
    /// Repositories after `last` whose name contains `filter` (any case),
    /// at most `limit`, with their tag count, size and last push.
    async fn repo_summaries(
        &self,
        filter: Option<&str>,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepoSummary>>;
    /// Tags of `repo` after `last`, with their manifests; `None` if the
    /// repository does not exist.
    async fn tag_rows(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<TagRow>>>;
    /// Every manifest in the registry that references one of `blobs`.
    async fn blob_uses(&self, blobs: &[String]) -> Result<Vec<BlobUse>>;
}

/// `LIKE` pattern matching `needle` anywhere, with wildcards escaped.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `$1, $2, ...` for `n` parameters: an `IN` list both dialects take.
pub(crate) fn placeholders(n: usize) -> String {
    placeholders_from(1, n)
}

/// `$first, ...` for `n` parameters.
pub(crate) fn placeholders_from(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    list.join(", ")
}

/// [`Browse`] for a dialect. Sums are cast back to `BIGINT` (PostgreSQL's
/// `SUM` of `BIGINT` is `NUMERIC`).
macro_rules! impl_browse {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Browse for $ty {
            async fn repo_summaries(
                &self,
                filter: Option<&str>,
                last: Option<&str>,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::metadata::RepoSummary>> {
                use sqlx::Row;
                let sql = format!(
                    "SELECT r.name,
                       (SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id),
                       (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT)
                         FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                         WHERE rb.repo_id = r.id),
                       (SELECT MAX(t.updated_at) FROM tags t WHERE t.repo_id = r.id)
                     FROM repositories r
                     WHERE r.name > $1 AND (CAST($2 AS TEXT) IS NULL OR r.name {} $2 ESCAPE '\\')
                     ORDER BY r.name LIMIT $3",
                    Self::LIKE
                );
                let rows = sqlx::query(&sql)
                    .bind(last.unwrap_or(""))
                    .bind(filter.map($crate::metadata::browse::contains_pattern))
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::metadata::RepoSummary {
                        name: r.get(0),
                        tag_count: r.get(1),
                        size: r.get(2),
                        last_push: r.get(3),
                    })
                    .collect())
            }

            async fn tag_rows(
                &self,
                repo: &str,
                last: Option<&str>,
                limit: i64,
            ) -> $crate::error::Result<Option<Vec<$crate::metadata::TagRow>>> {
                use sqlx::Row;
                let Some(repo_id) = self.repo_id(repo).await? else {
                    return Ok(None);
                };
                let rows = sqlx::query(
                    "SELECT t.name, t.digest, m.media_type, t.updated_at, m.content,
                       (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT)
                         FROM manifest_refs mr JOIN blobs b ON b.digest = mr.ref_digest
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
                .fetch_all(self.reader())
                .await?;
                Ok(Some(
                    rows.into_iter()
                        .map(|r| $crate::metadata::TagRow {
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

            async fn blob_uses(
                &self,
                blobs: &[String],
            ) -> $crate::error::Result<Vec<$crate::metadata::BlobUse>> {
                use sqlx::Row;
                if blobs.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT DISTINCT mr.ref_digest, r.name, mr.manifest_digest, COALESCE(t.name, pt.name)
                     FROM manifest_refs mr
                     JOIN repositories r ON r.id = mr.repo_id
                     LEFT JOIN tags t ON t.repo_id = mr.repo_id AND t.digest = mr.manifest_digest
                     LEFT JOIN manifest_refs p ON p.repo_id = mr.repo_id AND p.kind = 'manifest'
                       AND p.ref_digest = mr.manifest_digest
                     LEFT JOIN tags pt ON pt.repo_id = p.repo_id AND pt.digest = p.manifest_digest
                     WHERE mr.kind = 'blob' AND mr.ref_digest IN ({})
                     ORDER BY r.name, mr.manifest_digest",
                    $crate::metadata::browse::placeholders(blobs.len())
                );
                let mut q = sqlx::query(&sql);
                for b in blobs {
                    q = q.bind(b);
                }
                let rows = q.fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::metadata::BlobUse {
                        blob: r.get(0),
                        repository: r.get(1),
                        manifest: r.get(2),
                        tag: r.get(3),
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use impl_browse;
