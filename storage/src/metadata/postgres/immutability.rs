//! Tag immutability per repository (migration `0005_tag_immutability.sql`).

use super::PgMeta;
use crate::error::{Error, Result};
use crate::metadata::Immutability;

impl PgMeta {
    /// None: no such repository.
    pub async fn immutability(&self, repo: &str) -> Result<Option<Immutability>> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT CAST(immutable AS BIGINT), immutable_exclusions FROM repositories WHERE name = $1",
        )
        .bind(repo)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(on, exclude)| {
            Ok(Immutability {
                immutable: on != 0,
                exclude: serde_json::from_str(&exclude).map_err(Error::internal)?,
            })
        })
        .transpose()
    }

    /// Set it, creating the repository if need be (set before the first
    /// push, as on ECR).
    pub async fn set_immutability(&self, repo: &str, i: &Immutability) -> Result<()> {
        let repo_id = self.ensure_repo(repo).await?;
        sqlx::query(
            "UPDATE repositories SET immutable = $2, immutable_exclusions = $3 WHERE id = $1",
        )
        .bind(repo_id)
        .bind(i64::from(i.immutable))
        .bind(serde_json::to_string(&i.exclude).map_err(Error::internal)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
