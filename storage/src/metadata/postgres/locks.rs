//! Locks across nodes. Upload sessions: a lease on the session's row
//! (`lease.rs`). Blob fences and the collection lease: advisory locks
//! (`advisory.rs`) on connections of a pool of their own (a committer
//! waiting for a fence holds no connection of the main pool, so the two
//! cannot starve each other). Seeds keep the key spaces of blob fences
//! (11) and the collection lease (13) apart (7, once the uploads', is left
//! unused: nodes of before the leases may still run during an upgrade).

use super::advisory::Held;
use super::lease::{Lease, LEASE_TTL, NOW_MS};
use super::PgMeta;
use crate::blobstore::SessionLock;
use crate::error::{Error, Result};
use crate::metadata::Locks;

const FENCE: i64 = 11;
const LEASE: i64 = 13;

#[async_trait::async_trait]
impl Locks for PgMeta {
    /// Take upload `id`'s lease unless another request holds it (`None`);
    /// an unknown session is `BLOB_UPLOAD_UNKNOWN`.
    async fn try_lock_upload(&self, id: &str) -> Result<Option<SessionLock>> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let taken = sqlx::query(&format!(
            "UPDATE uploads SET lease = $2, lease_until = {NOW_MS} + $3
             WHERE id = $1 AND (lease IS NULL OR lease_until < {NOW_MS})"
        ))
        .bind(id)
        .bind(&owner)
        .bind(LEASE_TTL.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 0 {
            let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            return match known {
                Some(_) => Ok(None),
                None => Err(Error::upload_unknown(id)),
            };
        }
        self.leases.set().insert(owner.clone());
        Ok(Some(SessionLock::releasing(Lease {
            pool: self.pool.clone(),
            leases: self.leases.clone(),
            id: id.to_owned(),
            owner,
        })))
    }

    async fn enter_fence(&self, digest: &str) -> Result<SessionLock> {
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

    async fn take_fences(&self, digests: &[String]) -> Result<(Vec<String>, SessionLock)> {
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

    async fn try_gc_lease(&self) -> Result<Option<SessionLock>> {
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
