//! What the ECR API keeps beyond the distribution API's tables (migrations
//! `0012`/`0013_ecr.sql`): repositories as ECR lists them (created,
//! deleted), their resource tags, images with their sizes for
//! `DescribeImages`, lifecycle previews and pull-through rules made through
//! the API. The same SQL on both databases: one body, [`impl_ecr`].

use crate::error::Result;
use async_trait::async_trait;

/// A repository as ECR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRepoRow {
    pub name: String,
    pub created_at: i64,
    pub immutable: bool,
    pub exclusions: Vec<String>,
}

/// Whether `DescribeImages` and `ListImages` want tagged images, untagged
/// ones, or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagFilter {
    Tagged,
    Untagged,
    Any,
}

/// An image (a manifest) as `DescribeImages` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImageRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    pub pushed_ms: i64,
    /// Unix seconds.
    pub last_pulled: Option<i64>,
    /// The manifest's blobs (config and layers), as ECR counts it.
    pub size: i64,
    pub tags: Vec<String>,
}

/// A pull-through cache rule made through the API.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PullThroughRuleRow {
    pub prefix: String,
    pub upstream_url: String,
    pub upstream_registry: Option<String>,
    pub upstream_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait Ecr: Send + Sync {
    /// Repositories ECR lists (not deleted, or pushed to since), after
    /// `after`, at most `limit`.
    async fn ecr_repositories(&self, after: Option<&str>, limit: i64) -> Result<Vec<EcrRepoRow>>;
    async fn ecr_repository(&self, name: &str) -> Result<Option<EcrRepoRow>>;
    /// Mark `name` (which exists as a row) created at `at` if it was
    /// deleted.
    async fn ecr_undelete(&self, name: &str, at: i64) -> Result<()>;
    /// Empty `name` (its manifests, tags, blob links, resource tags,
    /// policies and settings) and mark it deleted; the digests and tags
    /// removed (for caches).
    async fn ecr_delete_repository(
        &self,
        name: &str,
        at: i64,
    ) -> Result<(Vec<String>, Vec<String>)>;
    async fn repository_tags(&self, name: &str) -> Result<Vec<(String, String)>>;
    /// Add or replace tags of an existing repository.
    async fn put_repository_tags(&self, name: &str, tags: &[(String, String)]) -> Result<()>;
    async fn remove_repository_tags(&self, name: &str, keys: &[String]) -> Result<()>;
    /// Images of `name` after digest `after`, at most `limit`, by digest.
    async fn ecr_images(
        &self,
        name: &str,
        after: Option<&str>,
        limit: i64,
        filter: TagFilter,
    ) -> Result<Vec<EcrImageRow>>;
    /// The images among `digests` that `name` has.
    async fn ecr_images_by_digest(
        &self,
        name: &str,
        digests: &[String],
    ) -> Result<Vec<EcrImageRow>>;
    async fn set_lifecycle_preview(&self, name: &str, policy: &str, at: i64) -> Result<()>;
    /// The policy text and start time of `name`'s last preview.
    async fn lifecycle_preview_of(&self, name: &str) -> Result<Option<(String, i64)>>;
    async fn pull_through_rules(&self) -> Result<Vec<PullThroughRuleRow>>;
    /// False if the prefix is taken.
    async fn add_pull_through_rule(&self, rule: &PullThroughRuleRow) -> Result<bool>;
    /// Set the credential ARN; false if there is no such rule.
    async fn update_pull_through_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        at: i64,
    ) -> Result<bool>;
    async fn delete_pull_through_rule(&self, prefix: &str) -> Result<bool>;
}

/// A repository ECR lists: not deleted, or pushed to since.
pub(crate) const VISIBLE: &str =
    "(r.deleted_at IS NULL OR EXISTS (SELECT 1 FROM manifests vm WHERE vm.repo_id = r.id))";

pub(crate) const REPO_COLUMNS: &str =
    "r.name, r.created_at, CAST(r.immutable AS BIGINT), r.immutable_exclusions";

pub(crate) type RepoTuple = (String, i64, i64, String);

pub(crate) fn repo_row((name, created_at, immutable, exclusions): RepoTuple) -> EcrRepoRow {
    EcrRepoRow {
        name,
        created_at,
        immutable: immutable != 0,
        exclusions: serde_json::from_str(&exclusions).unwrap_or_default(),
    }
}

/// Manifest columns of an image; the size sums the distinct blobs the
/// manifest references (cast: PostgreSQL's `SUM` is `NUMERIC`).
pub(crate) const IMAGE_COLUMNS: &str = "m.digest, m.media_type, m.artifact_type, m.subject, COALESCE(m.pushed_ms, m.created_at * 1000), m.last_pulled, CAST((SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN (SELECT x.ref_digest FROM manifest_refs x WHERE x.repo_id = m.repo_id AND x.manifest_digest = m.digest AND x.kind = 'blob')) AS BIGINT)";

pub(crate) type ImageTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    i64,
);

