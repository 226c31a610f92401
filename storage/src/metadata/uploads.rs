//! Upload sessions once created: whether they exist, their saved state
//! (a version number makes concurrent saves safe), their end and the
//! purge of stale ones. The same SQL on both databases: one body,
//! [`impl_uploads`]. Creating a session is a push's write ([`super::Pushes`])
//! and a session's writer lock differs per dialect ([`super::Locks`]).

use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Uploads: Send + Sync {
    /// True when upload `id` exists and belongs to `repo`.
    async fn upload_in_repo(&self, id: &str, repo: &str) -> Result<bool>;
    async fn touch_upload(&self, id: &str) -> Result<()>;
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    /// The saved state of upload `id` and its version, if the session exists.
    async fn upload_state(&self, id: &str) -> Result<Option<(Option<Vec<u8>>, i64)>>;
    /// Save the state of upload `id` if it is still at `version` (no other
    /// request changed it meanwhile); false if it was.
    async fn save_upload_state(&self, id: &str, version: i64, state: &[u8]) -> Result<bool>;
    /// `(id, repository)` of the sessions not touched since `before` (unix
    /// seconds), or of all sessions.
    async fn uploads(&self, before: Option<i64>) -> Result<Vec<(String, String)>>;
}

/// [`Uploads`] for a dialect. `upload_state` reads through the writer pool,
/// like the save that follows it (on SQLite; one pool on PostgreSQL).
macro_rules! impl_uploads {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Uploads for $ty {
            async fn upload_in_repo(&self, id: &str, repo: &str) -> $crate::error::Result<bool> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS(SELECT 1 FROM uploads WHERE id = $1 AND repo = $2)",
                )
                .bind(id)
                .bind(repo)
                .fetch_one(self.reader())
                .await?)
            }

            async fn touch_upload(&self, id: &str) -> $crate::error::Result<()> {
                sqlx::query("UPDATE uploads SET updated_at = $1 WHERE id = $2")
                    .bind($crate::metadata::now())
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_upload(&self, id: &str) -> $crate::error::Result<bool> {
                let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn upload_state(
                &self,
                id: &str,
            ) -> $crate::error::Result<Option<(Option<Vec<u8>>, i64)>> {
                Ok(
                    sqlx::query_as("SELECT state, version FROM uploads WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.writer())
                        .await?,
                )
            }

            async fn save_upload_state(
                &self,
                id: &str,
                version: i64,
                state: &[u8],
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "UPDATE uploads SET state = $3, version = version + 1, updated_at = $4
                     WHERE id = $1 AND version = $2",
                )
                .bind(id)
                .bind(version)
                .bind(state)
                .bind($crate::metadata::now())
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn uploads(
                &self,
                before: Option<i64>,
            ) -> $crate::error::Result<Vec<(String, String)>> {
                // CAST: PostgreSQL cannot type a parameter seen only in IS NULL.
                Ok(sqlx::query_as(
                    "SELECT id, repo FROM uploads WHERE CAST($1 AS BIGINT) IS NULL OR updated_at < $1",
                )
                .bind(before)
                .fetch_all(self.reader())
                .await?)
            }
        }
    };
}
pub(crate) use impl_uploads;
