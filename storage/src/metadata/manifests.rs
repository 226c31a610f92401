//! Manifests and tags once stored: the reads of the pull and discovery
//! paths, deletes, and the tag history (which triggers on `tags` write,
//! migration `0004_tag_history.sql`) with the moves of a tag that name
//! their action. The same SQL on both databases: one body,
//! [`impl_manifests`]. Storing a manifest is a push's write, tuned per
//! dialect (see [`super::Pushes`]).

use super::{Referrer, StoredManifest, TagChange};
use crate::digest::Digest;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Manifests: Send + Sync {
    async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>>;
    async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<StoredManifest>>;
    /// Delete a manifest; its tags and reference rows go with it, `actor`
    /// recorded as who deleted the tags.
    async fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        actor: Option<&str>,
    ) -> Result<bool>;
    async fn delete_tag(&self, repo: &str, tag: &str, actor: Option<&str>) -> Result<bool>;
    /// Tags of `repo` in byte order after `last`, at most `limit`; `None` if
    /// the repository does not exist.
    async fn list_tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<String>>>;
    /// Manifests of `repo` whose subject is `subject` (of `artifact_type`).
    async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>>;
    /// The last `limit` changes of `repo:tag`, newest first.
    async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>>;
    /// Point `repo:tag` at `digest` (a manifest of the repository), and
    /// record the change as `action` (the trigger records a push; this
    /// renames it in the same transaction). False when the tag already
    /// points there.
    async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        digest: &str,
        action: &str,
        actor: Option<&str>,
    ) -> Result<bool>;
}

