//! PostgreSQL advisory locks held on a connection until released or
//! dropped (blob fences and the collection lease, see `locks.rs`).
//! PostgreSQL releases them if a node dies with its connections.

use sqlx::pool::PoolConnection;
use sqlx::Postgres;

/// Advisory locks held on one connection until dropped: `keys` hashed with
/// `seed` (which keeps the key spaces of different locks apart), `shared`
/// or exclusive.
pub(super) struct Held {
    pub(super) conn: Option<PoolConnection<Postgres>>,
    pub(super) keys: Vec<String>,
    pub(super) seed: i64,
    pub(super) shared: bool,
}

impl Held {
    /// The unlock, to run on the connection (None: nothing to unlock).
    fn take(&mut self) -> Option<(PoolConnection<Postgres>, Vec<String>, i64, bool)> {
        let conn = self.conn.take()?;
        Some((conn, std::mem::take(&mut self.keys), self.seed, self.shared))
    }
}

async fn unlock(
    (mut conn, keys, seed, shared): (PoolConnection<Postgres>, Vec<String>, i64, bool),
) {
    if keys.is_empty() {
        return;
    }
    let sql = if shared {
        "SELECT pg_advisory_unlock_shared(hashtextextended(k, $2)) FROM unnest($1::text[]) k"
    } else {
        "SELECT pg_advisory_unlock(hashtextextended(k, $2)) FROM unnest($1::text[]) k"
    };
    let released = sqlx::query(sql)
        .bind(&keys)
        .bind(seed)
        .execute(&mut *conn)
        .await;
    if released.is_err() {
        // Never hand a connection that may hold locks back to the pool.
        drop(conn.detach());
    }
}

#[async_trait::async_trait]
impl crate::blobstore::Release for Held {
    async fn release(mut self: Box<Self>) {
        if let Some(held) = self.take() {
            unlock(held).await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(held) = self.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // Shutting down: closing the connection releases them.
            drop(held.0.detach());
            return;
        };
        rt.spawn(unlock(held));
    }
}
