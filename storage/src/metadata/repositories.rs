//! Repositories and the blobs linked into them: the same SQL on both
//! databases, so one body ([`impl_repositories`]) serves both. Linking a
//! new blob is a push's write, tuned per dialect (see [`super::Pushes`]).

use super::Immutability;
use crate::digest::Digest;
use crate::error::Result;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[async_trait]
pub trait Repositories: Send + Sync {
    async fn repo_exists(&self, name: &str) -> Result<bool>;
    /// Repository names in byte order after `last`, at most `limit`.
    async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>>;
    /// A repository's tag immutability; None: no such repository.
    async fn immutability(&self, repo: &str) -> Result<Option<Immutability>>;
    /// Set it, creating the repository if need be (set before the first
    /// push, as on ECR).
    async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()>;
    /// Size and location of a blob if it is linked in `repo`.
    async fn linked_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, Option<String>)>>;
    /// Repositories a blob is linked in, in name order (at most `limit`).
    async fn repos_with_blob(&self, digest: &Digest, limit: i64) -> Result<Vec<String>>;
    /// Remove the link of a blob from a repository; the bytes stay for any
    /// other repository (garbage collection reclaims unreferenced ones).
    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Size and location of a blob if the registry has it.
    async fn blob_any(&self, digest: &str) -> Result<Option<(i64, Option<String>)>>;
}

/// Repository name → id, filled only with committed rows. Repositories
/// are never deleted and ids never change for a name, so an entry never
/// goes stale; it saves every push a lookup (on SQLite, on the single
/// writer connection).
#[derive(Clone, Default)]
pub struct RepoIds(Arc<Mutex<HashMap<String, i64>>>);

impl RepoIds {
    pub(crate) fn get(&self, name: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    pub(crate) fn remember(&self, name: &str, id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), id);
    }
}

/// [`Repositories`] for a dialect, and its `repo_id` and `ensure_repo`
/// (ids through the [`RepoIds`] cache; the dialect's `insert_repo` creates).
macro_rules! impl_repositories {
    ($ty:ty) => {
        impl $ty {
            async fn repo_id(&self, name: &str) -> $crate::error::Result<Option<i64>> {
                if let Some(id) = self.repo_ids.get(name) {
                    return Ok(Some(id));
                }
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.reader())
                        .await?;
                if let Some(id) = id {
                    self.repo_ids.remember(name, id);
                }
                Ok(id)
            }

            /// The id of `name`, creating the repository if need be (in a
            /// commit of its own, so the id is real once returned).
            async fn ensure_repo(&self, name: &str) -> $crate::error::Result<i64> {
                if let Some(id) = self.repo_id(name).await? {
                    return Ok(id);
                }
                let id = self.insert_repo(name).await?;
                self.repo_ids.remember(name, id);
                Ok(id)
            }
        }

        #[async_trait::async_trait]
        impl $crate::metadata::Repositories for $ty {
            async fn repo_exists(&self, name: &str) -> $crate::error::Result<bool> {
                Ok(self.repo_id(name).await?.is_some())
            }

            async fn catalog(
                &self,
                last: Option<&str>,
                limit: i64,
            ) -> $crate::error::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
                )
                .bind(last.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn immutability(
                &self,
                repo: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::Immutability>> {
                let row: Option<(i64, String)> = sqlx::query_as(
                    "SELECT CAST(immutable AS BIGINT), immutable_exclusions FROM repositories WHERE name = $1",
                )
                .bind(repo)
                .fetch_optional(self.reader())
                .await?;
                row.map(|(on, exclude)| {
                    Ok($crate::metadata::Immutability {
                        immutable: on != 0,
                        exclude: serde_json::from_str(&exclude)
                            .map_err($crate::error::Error::internal)?,
                    })
                })
                .transpose()
            }

            async fn set_immutability(
                &self,
                repo: &str,
                i: &$crate::metadata::Immutability,
            ) -> $crate::error::Result<()> {
                let repo_id = self.ensure_repo(repo).await?;
                sqlx::query(
                    "UPDATE repositories SET immutable = $2, immutable_exclusions = $3 WHERE id = $1",
                )
                .bind(repo_id)
                .bind(i64::from(i.immutable))
                .bind(serde_json::to_string(&i.exclude).map_err($crate::error::Error::internal)?)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn linked_blob(
                &self,
                repo: &str,
                digest: &$crate::digest::Digest,
            ) -> $crate::error::Result<Option<(u64, Option<String>)>> {
                let row: Option<(i64, Option<String>)> = sqlx::query_as(
                    "SELECT b.size, b.location FROM repo_blobs rb
                     JOIN repositories r ON r.id = rb.repo_id
                     JOIN blobs b ON b.digest = rb.digest
                     WHERE r.name = $1 AND rb.digest = $2",
                )
                .bind(repo)
                .bind(digest.to_string())
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(|(s, l)| (s as u64, l)))
            }

            async fn repos_with_blob(
                &self,
                digest: &$crate::digest::Digest,
                limit: i64,
            ) -> $crate::error::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
                     WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
                )
                .bind(digest.to_string())
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn unlink_blob(
                &self,
                repo: &str,
                digest: &$crate::digest::Digest,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "DELETE FROM repo_blobs WHERE digest = $1
                     AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
                )
                .bind(digest.to_string())
                .bind(repo)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn blob_any(
                &self,
                digest: &str,
            ) -> $crate::error::Result<Option<(i64, Option<String>)>> {
                Ok(
                    sqlx::query_as("SELECT size, location FROM blobs WHERE digest = $1")
                        .bind(digest)
                        .fetch_optional(self.reader())
                        .await?,
                )
            }
        }
    };
}
pub(crate) use impl_repositories;
