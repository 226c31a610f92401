//! The webhook outbox (migration `0009_events.sql`): pushes and deletes
//! are written as events in the transactions that make them, and each
//! endpoint's cursor says how far it was told. The same SQL on both
//! databases: one body, [`impl_events`].

use super::Event;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Events: Send + Sync {
    /// Events after id `after`, oldest first, at most `limit`.
    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>>;
    /// An endpoint's cursor (None: never delivered to).
    async fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>>;
    async fn set_event_cursor(&self, endpoint: &str, id: i64) -> Result<()>;
    /// The newest event's id (0: none).
    async fn last_event(&self) -> Result<i64>;
    /// Forget events `id <= upto` or older than `older_than_ms`.
    async fn trim_events(&self, upto: i64, older_than_ms: i64) -> Result<u64>;
}

/// [`Events`] for a dialect. The deliverer's bookkeeping (cursors, the
/// last id) goes through the writer pool, like its writes (on SQLite; one
/// pool on PostgreSQL).
macro_rules! impl_events {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Events for $ty {
            async fn events_after(
                &self,
                after: i64,
                limit: i64,
            ) -> $crate::error::Result<Vec<$crate::metadata::Event>> {
                Ok(sqlx::query_as($crate::metadata::sql::EVENTS_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?)
            }

            async fn event_cursor(&self, endpoint: &str) -> $crate::error::Result<Option<i64>> {
                Ok(sqlx::query_scalar($crate::metadata::sql::EVENT_CURSOR)
                    .bind(endpoint)
                    .fetch_optional(self.writer())
                    .await?)
            }

            async fn set_event_cursor(&self, endpoint: &str, id: i64) -> $crate::error::Result<()> {
                sqlx::query($crate::metadata::sql::SET_EVENT_CURSOR)
                    .bind(endpoint)
                    .bind(id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn last_event(&self) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar($crate::metadata::sql::LAST_EVENT)
                    .fetch_one(self.writer())
                    .await?)
            }

            async fn trim_events(
                &self,
                upto: i64,
                older_than_ms: i64,
            ) -> $crate::error::Result<u64> {
                Ok(sqlx::query($crate::metadata::sql::TRIM_EVENTS)
                    .bind(upto)
                    .bind(older_than_ms)
                    .execute(self.writer())
                    .await?
                    .rows_affected())
            }
        }
    };
}
pub(crate) use impl_events;
