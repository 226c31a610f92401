//! The locks of the registry's writers, which differ wholly per dialect:
//! one node serves an embedded SQLite database, so its locks live in the
//! process; nodes sharing PostgreSQL lock in the database (leases on
//! upload rows, advisory locks for blob fences and the collection lease),
//! so that a node that dies releases what it held. Each dialect implements
//! [`Locks`] in its `locks.rs`.

use crate::blobstore::SessionLock;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Locks: Send + Sync {
    /// The writer lock of upload `id`, if free (see
    /// [`crate::blobstore::SessionBook::try_lock`]).
    async fn try_lock_upload(&self, id: &str) -> Result<Option<SessionLock>>;
    /// Hold a digest's blob fence shared (see [`crate::blobstore::LocalFences`]),
    /// waiting while a collector holds it.
    async fn enter_fence(&self, digest: &str) -> Result<SessionLock>;
    /// Take the fences of those of `digests` no one holds, exclusively.
    async fn take_fences(&self, digests: &[String]) -> Result<(Vec<String>, SessionLock)>;
    /// The right to collect: one collection at a time across all nodes.
    async fn try_gc_lease(&self) -> Result<Option<SessionLock>>;
}
