//! The tag history, which triggers on `tags` write (migration
//! `0004_tag_history.sql`), and moves of a tag that name their action.

use super::SqliteMeta;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::sql;
use crate::metadata::{now, TagChange};

impl SqliteMeta {
    pub async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
        let rows: Vec<crate::metadata::TagChangeRow> = sqlx::query_as(sql::TAG_HISTORY)
            .bind(repo)
            .bind(tag)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(TagChange::from).collect())
    }

    /// Point `repo:tag` at `digest` (a manifest of the repository), and
    /// record the change as `action` (the trigger records a push; this
    /// renames it in the same transaction). False when the tag already
    /// points there.
    pub async fn move_tag(
        &self,
        repo: &str,
        tag: &str,
        digest: &str,
        action: &str,
        actor: Option<&str>,
    ) -> Result<bool> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Err(Error::name_unknown(repo));
        };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
            .bind(now())
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
            .bind(crate::metadata::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
