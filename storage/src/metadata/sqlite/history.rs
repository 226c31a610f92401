//! Reads of the tag history, which triggers on `tags` write (migration
//! `0004_tag_history.sql`).

use super::SqliteMeta;
use crate::error::Result;
use crate::metadata::TagChange;

impl SqliteMeta {
    pub async fn tag_history(&self, repo: &str, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
        let rows: Vec<(Option<String>, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT h.old_digest, h.new_digest, h.action, h.at FROM tag_history h
             JOIN repositories r ON r.id = h.repo_id
             WHERE r.name = $1 AND h.tag = $2
             ORDER BY h.id DESC LIMIT $3",
        )
        .bind(repo)
        .bind(tag)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(old_digest, new_digest, action, at)| TagChange {
                old_digest,
                new_digest,
                action,
                at,
            })
            .collect())
    }
}
