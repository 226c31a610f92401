//! Tag history: every change of a tag (push, delete, rollback), as the
//! database recorded it.

use super::Registry;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::TagChange;
use crate::names::validate_name;

/// At most this many changes per answer.
const MAX_CHANGES: i64 = 1000;

impl Registry {
    /// The last `limit` changes of `repo:tag`, newest first; unknown
    /// repositories are `NAME_UNKNOWN`, a tag never seen has no changes.
    pub async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
        validate_name(repo)?;
        if !self.meta.repo_exists(repo).await? {
            return Err(Error::name_unknown(repo));
        }
        self.meta
            .tag_history(repo, tag, limit.clamp(1, MAX_CHANGES))
            .await
    }

    /// Move `repo:tag` back: to `target`, or to what it pointed at `steps`
    /// changes ago (1: the digest before the last change; a second
    /// rollback of 1 undoes the first). Recorded as a `rollback`. Returns
    /// (from, to).
    pub async fn rollback_tag(
        &self,
        repo: &str,
        tag: &str,
        target: Rollback,
    ) -> Result<(Option<String>, String)> {
        validate_name(repo)?;
        if self.tag_is_immutable(repo, tag).await? {
            return Err(Error::tag_immutable(repo, tag));
        }
        let history = self.tag_history(repo, tag, MAX_CHANGES).await?;
        let current = history.first().and_then(|c| c.new_digest.clone());
        let to = match target {
            Rollback::To(d) => d.to_string(),
            Rollback::Steps(n) => history
                .iter()
                .filter_map(|c| c.old_digest.clone())
                .nth(n.saturating_sub(1) as usize)
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::ManifestUnknown,
                        format!("{repo}:{tag} has fewer than {n} earlier digests to go back to"),
                    )
                })?,
        };
        self.meta
            .move_tag(repo, tag, &to, "rollback", self.actor())
            .await?;
        let digest: Digest = to.parse()?;
        self.cache.set_tag(repo, tag, &digest);
        Ok((current, to))
    }
}

/// Where a rollback moves a tag.
#[derive(Debug, Clone)]
pub enum Rollback {
    /// To this manifest.
    To(Digest),
    /// To the digest it held this many changes ago.
    Steps(u32),
}
