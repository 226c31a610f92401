//! Upload-session locks across nodes: a lease on the session's row (an
//! owner token and an expiry on PostgreSQL's clock), renewed while held.
//! No connection is held in between, so a request that streams a body for
//! an hour costs the pool one short statement every [`RENEW_EVERY`]. A
//! node that dies leaves its leases to expire after [`LEASE_TTL`].

use super::PgMeta;
use crate::blobstore::{Release, SessionLock};
use crate::error::{Error, Result};
use sqlx::PgPool;
use std::time::Duration;

/// How long a lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// Renewed this often while held: two renewals may fail in a row (a busy
/// database) before another node could take the session.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// PostgreSQL's clock in milliseconds (every node reads the same clock).
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

struct Lease {
    pool: PgPool,
    id: String,
    owner: String,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    fn take(&mut self) -> Option<(PgPool, String, String)> {
        let renew = self.renew.take()?;
        renew.abort();
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

impl PgMeta {
    /// Take upload `id`'s lease unless another request holds it (`None`);
    /// an unknown session is `BLOB_UPLOAD_UNKNOWN`.
    pub async fn try_lock_upload(&self, id: &str) -> Result<Option<SessionLock>> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let ttl = LEASE_TTL.as_millis() as i64;
        let taken = sqlx::query(&format!(
            "UPDATE uploads SET lease = $2, lease_until = {NOW_MS} + $3
             WHERE id = $1 AND (lease IS NULL OR lease_until < {NOW_MS})"
        ))
        .bind(id)
        .bind(&owner)
        .bind(ttl)
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
        let renew = {
            let (pool, id, owner) = (self.pool.clone(), id.to_owned(), owner.clone());
            tokio::spawn(async move {
                let sql = format!(
                    "UPDATE uploads SET lease_until = {NOW_MS} + $3 WHERE id = $1 AND lease = $2"
                );
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    match sqlx::query(&sql)
                        .bind(&id)
                        .bind(&owner)
                        .bind(ttl)
                        .execute(&pool)
                        .await
                    {
                        // The session ended, or (after failed renewals) was
                        // taken over: the holder's save will find out.
                        Ok(r) if r.rows_affected() == 0 => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, upload = %id, "could not renew an upload lease")
                        }
                    }
                }
            })
        };
        Ok(Some(SessionLock::releasing(Lease {
            pool: self.pool.clone(),
            id: id.to_owned(),
            owner,
            renew: Some(renew),
        })))
    }
}
