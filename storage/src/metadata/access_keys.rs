//! ECR access keys (migrations `0012`/`0013_ecr.sql`): one row per key,
//! its secret sealed by the registry (this module only stores the sealed
//! text). The same SQL on both databases: one body, [`impl_access_keys`].

use crate::error::Result;
use async_trait::async_trait;

/// An access key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessKeyRow {
    pub id: String,
    /// The account it acts as: a user name or `robot+NAME`.
    pub owner: String,
    pub sealed_secret: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[async_trait]
pub trait AccessKeys: Send + Sync {
    /// Add a key; false if the ID is taken.
    async fn add_access_key(&self, key: &AccessKeyRow) -> Result<bool>;
    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRow>>;
    /// Every key, or those of `owner`, by owner then ID.
    async fn access_keys(&self, owner: Option<&str>) -> Result<Vec<AccessKeyRow>>;
    /// Disable (`Some(time)`) or enable (`None`) a key; false if none.
    async fn set_access_key_disabled(&self, id: &str, at: Option<i64>) -> Result<bool>;
    async fn delete_access_key(&self, id: &str) -> Result<bool>;
    /// Note a use (at most once a minute is written).
    async fn touch_access_key(&self, id: &str, at: i64) -> Result<()>;
}

pub(crate) const ACCESS_KEY_COLUMNS: &str =
    "id, owner, sealed_secret, created_at, disabled_at, last_used_at";

/// [`AccessKeys`] for a dialect.
macro_rules! impl_access_keys {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::AccessKeys for $ty {
            async fn add_access_key(
                &self,
                key: &$crate::metadata::AccessKeyRow,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO access_keys (id, owner, sealed_secret, created_at, disabled_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&key.id)
                .bind(&key.owner)
                .bind(&key.sealed_secret)
                .bind(key.created_at)
                .bind(key.disabled_at)
                .bind(key.last_used_at)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn access_key(
                &self,
                id: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::AccessKeyRow>> {
                let sql = format!(
                    "SELECT {} FROM access_keys WHERE id = $1",
                    $crate::metadata::access_keys::ACCESS_KEY_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?)
            }

            async fn access_keys(
                &self,
                owner: Option<&str>,
            ) -> $crate::error::Result<Vec<$crate::metadata::AccessKeyRow>> {
                let sql = format!(
                    "SELECT {} FROM access_keys WHERE $1 IS NULL OR owner = $1 ORDER BY owner, id",
                    $crate::metadata::access_keys::ACCESS_KEY_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(owner)
                    .fetch_all(self.reader())
                    .await?)
            }

            async fn set_access_key_disabled(
                &self,
                id: &str,
                at: Option<i64>,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query("UPDATE access_keys SET disabled_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_access_key(&self, id: &str) -> $crate::error::Result<bool> {
                let done = sqlx::query("DELETE FROM access_keys WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch_access_key(&self, id: &str, at: i64) -> $crate::error::Result<()> {
                sqlx::query(
                    "UPDATE access_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2 - 60)",
                )
                .bind(id)
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_access_keys;
