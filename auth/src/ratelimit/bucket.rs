//! Token buckets in a bounded map: the mechanism under [`super::LoginLimiter`].

use super::{BucketConfig, RetryAfter};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// One unit of a bucket's level (levels are kept in 1/1000 token, so that
/// refill is smooth).
const TOKEN: u64 = 1000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available at `at`, in 1/1000 token.
    milli: u64,
    at: Instant,
}

/// Buckets by key. A key without an entry has a full bucket: a full bucket
/// carries no state, so entries exist only for keys that lost tokens.
#[derive(Debug)]
pub(super) struct Buckets<K> {
    cfg: BucketConfig,
    max: usize,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(super) fn new(cfg: BucketConfig, max: usize) -> Self {
        Buckets {
            cfg,
            max: max.max(1),
            map: HashMap::new(),
        }
    }

    fn full(&self) -> u64 {
        u64::from(self.cfg.burst) * TOKEN
    }

    /// Tokens now, after refill since the last touch.
    fn level(&self, b: &Bucket, now: Instant) -> u64 {
        level_of((self.cfg, self.full()), b, now)
    }

    /// `Err` when no whole token is left, with the wait until there is.
    pub(super) fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let Some(b) = self.map.get(key) else {
            return Ok(());
        };
        let level = self.level(b, now);
        if level >= TOKEN {
            return Ok(());
        }
        let missing = u128::from(TOKEN - level);
        let wait_ns = (missing * self.cfg.refill.as_nanos()).div_ceil(u128::from(TOKEN));
        Err(RetryAfter(Duration::from_nanos(
            wait_ns.min(u128::from(u64::MAX)) as u64,
        )))
    }

    /// Take one token (or what is left of one: never below zero).
    pub(super) fn take(&mut self, key: &K, now: Instant) {
        let level = match self.map.get(key) {
            Some(b) => self.level(b, now),
            None => {
                self.make_room(now);
                self.full()
            }
        };
        self.map.insert(
            key.clone(),
            Bucket {
                milli: level.saturating_sub(TOKEN),
                at: now,
            },
        );
    }

    /// Give one token back (a reservation that turned out not to be a
    /// failure). A bucket that is full again is dropped; one evicted in
    /// the meantime was full already as far as anyone can tell.
    pub(super) fn give(&mut self, key: &K, now: Instant) {
        let full = self.full();
        let Some(b) = self.map.get(key) else {
            return;
        };
        let level = (self.level(b, now) + TOKEN).min(full);
        if level >= full {
            self.map.remove(key);
        } else {
            self.map.insert(
                key.clone(),
                Bucket {
                    milli: level,
                    at: now,
                },
            );
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Before adding a key to a full map: full buckets go first, then the
    /// least recently touched one (an attacker could only exploit that by
    /// spraying more distinct keys than the bound).
    fn make_room(&mut self, now: Instant) {
        if self.map.len() < self.max {
            return;
        }
        let full = self.full();
        let cfg = (self.cfg, full);
        self.map.retain(|_, b| level_of(cfg, b, now) < full);
        if self.map.len() >= self.max {
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
    }
}

fn level_of((cfg, full): (BucketConfig, u64), b: &Bucket, now: Instant) -> u64 {
    let gained = now
        .saturating_duration_since(b.at)
        .as_nanos()
        .saturating_mul(u128::from(TOKEN))
        / cfg.refill.as_nanos().max(1);
    (u128::from(b.milli) + gained).min(u128::from(full)) as u64
}
