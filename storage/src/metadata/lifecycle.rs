//! Lifecycle policies, pull times (migration `0007_lifecycle.sql`) and
//! namespace usage (quotas) in the database: the same SQL on both
//! databases, so one body serves both, instantiated per backend by
//! [`lifecycle_methods`].

use crate::lifecycle::Image;

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

/// `lifecycle_policy`, `set_lifecycle_policy`, `lifecycle_repos`,
/// `lifecycle_images` and `record_pulls` for a backend whose pools are
/// `$reader` and `$writer`.
macro_rules! lifecycle_methods {
    ($ty:ty, $reader:ident, $writer:ident) => {
        impl $ty {
            /// None: no such repository; Some(None): no policy.
            pub async fn lifecycle_policy(
                &self,
                repo: &str,
            ) -> crate::error::Result<Option<Option<String>>> {
                Ok(sqlx::query_scalar(crate::metadata::sql::LIFECYCLE_POLICY)
                    .bind(repo)
                    .fetch_optional(&self.$reader)
                    .await?)
            }

            /// Set (None: remove) it, creating the repository if need be.
            pub async fn set_lifecycle_policy(
                &self,
                repo: &str,
                policy: Option<&str>,
            ) -> crate::error::Result<()> {
                let repo_id = self.ensure_repo(repo).await?;
                sqlx::query(crate::metadata::sql::SET_LIFECYCLE_POLICY)
                    .bind(repo_id)
                    .bind(policy)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            pub async fn lifecycle_repos(&self) -> crate::error::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(crate::metadata::sql::LIFECYCLE_REPOS)
                    .fetch_all(&self.$reader)
                    .await?)
            }

            pub async fn lifecycle_images(
                &self,
                repo: &str,
            ) -> crate::error::Result<Vec<crate::lifecycle::Image>> {
                let rows = sqlx::query_as(crate::metadata::sql::LIFECYCLE_IMAGES)
                    .bind(repo)
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(crate::metadata::lifecycle::fold_images(rows))
            }

            /// `(repositories, bytes of distinct blobs)` of namespace `ns`.
            pub async fn namespace_usage(&self, ns: &str) -> crate::error::Result<(i64, i64)> {
                let repos: i64 = sqlx::query_scalar(crate::metadata::sql::NAMESPACE_REPOS)
                    .bind(ns)
                    .fetch_one(&self.$reader)
                    .await?;
                let bytes: i64 = sqlx::query_scalar(crate::metadata::sql::NAMESPACE_BYTES)
                    .bind(ns)
                    .fetch_one(&self.$reader)
                    .await?;
                Ok((repos, bytes))
            }

            pub async fn namespace_has_blob(
                &self,
                ns: &str,
                digest: &str,
            ) -> crate::error::Result<bool> {
                Ok(sqlx::query_scalar(crate::metadata::sql::NAMESPACE_HAS_BLOB)
                    .bind(ns)
                    .bind(digest)
                    .fetch_one(&self.$reader)
                    .await?)
            }

            /// Events after id `after`, oldest first, at most `limit`.
            pub async fn events_after(
                &self,
                after: i64,
                limit: i64,
            ) -> crate::error::Result<Vec<crate::metadata::Event>> {
                Ok(sqlx::query_as(crate::metadata::sql::EVENTS_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.$reader)
                    .await?)
            }

            /// An endpoint's cursor (None: never delivered to).
            pub async fn event_cursor(&self, endpoint: &str) -> crate::error::Result<Option<i64>> {
                Ok(sqlx::query_scalar(crate::metadata::sql::EVENT_CURSOR)
                    .bind(endpoint)
                    .fetch_optional(&self.$writer)
                    .await?)
            }

            pub async fn set_event_cursor(
                &self,
                endpoint: &str,
                id: i64,
            ) -> crate::error::Result<()> {
                sqlx::query(crate::metadata::sql::SET_EVENT_CURSOR)
                    .bind(endpoint)
                    .bind(id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            pub async fn last_event(&self) -> crate::error::Result<i64> {
                Ok(sqlx::query_scalar(crate::metadata::sql::LAST_EVENT)
                    .fetch_one(&self.$writer)
                    .await?)
            }

            pub async fn trim_events(
                &self,
                upto: i64,
                older_than_ms: i64,
            ) -> crate::error::Result<u64> {
                Ok(sqlx::query(crate::metadata::sql::TRIM_EVENTS)
                    .bind(upto)
                    .bind(older_than_ms)
                    .execute(&self.$writer)
                    .await?
                    .rows_affected())
            }

            /// Record pulls `(repository, digest, unix seconds)`, in one
            /// transaction.
            pub async fn record_pulls(
                &self,
                pulls: &[(String, String, i64)],
            ) -> crate::error::Result<()> {
                let mut tx = self.$writer.begin().await?;
                for (repo, digest, at) in pulls {
                    sqlx::query(crate::metadata::sql::RECORD_PULL)
                        .bind(repo)
                        .bind(digest)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use lifecycle_methods;
