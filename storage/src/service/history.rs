//! Tag history: every change of a tag (push, delete, rollback), as the
//! database recorded it.

use super::Registry;
use crate::error::{Error, Result};
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
}
