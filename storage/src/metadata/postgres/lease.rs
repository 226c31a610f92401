//! Upload-session leases: an owner token and an expiry on PostgreSQL's
//! clock in the session's row (taken in `locks.rs`). No connection is held
//! in between, so a request that streams a body for an hour costs the pool
//! nothing while it does. One task per node renews all the leases the node
//! holds in one statement every [`RENEW_EVERY`], so the lease can be short:
//! a node that dies leaves its sessions to others within [`LEASE_TTL`],
//! inside the 10 s another request of the session waits.

use crate::blobstore::Release;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a lease lasts without renewal.
pub(super) const LEASE_TTL: Duration = Duration::from_secs(5);
/// Renewed this often while held: several renewals may fail in a row (a
/// busy database) before another node could take the session.
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// PostgreSQL's clock in milliseconds (every node reads the same clock).
pub(super) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

/// The owner tokens of the leases this node holds.
#[derive(Default)]
pub(super) struct Leases(Mutex<HashSet<String>>);

impl Leases {
    pub(super) fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renew every lease held, every [`RENEW_EVERY`], while `leases` lives.
    pub(super) fn keep(pool: PgPool, leases: Weak<Leases>) {
        tokio::spawn(async move {
            let sql = format!(
                "UPDATE uploads SET lease_until = {NOW_MS} + $2 WHERE lease = ANY($1::text[])"
            );
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let Some(leases) = leases.upgrade() else {
                    break;
                };
                let owners: Vec<String> = leases.set().iter().cloned().collect();
                drop(leases);
                if owners.is_empty() {
                    continue;
                }
                let renewed = sqlx::query(&sql)
                    .bind(&owners)
                    .bind(LEASE_TTL.as_millis() as i64)
                    .execute(&pool)
                    .await;
                if let Err(e) = renewed {
                    // A lease that runs out is taken over; the holder's
                    // save then fails its version check.
                    tracing::warn!(error = %e, held = owners.len(), "could not renew upload leases");
                }
            }
        });
    }
}

/// A lease this node holds, released when dropped.
pub(super) struct Lease {
    pub(super) pool: PgPool,
    pub(super) leases: Arc<Leases>,
    pub(super) id: String,
    pub(super) owner: String,
}

impl Lease {
    /// Stop renewing; the release to run (None: done already).
    fn take(&mut self) -> Option<(PgPool, String, String)> {
        if self.owner.is_empty() {
            return None;
        }
        self.leases.set().remove(&self.owner);
        Some((
            self.pool.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.owner),
        ))
    }
}

async fn release((pool, id, owner): (PgPool, String, String)) {
    let done = sqlx::query(
        "UPDATE uploads SET lease = NULL, lease_until = 0 WHERE id = $1 AND lease = $2",
    )
    .bind(&id)
    .bind(&owner)
    .execute(&pool)
    .await;
    if let Err(e) = done {
        // It runs out by itself.
        tracing::warn!(error = %e, upload = %id, "could not release an upload lease");
    }
}

#[async_trait::async_trait]
impl Release for Lease {
    async fn release(mut self: Box<Self>) {
        if let Some(held) = self.take() {
            release(held).await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(held) = self.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(release(held));
        }
    }
}
