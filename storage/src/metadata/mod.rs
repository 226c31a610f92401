//! The metadata database: repositories, blob links, manifests, tags,
//! upload sessions and accounts. All SQL of the registry lives in this
//! module, once per database: SQLite (the embedded default, `sqlite/`) and
//! PostgreSQL (several stateless nodes, `postgres/`), behind [`MetaStore`],
//! which the domain code calls without knowing which.
//!
//! [`MetaStore`] is one trait per concern, each in its own file here, so a
//! dialect can be read one concern at a time. Where both dialects run the
//! same SQL, the concern's file also holds the one body both use: a macro
//! that implements the trait for a dialect type. `shared_concerns!`
//! expands them for each dialect: [`Repositories`], [`Manifests`],
//! [`Uploads`], [`Browse`], [`Audit`], [`Accounts`], [`Lifecycle`],
//! [`Events`], [`LayerIndexes`], [`AccessKeys`], [`Ecr`]; [`Collection`] too, from each dialect's `gc.rs`, over the
//! dialect's `gc::GcTx`. Only what differs lives in `sqlite/` and
//! `postgres/`: the writes of a push ([`Pushes`]), the locks ([`Locks`]),
//! what a collection step may act on (`gc::GcTx`), opening the database
//! and the hooks below.
//!
//! What a dialect type gives the shared bodies (inherent items, so a
//! macro's `self.x()` finds them without imports):
//! - `reader()` and `writer()`: the pools for reads and for writes
//!   (SQLite has two, one writer at a time; PostgreSQL one for both);
//! - `begin()`: a write transaction (SQLite takes the write lock up front);
//! - `insert_repo()`: create a repository unless it exists, its id
//!   (dialects differ in how a race of two creators ends); `repo_ids`, a
//!   [`RepoIds`] cache;
//! - `LIKE`: the case-insensitive `LIKE` operator.

mod access_keys;
mod accounts;
mod audit;
mod browse;
mod collection;
mod ecr;
mod events;
pub mod gc;
mod layers;
mod lifecycle;
mod locks;
mod manifests;
pub mod postgres;
mod pushes;
mod repositories;
pub(crate) mod sql;
pub mod sqlite;
mod types;
mod uploads;

pub use access_keys::{AccessKeyRow, AccessKeys};
pub use accounts::Accounts;
pub use audit::Audit;
pub use browse::Browse;
pub use collection::Collection;
pub use ecr::{Ecr, EcrImageRow, EcrRepoRow, PullThroughRuleRow, TagFilter};
pub use events::Events;
pub use layers::{LayerIndexes, StoredLayerIndex};
pub use lifecycle::Lifecycle;
pub use locks::Locks;
pub use manifests::Manifests;
pub use pushes::{NewManifest, Pushes};
pub(crate) use repositories::RepoIds;
pub use repositories::Repositories;
pub use sqlite::busy;
pub use types::*;
pub use uploads::Uploads;

use crate::error::Result;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Everything the registry asks of its metadata database: the concerns,
/// and a liveness probe and a change feed.
#[async_trait]
pub trait MetaStore:
    Repositories
    + Manifests
    + Pushes
    + Uploads
    + Locks
    + Browse
    + Audit
    + Accounts
    + Lifecycle
    + Events
    + Collection
    + LayerIndexes
    + AccessKeys
    + Ecr
    + 'static
{
    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;

    /// Tell `on` of every change other nodes make to what this node
    /// caches; false if this database has one node only (nothing to hear).
    fn watch(&self, _on: Arc<dyn Fn(Invalidation) + Send + Sync>) -> bool {
        false
    }
}

/// Implement, for dialect `$ty`, every concern (or part of one) whose SQL
/// both dialects run as it is; see the module's doc for what `$ty` gives.
macro_rules! shared_concerns {
    ($ty:ty) => {
        $crate::metadata::repositories::impl_repositories!($ty);
        $crate::metadata::manifests::impl_manifests!($ty);
        $crate::metadata::pushes::impl_push_helpers!($ty);
        $crate::metadata::uploads::impl_uploads!($ty);
        $crate::metadata::browse::impl_browse!($ty);
        $crate::metadata::audit::impl_audit!($ty);
        $crate::metadata::accounts::impl_accounts!($ty);
        $crate::metadata::lifecycle::impl_lifecycle!($ty);
        $crate::metadata::events::impl_events!($ty);
        $crate::metadata::layers::impl_layer_indexes!($ty);
        $crate::metadata::access_keys::impl_access_keys!($ty);
        $crate::metadata::ecr::impl_ecr!($ty);
    };
}
pub(crate) use shared_concerns;

/// Attempts of a transaction that fails retryably.
pub(crate) const RETRIES: usize = 5;

/// Whether `e` is worth running the transaction again: a serialization
/// failure (40001) or a deadlock (40P01). Only PostgreSQL, with concurrent
/// writers, reports these; SQLite's writers take the lock up front (BEGIN
/// IMMEDIATE), so there a transaction always runs once.
pub(crate) fn retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40001") | Some("40P01")))
}

/// Run `$body` (a future of a whole transaction) again while it fails
/// retryably, at most [`RETRIES`] times.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            match $body.await {
                Err(e)
                    if attempt + 1 < $crate::metadata::RETRIES
                        && $crate::metadata::retryable(&e) =>
                {
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retrying;

/// The metadata database in use.
#[derive(Clone)]
pub struct Metadata(Arc<dyn MetaStore>);

impl Metadata {
    pub fn new(store: impl MetaStore) -> Metadata {
        Metadata(Arc::new(store))
    }

    /// The embedded SQLite database at `path` (see [`sqlite::SqliteMeta::open`]).
    pub async fn open_sqlite(
        path: &std::path::Path,
        busy_timeout: std::time::Duration,
    ) -> Result<Metadata> {
        Ok(Metadata::new(
            sqlite::SqliteMeta::open(path, busy_timeout).await?,
        ))
    }
}

impl Metadata {
    /// The PostgreSQL database at `url` (see [`postgres::PgMeta::open`]).
    pub async fn open_postgres(url: &str, busy_timeout: std::time::Duration) -> Result<Metadata> {
        Ok(Metadata::new(
            postgres::PgMeta::open(url, busy_timeout).await?,
        ))
    }
}

impl std::ops::Deref for Metadata {
    type Target = dyn MetaStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