/// [`Manifests`] for a dialect. Deletes write their event and name who
/// deleted in the same transaction (retried on PostgreSQL): `delete_named`.
macro_rules! impl_manifests {
    ($ty:ty) => {
        impl $ty {
            /// Delete what `key` names in `repo` (a manifest by digest, a
            /// tag by name) by `deletes`: name `actor` as who on the tags
            /// that go, write the delete event, delete; all take `key` and
            /// `repo` (and `actor`, the time) alike. True if it was there.
            async fn delete_named(
                &self,
                [name_actor, event, delete]: [&'static str; 3],
                repo: &str,
                key: &str,
                actor: Option<&str>,
            ) -> $crate::error::Result<bool> {
                Ok($crate::metadata::retrying!(async {
                    let mut tx = self.begin().await?;
                    sqlx::query(name_actor)
                        .bind(repo)
                        .bind(key)
                        .bind(actor)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(event)
                        .bind(key)
                        .bind(repo)
                        .bind(actor)
                        .bind($crate::metadata::now_ms())
                        .execute(&mut *tx)
                        .await?;
                    let done = sqlx::query(delete)
                        .bind(key)
                        .bind(repo)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(done.rows_affected() > 0)
                })?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::metadata::Manifests for $ty {
            async fn manifest_by_digest(
                &self,
                repo: &str,
                digest: &$crate::digest::Digest,
            ) -> $crate::error::Result<Option<$crate::metadata::StoredManifest>> {
                use sqlx::Row;
                let row = sqlx::query(
                    "SELECT m.media_type, m.content FROM manifests m
                     JOIN repositories r ON r.id = m.repo_id
                     WHERE r.name = $1 AND m.digest = $2",
                )
                .bind(repo)
                .bind(digest.to_string())
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(|r| $crate::metadata::StoredManifest {
                    digest: digest.clone(),
                    media_type: r.get(0),
                    content: r.get(1),
                }))
            }

            async fn manifest_by_tag(
                &self,
                repo: &str,
                tag: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::StoredManifest>> {
                use sqlx::Row;
                let row = sqlx::query(
                    "SELECT m.digest, m.media_type, m.content FROM tags t
                     JOIN repositories r ON r.id = t.repo_id
                     JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
                     WHERE r.name = $1 AND t.name = $2",
                )
                .bind(repo)
                .bind(tag)
                .fetch_optional(self.reader())
                .await?;
                row.map(|r| {
                    Ok($crate::metadata::StoredManifest {
                        digest: r.get::<String, _>(0).parse()?,
                        media_type: r.get(1),
                        content: r.get(2),
                    })
                })
                .transpose()
            }

            async fn delete_manifest(
                &self,
                repo: &str,
                digest: &$crate::digest::Digest,
                actor: Option<&str>,
            ) -> $crate::error::Result<bool> {
                use $crate::metadata::sql;
                let deletes = [
                    sql::MANIFEST_TAGS_ACTOR,
                    sql::EVENT_MANIFEST_DELETE,
                    sql::DELETE_MANIFEST,
                ];
                self.delete_named(deletes, repo, &digest.to_string(), actor)
                    .await
            }

            async fn delete_tag(
                &self,
                repo: &str,
                tag: &str,
                actor: Option<&str>,
            ) -> $crate::error::Result<bool> {
                use $crate::metadata::sql;
                let deletes = [sql::TAG_ACTOR, sql::EVENT_TAG_DELETE, sql::DELETE_TAG];
                self.delete_named(deletes, repo, tag, actor).await
            }

            async fn list_tags(
                &self,
                repo: &str,
                last: Option<&str>,
                limit: i64,
            ) -> $crate::error::Result<Option<Vec<String>>> {
                let Some(repo_id) = self.repo_id(repo).await? else {
                    return Ok(None);
                };
                let tags = sqlx::query_scalar(
                    "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
                )
                .bind(repo_id)
                .bind(last.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                Ok(Some(tags))
            }

            async fn referrers(
                &self,
                repo: &str,
                subject: &$crate::digest::Digest,
                artifact_type: Option<&str>,
            ) -> $crate::error::Result<Vec<$crate::metadata::Referrer>> {
                use sqlx::Row;
                // CAST: PostgreSQL cannot type a parameter seen only in IS NULL.
                let rows = sqlx::query(
                    "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                     FROM manifests m JOIN repositories r ON r.id = m.repo_id
                     WHERE r.name = $1 AND m.subject = $2
                       AND (CAST($3 AS TEXT) IS NULL OR m.artifact_type = $3)
                     ORDER BY m.created_at, m.digest",
                )
                .bind(repo)
                .bind(subject.to_string())
                .bind(artifact_type)
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let annotations: Option<String> = r.get(4);
                        Ok($crate::metadata::Referrer {
                            digest: r.get(0),
                            media_type: r.get(1),
                            size: r.get(2),
                            artifact_type: r.get(3),
                            annotations: annotations
                                .map(|a| serde_json::from_str(&a))
                                .transpose()
                                .map_err($crate::error::Error::internal)?,
                        })
                    })
                    .collect()
            }

            async fn tag_history(
                &self,
                repo: &str,
                tag: &str,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::metadata::TagChange>> {
                let rows: Vec<$crate::metadata::TagChangeRow> =
                    sqlx::query_as($crate::metadata::sql::TAG_HISTORY)
                        .bind(repo)
                        .bind(tag)
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await?;
                Ok(rows
                    .into_iter()
                    .map($crate::metadata::TagChange::from)
                    .collect())
            }

            async fn move_tag(
                &self,
                repo: &str,
                tag: &str,
                digest: &str,
                action: &str,
                actor: Option<&str>,
            ) -> $crate::error::Result<bool> {
                use $crate::error::{Error, ErrorCode};
                use $crate::metadata::sql;
                let Some(repo_id) = self.repo_id(repo).await? else {
                    return Err(Error::name_unknown(repo));
                };
                let mut tx = self.begin().await?;
                let known: Option<String> = sqlx::query_scalar(sql::MANIFEST_DIGEST)
                    .bind(repo_id)
                    .bind(digest)
                    .fetch_optional(&mut *tx)
                    .await?;
                if known.is_none() {
                    return Err(Error::new(
                        ErrorCode::ManifestUnknown,
                        format!("{repo}@{digest} is no longer stored"),
                    ));
                }
                let current: Option<String> = sqlx::query_scalar(sql::TAG_DIGEST)
                    .bind(repo_id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
                if current.as_deref() == Some(digest) {
                    return Ok(false);
                }
                sqlx::query(sql::MOVE_TAG)
                    .bind(repo_id)
                    .bind(tag)
                    .bind(digest)
                    .bind($crate::metadata::now())
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::NAME_ACTION)
                    .bind(repo_id)
                    .bind(tag)
                    .bind(action)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::EVENT_TAG_MOVE)
                    .bind(repo_id)
                    .bind(tag)
                    .bind(digest)
                    .bind(actor)
                    .bind($crate::metadata::now_ms())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use impl_manifests;
