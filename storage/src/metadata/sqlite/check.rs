//! Queries of `registry check`: every row that claims something about the
//! blob store or about other rows, and the repair of a lost blob.

use super::SqliteMeta;
use crate::error::Result;
use crate::metadata::DanglingRef;
use futures::TryStreamExt;

impl SqliteMeta {
    /// Every `(digest, size)` the database holds as a committed blob.
    pub async fn blob_rows(&self) -> Result<Vec<(String, u64, Option<String>)>> {
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT digest, size, location FROM blobs")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|(d, s, l)| (d, s as u64, l)).collect())
    }

    /// References of manifests to blobs not linked in their repository, or
    /// to child manifests not in it.
    pub async fn dangling_refs(&self) -> Result<Vec<DanglingRef>> {
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
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(repo, manifest, kind, digest)| DanglingRef {
                repo,
                manifest,
                kind,
                digest,
            })
            .collect())
    }

    /// Call `each(repo, digest, content)` for every stored manifest, one row
    /// in memory at a time.
    pub async fn each_manifest(
        &self,
        each: &mut (dyn FnMut(String, String, Vec<u8>) + Send),
    ) -> Result<u64> {
        let mut rows = sqlx::query_as::<_, (String, String, Vec<u8>)>(
            "SELECT r.name, m.digest, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id",
        )
        .fetch(&self.reader);
        let mut n = 0;
        while let Some((repo, digest, content)) = rows.try_next().await? {
            each(repo, digest, content);
            n += 1;
        }
        Ok(n)
    }

    /// Forget a blob whose bytes are gone or corrupt: its links (clients
    /// then push it again) and its row. Returns the repositories that had it.
    pub async fn drop_blob(&self, digest: &str) -> Result<Vec<String>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let repos: Vec<String> = sqlx::query_scalar(
            "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE rb.digest = $1 ORDER BY r.name",
        )
        .bind(digest)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM repo_blobs WHERE digest = $1; DELETE FROM blobs WHERE digest = $1;",
        )
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(repos)
    }
}
