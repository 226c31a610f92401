//! A small bounded map whose entries expire: verified tokens until their
//! `exp`, password checks for a few seconds.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
    max: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(max: usize) -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            _ => None,
        }
    }

    pub fn remove(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max {
                // Still full of live entries: start over (cheap; misses
                // only cost a verification).
                map.clear();
            }
        }
        map.insert(key, (value, now + ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let c = TtlCache::new(2);
        c.insert(1, "a", Duration::from_secs(60));
        c.insert(2, "b", Duration::ZERO);
        assert_eq!(c.get(&1), Some("a"));
        assert_eq!(c.get(&2), None, "expired");
        c.insert(3, "c", Duration::from_secs(60));
        assert_eq!(c.get(&3), Some("c"));
        c.insert(4, "d", Duration::from_secs(60));
        assert!(c.map.lock().unwrap().len() <= 2);
        assert_eq!(c.get(&4), Some("d"));
    }
}
