//! Locks on SQLite: one node serves an embedded database, so every lock
//! is in this process.

use super::SqliteMeta;
use crate::blobstore::SessionLock;
use crate::error::Result;
use crate::metadata::Locks;

#[async_trait::async_trait]
impl Locks for SqliteMeta {
    async fn try_lock_upload(&self, id: &str) -> Result<Option<SessionLock>> {
        Ok(self.upload_locks.try_lock(id))
    }

    async fn enter_fence(&self, digest: &str) -> Result<SessionLock> {
        Ok(self.fences.enter(digest).await)
    }

    async fn take_fences(&self, digests: &[String]) -> Result<(Vec<String>, SessionLock)> {
        Ok(self.fences.try_take(digests))
    }

    async fn try_gc_lease(&self) -> Result<Option<SessionLock>> {
        // A key no upload id can be.
        Ok(self.upload_locks.try_lock("\0gc"))
    }
}
