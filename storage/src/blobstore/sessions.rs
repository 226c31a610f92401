//! Upload-session state a store keeps outside its own process: with several
//! registry nodes, any of them may receive the next chunk of an upload, so
//! the session's bytes-so-far, hash state and multipart bookkeeping live in
//! the metadata database, and one writer at a time is enforced there too.

use crate::error::Result;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A lock that can be released and waited for (dropping it releases it
/// too, possibly a moment later).
#[async_trait]
pub trait Release: Send + Sync {
    async fn release(self: Box<Self>);
}

/// Dropped, and so released, at once.
struct OnDrop<T>(T);

#[async_trait]
impl<T: Send + Sync> Release for OnDrop<T> {
    async fn release(self: Box<Self>) {}
}

/// Held while a request writes to an upload session (or a blob fence, or
/// the collection lease); released on drop.
pub struct SessionLock(Box<dyn Release>);

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionLock")
    }
}

impl SessionLock {
    pub fn new(guard: impl Send + Sync + 'static) -> SessionLock {
        SessionLock(Box::new(OnDrop(guard)))
    }

    /// A lock whose release takes a round trip (a database lock).
    pub fn releasing(guard: impl Release + 'static) -> SessionLock {
        SessionLock(Box::new(guard))
    }

    /// Release it now, and return once it is released.
    pub async fn release(self) {
        self.0.release().await
    }
}

/// The database side of upload sessions, by the store's session key.
#[async_trait]
pub trait SessionBook: Send + Sync + 'static {
    /// `None`: no such session. Else its saved state (`None` while nothing
    /// was saved) and the state's version.
    async fn load(&self, key: &str) -> Result<Option<(Option<Vec<u8>>, i64)>>;

    /// Save `state` as version `version + 1`, if the saved version is still
    /// `version` (`false`: another writer got there first, or the session
    /// is gone).
    async fn save(&self, key: &str, version: i64, state: &[u8]) -> Result<bool>;

    /// Take the session's writer lock without waiting (`None`: another
    /// request, on this node or another, holds it). A node that dies
    /// releases its locks (PostgreSQL drops them with the connection).
    async fn try_lock(&self, key: &str) -> Result<Option<SessionLock>>;
}

/// Writer locks for one process (the embedded database serves one node).
#[derive(Default, Clone)]
pub struct LocalSessionLocks {
    held: Arc<Mutex<HashMap<String, ()>>>,
}

struct LocalGuard {
    held: Arc<Mutex<HashMap<String, ()>>>,
    key: String,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl LocalSessionLocks {
    pub fn try_lock(&self, key: &str) -> Option<SessionLock> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains_key(key) {
            return None;
        }
        held.insert(key.to_owned(), ());
        Some(SessionLock::new(LocalGuard {
            held: self.held.clone(),
            key: key.to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let locks = LocalSessionLocks::default();
        let a = locks.try_lock("s1").expect("free");
        assert!(locks.try_lock("s1").is_none());
        let b = locks.try_lock("s2").expect("another session is free");
        drop(a);
        assert!(locks.try_lock("s1").is_some());
        drop(b);
    }
}