pub(crate) fn image_row(
    (digest, media_type, artifact_type, subject, pushed_ms, last_pulled, size): ImageTuple,
) -> EcrImageRow {
    EcrImageRow {
        digest,
        media_type,
        artifact_type,
        subject,
        pushed_ms,
        last_pulled,
        size,
        tags: Vec::new(),
    }
}

pub(crate) fn tag_condition(filter: TagFilter) -> &'static str {
    match filter {
        TagFilter::Any => "",
        TagFilter::Tagged => {
            " AND EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)"
        }
        TagFilter::Untagged => {
            " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)"
        }
    }
}

/// Attach each image's tags (sorted) from `(digest, tag)` rows.
pub(crate) fn attach_tags(images: &mut [EcrImageRow], mut tags: Vec<(String, String)>) {
    tags.sort();
    for image in images.iter_mut() {
        let start = tags.partition_point(|(d, _)| *d < image.digest);
        image.tags = tags[start..]
            .iter()
            .take_while(|(d, _)| *d == image.digest)
            .map(|(_, t)| t.clone())
            .collect();
    }
}

/// [`Ecr`] for a dialect.
macro_rules! impl_ecr {
    ($ty:ty) => {
        impl $ty {
            /// The tags of `digests` in repository id `repo_id`.
            async fn ecr_tags_of(
                &self,
                repo_id: i64,
                digests: &[String],
            ) -> $crate::error::Result<Vec<(String, String)>> {
                let mut out = Vec::new();
                for chunk in digests.chunks(500) {
                    let sql = format!(
                        "SELECT digest, name FROM tags WHERE repo_id = $1 AND digest IN ({})",
                        $crate::metadata::browse::placeholders_from(2, chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, (String, String)>(&sql).bind(repo_id);
                    for d in chunk {
                        q = q.bind(d);
                    }
                    out.extend(q.fetch_all(self.reader()).await?);
                }
                Ok(out)
            }
        }

        #[async_trait::async_trait]
        impl $crate::metadata::Ecr for $ty {
            async fn ecr_repositories(
                &self,
                after: Option<&str>,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::metadata::EcrRepoRow>> {
                use $crate::metadata::ecr as e;
                let sql = format!(
                    "SELECT {} FROM repositories r WHERE r.name > $1 AND {} ORDER BY r.name LIMIT $2",
                    e::REPO_COLUMNS,
                    e::VISIBLE
                );
                let rows: Vec<e::RepoTuple> = sqlx::query_as(&sql)
                    .bind(after.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows.into_iter().map(e::repo_row).collect())
            }

            async fn ecr_repository(
                &self,
                name: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::EcrRepoRow>> {
                use $crate::metadata::ecr as e;
                let sql = format!(
                    "SELECT {} FROM repositories r WHERE r.name = $1 AND {}",
                    e::REPO_COLUMNS,
                    e::VISIBLE
                );
                let row: Option<e::RepoTuple> = sqlx::query_as(&sql)
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(e::repo_row))
            }

            async fn ecr_undelete(&self, name: &str, at: i64) -> $crate::error::Result<()> {
                sqlx::query(
                    "UPDATE repositories SET created_at = $2, deleted_at = NULL WHERE name = $1 AND deleted_at IS NOT NULL",
                )
                .bind(name)
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn ecr_delete_repository(
                &self,
                name: &str,
                at: i64,
            ) -> $crate::error::Result<(Vec<String>, Vec<String>)> {
                let Some(repo_id) = self.repo_id(name).await? else {
                    return Ok((Vec::new(), Vec::new()));
                };
                let mut tx = self.begin().await?;
                let digests: Vec<String> =
                    sqlx::query_scalar("SELECT digest FROM manifests WHERE repo_id = $1")
                        .bind(repo_id)
                        .fetch_all(&mut *tx)
                        .await?;
                let tags: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = $1")
                        .bind(repo_id)
                        .fetch_all(&mut *tx)
                        .await?;
                for sql in [
                    "DELETE FROM tags WHERE repo_id = $1",
                    "DELETE FROM manifests WHERE repo_id = $1",
                    "DELETE FROM repo_blobs WHERE repo_id = $1",
                    "DELETE FROM repository_tags WHERE repo_id = $1",
                    "DELETE FROM lifecycle_previews WHERE repo_id = $1",
                ] {
                    sqlx::query(sql).bind(repo_id).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE repositories SET deleted_at = $2, lifecycle_policy = NULL, immutable = 0, immutable_exclusions = '[]' WHERE id = $1",
                )
                .bind(repo_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((digests, tags))
            }

            async fn repository_tags(
                &self,
                name: &str,
            ) -> $crate::error::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT t.tag_key, t.tag_value FROM repository_tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = $1 ORDER BY t.tag_key",
                )
                .bind(name)
                .fetch_all(self.reader())
                .await?)
            }

            async fn put_repository_tags(
                &self,
                name: &str,
                tags: &[(String, String)],
            ) -> $crate::error::Result<()> {
                let repo_id = self.ensure_repo(name).await?;
                let mut tx = self.writer().begin().await?;
                for (k, v) in tags {
                    sqlx::query(
                        "INSERT INTO repository_tags (repo_id, tag_key, tag_value) VALUES ($1, $2, $3) ON CONFLICT (repo_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                    )
                    .bind(repo_id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn remove_repository_tags(
                &self,
                name: &str,
                keys: &[String],
            ) -> $crate::error::Result<()> {
                let Some(repo_id) = self.repo_id(name).await? else {
                    return Ok(());
                };
                for k in keys {
                    sqlx::query("DELETE FROM repository_tags WHERE repo_id = $1 AND tag_key = $2")
                        .bind(repo_id)
                        .bind(k)
                        .execute(self.writer())
                        .await?;
                }
                Ok(())
            }

            async fn ecr_images(
                &self,
                name: &str,
                after: Option<&str>,
                limit: i64,
                filter: $crate::metadata::TagFilter,
            ) -> $crate::error::Result<Vec<$crate::metadata::EcrImageRow>> {
                use $crate::metadata::ecr as e;
                let Some(repo_id) = self.repo_id(name).await? else {
                    return Ok(Vec::new());
                };
                let sql = format!(
                    "SELECT {} FROM manifests m WHERE m.repo_id = $1 AND m.digest > $2{} ORDER BY m.digest LIMIT $3",
                    e::IMAGE_COLUMNS,
                    e::tag_condition(filter)
                );
                let rows: Vec<e::ImageTuple> = sqlx::query_as(&sql)
                    .bind(repo_id)
                    .bind(after.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                let mut images: Vec<_> = rows.into_iter().map(e::image_row).collect();
                let digests: Vec<String> = images.iter().map(|i| i.digest.clone()).collect();
                let tags = self.ecr_tags_of(repo_id, &digests).await?;
                e::attach_tags(&mut images, tags);
                Ok(images)
            }

            async fn ecr_images_by_digest(
                &self,
                name: &str,
                digests: &[String],
            ) -> $crate::error::Result<Vec<$crate::metadata::EcrImageRow>> {
                use $crate::metadata::ecr as e;
                let Some(repo_id) = self.repo_id(name).await? else {
                    return Ok(Vec::new());
                };
                let mut images = Vec::new();
                for chunk in digests.chunks(500) {
                    let sql = format!(
                        "SELECT {} FROM manifests m WHERE m.repo_id = $1 AND m.digest IN ({}) ORDER BY m.digest",
                        e::IMAGE_COLUMNS,
                        $crate::metadata::browse::placeholders_from(2, chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, e::ImageTuple>(&sql).bind(repo_id);
                    for d in chunk {
                        q = q.bind(d);
                    }
                    images.extend(q.fetch_all(self.reader()).await?.into_iter().map(e::image_row));
                }
                let found: Vec<String> = images.iter().map(|i| i.digest.clone()).collect();
                let tags = self.ecr_tags_of(repo_id, &found).await?;
                e::attach_tags(&mut images, tags);
                Ok(images)
            }

            async fn set_lifecycle_preview(
                &self,
                name: &str,
                policy: &str,
                at: i64,
            ) -> $crate::error::Result<()> {
                let repo_id = self.ensure_repo(name).await?;
                sqlx::query(
                    "INSERT INTO lifecycle_previews (repo_id, policy, started_at) VALUES ($1, $2, $3) ON CONFLICT (repo_id) DO UPDATE SET policy = excluded.policy, started_at = excluded.started_at",
                )
                .bind(repo_id)
                .bind(policy)
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn lifecycle_preview_of(
                &self,
                name: &str,
            ) -> $crate::error::Result<Option<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT p.policy, p.started_at FROM lifecycle_previews p JOIN repositories r ON r.id = p.repo_id WHERE r.name = $1",
                )
                .bind(name)
                .fetch_optional(self.reader())
                .await?)
            }

            async fn pull_through_rules(
                &self,
            ) -> $crate::error::Result<Vec<$crate::metadata::PullThroughRuleRow>> {
                Ok(sqlx::query_as(
                    "SELECT prefix, upstream_url, upstream_registry, upstream_prefix, credential_arn, created_at, updated_at FROM pull_through_rules ORDER BY prefix",
                )
                .fetch_all(self.reader())
                .await?)
            }

            async fn add_pull_through_rule(
                &self,
                rule: &$crate::metadata::PullThroughRuleRow,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO pull_through_rules (prefix, upstream_url, upstream_registry, upstream_prefix, credential_arn, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (prefix) DO NOTHING",
                )
                .bind(&rule.prefix)
                .bind(&rule.upstream_url)
                .bind(&rule.upstream_registry)
                .bind(&rule.upstream_prefix)
                .bind(&rule.credential_arn)
                .bind(rule.created_at)
                .bind(rule.updated_at)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_pull_through_rule(
                &self,
                prefix: &str,
                credential_arn: Option<&str>,
                at: i64,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "UPDATE pull_through_rules SET credential_arn = $2, updated_at = $3 WHERE prefix = $1",
                )
                .bind(prefix)
                .bind(credential_arn)
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_pull_through_rule(&self, prefix: &str) -> $crate::error::Result<bool> {
                let done = sqlx::query("DELETE FROM pull_through_rules WHERE prefix = $1")
                    .bind(prefix)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_ecr;
