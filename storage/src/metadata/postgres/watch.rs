//! Hearing other nodes' writes: a `LISTEN registry_cache` connection whose
//! notifications (sent by the triggers of migration 0003 when a transaction
//! commits) become [`Invalidation`]s for this node's caches. While the
//! connection is down, notifications are lost, so the caches are told to
//! hold nothing ([`Invalidation::Lost`]) until it is back.

use crate::metadata::Invalidation;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

pub const CHANNEL: &str = "registry_cache";

/// A notification's payload as an invalidation (`None`: not ours).
pub fn parse(payload: &str) -> Option<Invalidation> {
    let mut f = payload.splitn(3, '\t');
    let (kind, repo, key) = (f.next()?, f.next()?.to_owned(), f.next()?.to_owned());
    Some(match kind {
        "tag" => Invalidation::Tag { repo, tag: key },
        "manifest" => Invalidation::Manifest { repo, digest: key },
        "link" => Invalidation::Link { repo, digest: key },
        _ => return None,
    })
}

/// Listen on `pool`'s database for ever (until the runtime stops),
/// reconnecting as needed.
pub(super) fn listen(pool: sqlx::PgPool, on: Arc<dyn Fn(Invalidation) + Send + Sync>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            on(Invalidation::Lost);
            let listener = async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            }
            .await;
            let mut listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; caching off until it can");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            on(Invalidation::Listening);
            // `try_recv` answers `None` when the connection is lost.
            while let Ok(Some(n)) = listener.try_recv().await {
                match parse(n.payload()) {
                    Some(inv) => on(inv),
                    None => tracing::warn!(payload = n.payload(), "unknown cache notification"),
                }
            }
            tracing::warn!("lost the connection that hears other nodes' changes; reconnecting");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            parse("tag\ta/b\tv1"),
            Some(Invalidation::Tag {
                repo: "a/b".into(),
                tag: "v1".into()
            })
        );
        assert_eq!(
            parse("link\tr\tsha256:00"),
            Some(Invalidation::Link {
                repo: "r".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(parse("tag\tonly-two"), None);
        assert_eq!(parse("other\tr\tk"), None);
    }
}
