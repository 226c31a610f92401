//! Blob fences and the collection lease across nodes: PostgreSQL advisory
//! locks, on connections of a pool of their own (a committer waiting for a
//! fence holds no connection of the main pool, so the two cannot starve
//! each other). PostgreSQL releases them if a node dies with its
//! connections. Seeds keep the key spaces of uploads (7), blob fences (11)
//! and the lease (13) apart.

use super::PgMeta;
use crate::blobstore::SessionLock;
use crate::error::Result;
use sqlx::pool::PoolConnection;
use sqlx::Postgres;

const FENCE: i64 = 11;
const LEASE: i64 = 13;

/// Advisory locks held on one connection until dropped.
struct Held {
    conn: Option<PoolConnection<Postgres>>,
    keys: Vec<String>,
    seed: i64,
    shared: bool,
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

impl PgMeta {
    /// Hold `digest`'s fence shared, waiting while a collector holds it.
    pub async fn enter_fence(&self, digest: &str) -> Result<SessionLock> {
        let mut conn = self.fence_pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock_shared(hashtextextended($1, $2))")
            .bind(digest)
            .bind(FENCE)
            .execute(&mut *conn)
            .await?;
        Ok(SessionLock::releasing(Held {
            conn: Some(conn),
            keys: vec![digest.to_owned()],
            seed: FENCE,
            shared: true,
        }))
    }

    /// Take exclusively the fences of those of `digests` no one holds.
    pub async fn take_fences(&self, digests: &[String]) -> Result<(Vec<String>, SessionLock)> {
        let mut conn = self.fence_pool.acquire().await?;
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT k FROM unnest($1::text[]) k WHERE pg_try_advisory_lock(hashtextextended(k, $2))",
        )
        .bind(digests)
        .bind(FENCE)
        .fetch_all(&mut *conn)
        .await?;
        Ok((
            taken.clone(),
            SessionLock::releasing(Held {
                conn: Some(conn),
                keys: taken,
                seed: FENCE,
                shared: false,
            }),
        ))
    }

    /// The collection lease: one collection at a time across all nodes.
    pub async fn try_gc_lease(&self) -> Result<Option<SessionLock>> {
        let mut conn = self.fence_pool.acquire().await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended('gc', $1))")
                .bind(LEASE)
                .fetch_one(&mut *conn)
                .await?;
        Ok(got.then(|| {
            SessionLock::releasing(Held {
                conn: Some(conn),
                keys: vec!["gc".to_owned()],
                seed: LEASE,
                shared: false,
            })
        }))
    }
}
