//! Garbage collection as the registry runs it, step by step (see
//! `service/gc.rs`): each step one write transaction, retried on
//! PostgreSQL after a deadlock; a dry run all steps in one transaction
//! rolled back. The steps themselves are `gc.rs`'s, over a dialect's
//! [`super::gc::GcTx`]; this body, [`impl_collection`], is the same for
//! both.

use super::{GcClock, GcStep};
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Collection: Send + Sync {
    /// Review due manifests (at most `limit`), removing the garbage.
    async fn gc_manifests(&self, clock: GcClock, limit: i64) -> Result<GcStep>;
    /// Review due blob links (at most `limit`), removing the unreferenced.
    async fn gc_links(&self, clock: GcClock, limit: i64) -> Result<GcStep>;
    /// Blobs due for review (at most `limit`).
    async fn gc_due_blobs(&self, clock: GcClock, limit: i64) -> Result<Vec<String>>;
    /// Remove the rows of those of `digests` (whose fences the caller
    /// holds) no one uses; `forced` ones need not be due.
    async fn gc_blobs(
        &self,
        clock: GcClock,
        digests: &[String],
        forced: &[String],
    ) -> Result<GcStep>;
    /// What a collection would remove now, changing nothing.
    async fn gc_dry_run(&self, clock: GcClock) -> Result<GcStep>;
}

/// Run `$step`, a step of `gc` on the transaction `$t` (a `$tx` wrapper),
/// in a write transaction of its own, retried on PostgreSQL; `$end` it:
/// `commit` or `rollback`.
macro_rules! gc_step {
    ($self:ident, $tx:ident, |$t:ident| $step:expr, $end:ident) => {
        Ok($crate::metadata::retrying!(async {
            let mut tx = $self.begin().await?;
            let done = {
                let $t = &mut $tx(&mut tx);
                $step.await?
            };
            tx.$end().await?;
            Ok::<_, sqlx::Error>(done)
        })?)
    };
}
pub(crate) use gc_step;

/// [`Collection`] for dialect `$ty` whose `GcTx` is `$tx` (a wrapper of a
/// connection).
macro_rules! impl_collection {
    ($ty:ty, $tx:ident) => {
        #[async_trait::async_trait]
        impl $crate::metadata::Collection for $ty {
            async fn gc_manifests(
                &self,
                clock: $crate::metadata::GcClock,
                limit: i64,
            ) -> $crate::error::Result<$crate::metadata::GcStep> {
                use $crate::metadata::{collection::gc_step, gc};
                gc_step!(self, $tx, |t| gc::manifests(t, clock, limit), commit)
            }

            async fn gc_links(
                &self,
                clock: $crate::metadata::GcClock,
                limit: i64,
            ) -> $crate::error::Result<$crate::metadata::GcStep> {
                use $crate::metadata::{collection::gc_step, gc};
                gc_step!(self, $tx, |t| gc::links(t, clock, limit), commit)
            }

            async fn gc_due_blobs(
                &self,
                clock: $crate::metadata::GcClock,
                limit: i64,
            ) -> $crate::error::Result<Vec<String>> {
                use $crate::metadata::gc::{GcRows, GcTx};
                let mut conn = self.reader().acquire().await?;
                let mut tx = $tx(&mut conn);
                let cut = clock.cut(tx.now_ms().await?);
                Ok(tx.due_blobs(cut, limit).await?)
            }

            async fn gc_blobs(
                &self,
                clock: $crate::metadata::GcClock,
                digests: &[String],
                forced: &[String],
            ) -> $crate::error::Result<$crate::metadata::GcStep> {
                use $crate::metadata::{collection::gc_step, gc};
                gc_step!(self, $tx, |t| gc::blobs(t, clock, digests, forced), commit)
            }

            /// Every step, rolled back.
            async fn gc_dry_run(
                &self,
                clock: $crate::metadata::GcClock,
            ) -> $crate::error::Result<$crate::metadata::GcStep> {
                use $crate::metadata::{collection::gc_step, gc};
                gc_step!(self, $tx, |t| gc::dry_run(t, clock), rollback)
            }
        }
    };
}
pub(crate) use impl_collection;
