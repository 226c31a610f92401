//! Tag immutability per repository (ECR's `IMMUTABLE` with exclusions):
//! an immutable repository's tags are created once and never moved, by a
//! push or a rollback; excluded tags (`latest`, `dev-*`) still move.

use super::Registry;
use crate::error::{Error, Result};
use crate::metadata::Immutability;
use crate::names::validate_name;

impl Registry {
    /// A repository's setting; an unknown repository is `NAME_UNKNOWN`.
    pub async fn immutability(&self, repo: &str) -> Result<Immutability> {
        validate_name(repo)?;
        self.meta
            .immutability(repo)
            .await?
            .ok_or_else(|| Error::name_unknown(repo))
    }

    /// Set it (the repository is created if need be, so it can be set
    /// before the first push, within its namespace's repository quota).
    pub async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()> {
        validate_name(repo)?;
        let created = self.admit_new_repo(repo).await?;
        self.meta.set_immutability(repo, i).await?;
        self.note_usage(repo, i64::from(created), 0);
        Ok(())
    }

    /// Whether `repo:tag` may only be created, not moved.
    pub(crate) async fn tag_is_immutable(&self, repo: &str, tag: &str) -> Result<bool> {
        Ok(self
            .meta
            .immutability(repo)
            .await?
            .is_some_and(|i| i.protects(tag)))
    }
}
