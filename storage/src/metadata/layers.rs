//! Layer file lists (migrations `0011`/`0012_layer_indexes.sql`): one row
//! per layer digest, removed with the blob. The same SQL on both
//! databases: one body, [`impl_layer_indexes`].

use crate::error::Result;
use async_trait::async_trait;

/// A layer's stored index, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredLayerIndex {
    /// `ready`, `too_large` or `invalid`.
    pub state: String,
    pub detail: Option<String>,
    /// The encoded list (`ready` only).
    pub data: Option<Vec<u8>>,
    pub entries: i64,
}

#[async_trait]
pub trait LayerIndexes: Send + Sync {
    async fn layer_index(&self, digest: &str) -> Result<Option<StoredLayerIndex>>;
    /// Keep `index` for `digest`, unless one is kept already (two nodes
    /// that indexed the same layer found the same list) or the blob is
    /// gone (collected meanwhile: nothing to keep).
    async fn put_layer_index(&self, digest: &str, index: &StoredLayerIndex, at: i64) -> Result<()>;
}

/// [`LayerIndexes`] for a dialect. Reads through the reader pool; the one
/// write per layer through the writer.
macro_rules! impl_layer_indexes {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::metadata::LayerIndexes for $ty {
            async fn layer_index(
                &self,
                digest: &str,
            ) -> $crate::error::Result<Option<$crate::metadata::StoredLayerIndex>> {
                Ok(sqlx::query_as($crate::metadata::sql::LAYER_INDEX)
                    .bind(digest)
                    .fetch_optional(self.reader())
                    .await?)
            }

            async fn put_layer_index(
                &self,
                digest: &str,
                index: &$crate::metadata::StoredLayerIndex,
                at: i64,
            ) -> $crate::error::Result<()> {
                sqlx::query($crate::metadata::sql::PUT_LAYER_INDEX)
                    .bind(digest)
                    .bind(&index.state)
                    .bind(&index.detail)
                    .bind(&index.data)
                    .bind(index.entries)
                    .bind(at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_layer_indexes;
