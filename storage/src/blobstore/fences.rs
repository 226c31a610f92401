//! Blob fences: what keeps garbage collection from deleting a blob's bytes
//! while a push puts the same digest in place.
//!
//! A push commits a blob in two steps, bytes then database link; a
//! collection deletes in two steps too, database rows then bytes. Without a
//! fence, a push of a digest the collector is removing could put its bytes
//! in place and link them just before the collector deletes "its" object
//! under the same name, leaving a link to nothing. So committers (an upload
//! finishing, a mount) hold the digest's fence shared from before the bytes
//! are placed until the link is committed, and the collector holds it
//! exclusively from its last liveness check until the bytes are gone; it
//! never waits for one (a busy digest is left for the next run).
//!
//! With one node the fences are in this process; several nodes on
//! PostgreSQL share advisory locks (see `metadata::postgres`).

use super::SessionLock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    shared: usize,
    exclusive: bool,
}

#[derive(Default)]
struct Inner {
    held: Mutex<HashMap<String, State>>,
    freed: Notify,
}

/// Fences of one process.
#[derive(Default, Clone)]
pub struct LocalFences {
    inner: Arc<Inner>,
}

struct Shared {
    inner: Arc<Inner>,
    digest: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = held.get_mut(&self.digest) {
            s.shared -= 1;
            if s.shared == 0 && !s.exclusive {
                held.remove(&self.digest);
            }
        }
    }
}

struct Exclusive {
    inner: Arc<Inner>,
    digests: Vec<String>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        for d in &self.digests {
            held.remove(d);
        }
        drop(held);
        self.inner.freed.notify_waiters();
    }
}

impl LocalFences {
    /// Hold `digest`'s fence shared (waiting while a collector holds it).
    pub async fn enter(&self, digest: &str) -> SessionLock {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between wakes us.
            freed.as_mut().enable();
            {
                let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
                let s = held.entry(digest.to_owned()).or_default();
                if !s.exclusive {
                    s.shared += 1;
                    return SessionLock::new(Shared {
                        inner: self.inner.clone(),
                        digest: digest.to_owned(),
                    });
                }
            }
            freed.await;
        }
    }

    /// Take the fences of those of `digests` nobody holds, exclusively;
    /// returns which, and one guard releasing them all.
    pub fn try_take(&self, digests: &[String]) -> (Vec<String>, SessionLock) {
        let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        for d in digests {
            if !held.contains_key(d) {
                held.insert(
                    d.clone(),
                    State {
                        shared: 0,
                        exclusive: true,
                    },
                );
                taken.push(d.clone());
            }
        }
        let guard = SessionLock::new(Exclusive {
            inner: self.inner.clone(),
            digests: taken.clone(),
        });
        (taken, guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn collector_skips_held_digests_and_committers_wait_for_it() {
        let fences = LocalFences::default();
        let a = fences.enter("a").await;
        let (taken, guard) = fences.try_take(&["a".into(), "b".into()]);
        assert_eq!(taken, vec!["b".to_string()], "a is held by a committer");
        // A committer of b waits until the collector lets go.
        let f2 = fences.clone();
        let waiter = tokio::spawn(async move { f2.enter("b").await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        let b = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("released")
            .unwrap();
        // Both committers hold now: nothing can be taken.
        let (taken, _g) = fences.try_take(&["a".into(), "b".into()]);
        assert!(taken.is_empty());
        drop((a, b, _g));
        let (taken, _g) = fences.try_take(&["a".into(), "b".into()]);
        assert_eq!(taken.len(), 2);
    }
}
