//! Lifecycle policies, pull times (migration `0007_lifecycle.sql`) and
//! namespace usage (quotas) in the database: the same SQL on both
//! databases, so one body, [`impl_lifecycle`], serves both.

use crate::error::Result;
use crate::lifecycle::Image;
use async_trait::async_trait;

#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// None: no such repository; Some(None): no policy.
    async fn lifecycle_policy(&self, repo: &str) -> Result<Option<Option<String>>>;
    /// Set (None: remove) it, creating the repository if need be.
    async fn set_lifecycle_policy(&self, repo: &str, policy: Option<&str>) -> Result<()>;
    /// `(repository, policy text)` of every repository with a policy.
    async fn lifecycle_repos(&self) -> Result<Vec<(String, String)>>;
    /// The images of `repo` as lifecycle policies see them.
    async fn lifecycle_images(&self, repo: &str) -> Result<Vec<Image>>;
    /// Record pulls `(repository, digest, unix seconds)`, in one
    /// transaction.
    async fn record_pulls(&self, pulls: &[(String, String, i64)]) -> Result<()>;
    /// `(repositories, bytes of distinct blobs)` of namespace `ns`.
    async fn namespace_usage(&self, ns: &str) -> Result<(i64, i64)>;
    /// Whether `digest` is linked in some repository of namespace `ns`.
    async fn namespace_has_blob(&self, ns: &str, digest: &str) -> Result<bool>;
}

/// Rows of `sql::LIFECYCLE_IMAGES` (one per tag) folded into images.
pub(crate) fn fold_images(rows: Vec<(String, i64, Option<i64>, Option<String>)>) -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    for (digest, pushed_ms, last_pulled, tag) in rows {
        match out.last_mut() {
            Some(img) if img.digest == digest => img.tags.extend(tag),
            _ => out.push(Image {
                digest,
                tags: tag.into_iter().collect(),
                pushed_at: pushed_ms.div_euclid(1000),
                pushed_ms,
                last_pulled,
            }),
        }
    }
    out
}

/// [`Lifecycle`] for a dialect.
macro_rules! impl_lifecycle {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Lifecycle for $ty {
            async fn lifecycle_policy(
                &self,
                repo: &str,
            ) -> $crate::error::Result<Option<Option<String>>> {
                Ok(sqlx::query_scalar($crate::metadata::sql::LIFECYCLE_POLICY)
                    .bind(repo)
                    .fetch_optional(self.reader())
                    .await?)
            }

            async fn set_lifecycle_policy(
                &self,
                repo: &str,
                policy: Option<&str>,
            ) -> $crate::error::Result<()> {
                let repo_id = self.ensure_repo(repo).await?;
                sqlx::query($crate::metadata::sql::SET_LIFECYCLE_POLICY)
                    .bind(repo_id)
                    .bind(policy)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn lifecycle_repos(&self) -> $crate::error::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as($crate::metadata::sql::LIFECYCLE_REPOS)
                    .fetch_all(self.reader())
                    .await?)
            }

            async fn lifecycle_images(
                &self,
                repo: &str,
            ) -> $crate::error::Result<Vec<$crate::lifecycle::Image>> {
                let rows = sqlx::query_as($crate::metadata::sql::LIFECYCLE_IMAGES)
                    .bind(repo)
                    .fetch_all(self.reader())
                    .await?;
                Ok($crate::metadata::lifecycle::fold_images(rows))
            }

            async fn record_pulls(
                &self,
                pulls: &[(String, String, i64)],
            ) -> $crate::error::Result<()> {
                let mut tx = self.writer().begin().await?;
                for (repo, digest, at) in pulls {
                    sqlx::query($crate::metadata::sql::RECORD_PULL)
                        .bind(repo)
                        .bind(digest)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn namespace_usage(&self, ns: &str) -> $crate::error::Result<(i64, i64)> {
                let repos: i64 = sqlx::query_scalar($crate::metadata::sql::NAMESPACE_REPOS)
                    .bind(ns)
                    .fetch_one(self.reader())
                    .await?;
                let bytes: i64 = sqlx::query_scalar($crate::metadata::sql::NAMESPACE_BYTES)
                    .bind(ns)
                    .fetch_one(self.reader())
                    .await?;
                Ok((repos, bytes))
            }

            async fn namespace_has_blob(
                &self,
                ns: &str,
                digest: &str,
            ) -> $crate::error::Result<bool> {
                Ok(
                    sqlx::query_scalar($crate::metadata::sql::NAMESPACE_HAS_BLOB)
                        .bind(ns)
                        .bind(digest)
                        .fetch_one(self.reader())
                        .await?,
                )
            }
        }
    };
}
pub(crate) use impl_lifecycle;
