//! Domain operations behind the ECR API that the distribution API has no
//! use for: repositories created and deleted as such, their resource
//! tags, image listings with sizes, lifecycle previews kept between two
//! calls, and pull-through rules kept in the database. Nothing here knows
//! of HTTP or of ECR's JSON; the registry crate maps results and errors.

use super::Registry;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::lifecycle::{Expiry, Policy};
use crate::metadata::{EcrImageRow, EcrRepoRow, Immutability, PullThroughRuleRow, TagFilter};
use crate::names::validate_name;

/// Why a repository could not be created or deleted as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoRefusal {
    AlreadyExists,
    NotFound,
    /// Not empty, and not forced.
    NotEmpty,
}

impl Registry {
    /// Repositories as ECR lists them, after `after`, at most `limit`.
    pub async fn ecr_repositories(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EcrRepoRow>> {
        self.meta.ecr_repositories(after, limit).await
    }

    /// `name` if ECR would list it.
    pub async fn ecr_repository(&self, name: &str) -> Result<Option<EcrRepoRow>> {
        validate_name(name)?;
        self.meta.ecr_repository(name).await
    }

    /// Create `name` with its tag immutability and resource tags.
    pub async fn ecr_create_repository(
        &self,
        name: &str,
        immutability: &Immutability,
        tags: &[(String, String)],
    ) -> Result<std::result::Result<EcrRepoRow, RepoRefusal>> {
        validate_name(name)?;
        if self.meta.ecr_repository(name).await?.is_some() {
            return Ok(Err(RepoRefusal::AlreadyExists));
        }
        // Creates the row if need be (within the namespace's quota).
        self.set_immutability(name, immutability).await?;
        self.meta.ecr_undelete(name, self.now()).await?;
        if !tags.is_empty() {
            self.meta.put_repository_tags(name, tags).await?;
        }
        self.meta
            .ecr_repository(name)
            .await?
            .map(Ok)
            .ok_or_else(|| Error::internal("a created repository is not there"))
    }

    /// Delete `name` (with its images when `force`): its manifests, tags
    /// and blob links go (garbage collection frees the bytes), and so do
    /// its policies and resource tags.
    pub async fn ecr_delete_repository(
        &self,
        name: &str,
        force: bool,
    ) -> Result<std::result::Result<EcrRepoRow, RepoRefusal>> {
        validate_name(name)?;
        let Some(row) = self.meta.ecr_repository(name).await? else {
            return Ok(Err(RepoRefusal::NotFound));
        };
        if !force
            && !self
                .meta
                .ecr_images(name, None, 1, TagFilter::Any)
                .await?
                .is_empty()
        {
            return Ok(Err(RepoRefusal::NotEmpty));
        }
        let (digests, tags) = self.meta.ecr_delete_repository(name, self.now()).await?;
        for d in digests {
            if let Ok(d) = d.parse::<Digest>() {
                self.cache.drop_manifest(name, &d);
            }
        }
        for t in tags {
            self.cache.drop_tag(name, &t);
        }
        tracing::info!(repository = name, force, "repository deleted (ECR API)");
        Ok(Ok(row))
    }

    pub async fn repository_tags(&self, name: &str) -> Result<Vec<(String, String)>> {
        self.meta.repository_tags(name).await
    }

    pub async fn tag_repository(&self, name: &str, tags: &[(String, String)]) -> Result<()> {
        self.meta.put_repository_tags(name, tags).await
    }

    pub async fn untag_repository(&self, name: &str, keys: &[String]) -> Result<()> {
        self.meta.remove_repository_tags(name, keys).await
    }

    /// A page of `name`'s images, by digest.
    pub async fn ecr_images(
        &self,
        name: &str,
        after: Option<&str>,
        limit: i64,
        filter: TagFilter,
    ) -> Result<Vec<EcrImageRow>> {
        self.flush_pulls().await?;
        self.meta.ecr_images(name, after, limit, filter).await
    }

    pub async fn ecr_images_by_digest(
        &self,
        name: &str,
        digests: &[String],
    ) -> Result<Vec<EcrImageRow>> {
        self.flush_pulls().await?;
        self.meta.ecr_images_by_digest(name, digests).await
    }

    /// Keep `text` (or, none given, the repository's own policy) as the
    /// repository's preview policy; the policy's canonical text.
    pub async fn start_lifecycle_preview(&self, name: &str, text: Option<&str>) -> Result<String> {
        validate_name(name)?;
        let policy = match text {
            Some(t) => Policy::parse(t)?,
            None => self.lifecycle_policy(name).await?.ok_or_else(|| {
                Error::new(
                    ErrorCode::NotFound,
                    format!("{name} has no lifecycle policy"),
                )
            })?,
        };
        let canonical = serde_json::to_string(&policy).map_err(Error::internal)?;
        self.meta
            .set_lifecycle_preview(name, &canonical, self.now())
            .await?;
        Ok(canonical)
    }

    /// The preview started last for `name`: its policy text and what it
    /// expires now. `None`: no preview was started.
    pub async fn lifecycle_preview_results(
        &self,
        name: &str,
    ) -> Result<Option<(String, Vec<Expiry>)>> {
        validate_name(name)?;
        let Some((text, _)) = self.meta.lifecycle_preview_of(name).await? else {
            return Ok(None);
        };
        let policy = Policy::parse(&text)?;
        let expired = self.lifecycle_preview(name, Some(&policy)).await?;
        Ok(Some((text, expired)))
    }

    pub async fn pull_through_rules(&self) -> Result<Vec<PullThroughRuleRow>> {
        self.meta.pull_through_rules().await
    }

    pub async fn add_pull_through_rule(&self, rule: &PullThroughRuleRow) -> Result<bool> {
        self.meta.add_pull_through_rule(rule).await
    }

    pub async fn update_pull_through_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
    ) -> Result<bool> {
        self.meta
            .update_pull_through_rule(prefix, credential_arn, self.now())
            .await
    }

    pub async fn delete_pull_through_rule(&self, prefix: &str) -> Result<bool> {
        self.meta.delete_pull_through_rule(prefix).await
    }
}
