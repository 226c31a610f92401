//! Failed-login limiting per client address and per user name.
//!
//! Two token buckets per attempt, one keyed by the client address and one by
//! the user name; a failed login takes a token from both, and a login is
//! refused (HTTP 429 with `Retry-After`) while either is empty. Successful
//! logins take nothing. The address bucket stops one client guessing many
//! accounts; the name bucket stops many clients (a botnet) guessing one
//! account. The name bucket is the more generous one, because anybody can
//! drain it and lock the real user out for a while.
//!
//! IPv6 clients are keyed by their /64: one host usually owns a whole /64
//! and could otherwise rotate through 2^64 addresses.
//!
//! The maps are bounded. A full bucket carries no state, so those go first;
//! beyond that the least recently touched entry is evicted, which an attacker
//! could only exploit by spraying more distinct keys than the bound.
//!
//! Pure: callers pass `now` (an `Instant`), tests pass a fake one. Not
//! internally locked; the server wraps one limiter in a `Mutex` (each call is
//! a hash-map lookup).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One bucket's shape: `burst` failures at once, then one more per `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig {
    pub burst: u32,
    pub refill: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    pub per_address: BucketConfig,
    pub per_user: BucketConfig,
    /// Entries kept per map (about 100 bytes each).
    pub max_entries: usize,
}

impl Default for LimitConfig {
    /// 10 quick failures per address, then one per 6 s (600 guesses an hour
    /// at most); 20 per user name, then one per 3 s. A person mistyping a
    /// password never meets either; `docker login` retries nothing.
    fn default() -> Self {
        LimitConfig {
            per_address: BucketConfig {
                burst: 10,
                refill: Duration::from_secs(6),
            },
            per_user: BucketConfig {
                burst: 20,
                refill: Duration::from_secs(3),
            },
            max_entries: 100_000,
        }
    }
}

/// A refusal: try again after this long (whole seconds for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Rounded up, at least 1: the value of the `Retry-After` header.
    pub fn seconds(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available at `at`, in units of 1/1000 token for smooth refill.
    milli: u64,
    at: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    cfg: BucketConfig,
    max: usize,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(cfg: BucketConfig, max: usize) -> Self {
        Buckets {
            cfg,
            max: max.max(1),
            map: HashMap::new(),
        }
    }

    fn full(&self) -> u64 {
        u64::from(self.cfg.burst) * 1000
    }

    /// Tokens now, after refill since the last touch.
    fn level(&self, b: &Bucket, now: Instant) -> u64 {
        level_of((self.cfg, self.full()), b, now)
    }

    /// `Err` when no whole token is left, with the wait until there is.
    fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let Some(b) = self.map.get(key) else {
            return Ok(());
        };
        let level = self.level(b, now);
        if level >= 1000 {
            return Ok(());
        }
        let missing = (1000 - level) as u128;
        let wait_ns = (missing * self.cfg.refill.as_nanos()).div_ceil(1000);
        Err(RetryAfter(Duration::from_nanos(
            wait_ns.min(u64::MAX as u128) as u64,
        )))
    }

    fn take(&mut self, key: &K, now: Instant) {
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
                milli: level.saturating_sub(1000),
                at: now,
            },
        );
    }

    fn reset(&mut self, key: &K) {
        self.map.remove(key);
    }

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
        .saturating_mul(1000)
        / cfg.refill.as_nanos().max(1);
    (b.milli as u128 + gained).min(full as u128) as u64
}

/// The client key: IPv4 as is, IPv6 by /64 (IPv4-mapped IPv6 as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

fn addr_key(ip: IpAddr) -> AddrKey {
    match ip {
        IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => AddrKey::V4(u32::from(v4)),
            None => AddrKey::V6Prefix((u128::from(v6) >> 64) as u64),
        },
    }
}

/// The limiter the token endpoint and Basic auth share.
#[derive(Debug)]
pub struct LoginLimiter {
    by_addr: Buckets<AddrKey>,
    by_user: Buckets<String>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(LimitConfig::default())
    }
}

impl LoginLimiter {
    pub fn new(cfg: LimitConfig) -> Self {
        LoginLimiter {
            by_addr: Buckets::new(cfg.per_address, cfg.max_entries),
            by_user: Buckets::new(cfg.per_user, cfg.max_entries),
        }
    }

    /// Before checking credentials: may this attempt proceed? On `Err`,
    /// answer 429 without looking at the password (so a locked-out guess
    /// learns nothing, and costs no argon2 time).
    pub fn check(&self, addr: IpAddr, user: Option<&str>, now: Instant) -> Result<(), RetryAfter> {
        let a = self.by_addr.check(&addr_key(addr), now);
        let u = match user {
            Some(u) => self.by_user.check(&u.to_string(), now),
            None => Ok(()),
        };
        match (a, u) {
            (Err(x), Err(y)) => Err(RetryAfter(x.0.max(y.0))),
            (Err(x), _) | (_, Err(x)) => Err(x),
            _ => Ok(()),
        }
    }

    /// After a failed check of credentials.
    pub fn record_failure(&mut self, addr: IpAddr, user: Option<&str>, now: Instant) {
        self.by_addr.take(&addr_key(addr), now);
        if let Some(u) = user {
            self.by_user.take(&u.to_string(), now);
        }
    }

    /// After a successful login: the user's own failures are forgotten (the
    /// owner typed the password, so they were not an attack on it). The
    /// address keeps its count: an attacker with one valid account must not
    /// be able to reset its budget by signing in between guesses.
    pub fn record_success(&mut self, user: &str) {
        self.by_user.reset(&user.to_string());
    }

    /// Entries held (for a metric).
    pub fn len(&self) -> (usize, usize) {
        (self.by_addr.map.len(), self.by_user.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn cfg(addr_burst: u32, user_burst: u32, max: usize) -> LimitConfig {
        LimitConfig {
            per_address: BucketConfig {
                burst: addr_burst,
                refill: Duration::from_secs(10),
            },
            per_user: BucketConfig {
                burst: user_burst,
                refill: Duration::from_secs(5),
            },
            max_entries: max,
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn refuses_after_burst_and_says_when_to_retry() {
        let mut l = LoginLimiter::new(cfg(3, 100, 10));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(A, Some("alice"), t0).is_ok());
            l.record_failure(A, Some("alice"), t0);
        }
        let e = l.check(A, Some("alice"), t0).unwrap_err();
        assert_eq!(e.0, Duration::from_secs(10));
        assert_eq!(e.seconds(), 10);
        // Half-way through the refill: still refused, 5 s left.
        let e = l
            .check(A, Some("bob"), t0 + Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(e.seconds(), 5);
        // After one refill period one more attempt is allowed, and only one.
        let t1 = t0 + Duration::from_secs(10);
        assert!(l.check(A, None, t1).is_ok());
        l.record_failure(A, None, t1);
        assert!(l.check(A, None, t1).is_err());
        // Another address is unaffected.
        assert!(l.check(B, None, t1).is_ok());
    }

    #[test]
    fn per_user_limit_spans_addresses() {
        let mut l = LoginLimiter::new(cfg(100, 2, 10));
        let t0 = Instant::now();
        l.record_failure(A, Some("alice"), t0);
        l.record_failure(B, Some("alice"), t0);
        let e = l.check(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), Some("alice"), t0);
        assert_eq!(e.unwrap_err().seconds(), 5);
        assert!(l.check(A, Some("bob"), t0).is_ok());
        assert!(l.check(A, None, t0).is_ok());
    }

    #[test]
    fn both_exhausted_reports_the_longer_wait() {
        let mut l = LoginLimiter::new(cfg(1, 1, 10));
        let t0 = Instant::now();
        l.record_failure(A, Some("alice"), t0);
        assert_eq!(l.check(A, Some("alice"), t0).unwrap_err().seconds(), 10);
    }

    #[test]
    fn success_resets_the_user_not_the_address() {
        let mut l = LoginLimiter::new(cfg(2, 2, 10));
        let t0 = Instant::now();
        l.record_failure(A, Some("alice"), t0);
        l.record_failure(A, Some("alice"), t0);
        assert!(l.check(B, Some("alice"), t0).is_err());
        l.record_success("alice");
        assert!(l.check(B, Some("alice"), t0).is_ok());
        assert!(l.check(A, Some("alice"), t0).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_64_and_mapped_v4_as_v4() {
        let mut l = LoginLimiter::new(cfg(1, 100, 10));
        let t0 = Instant::now();
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        l.record_failure(x, None, t0);
        assert!(l.check(same64, None, t0).is_err());
        assert!(l.check(other64, None, t0).is_ok());
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        l.record_failure(A, None, t0);
        assert!(l.check(mapped, None, t0).is_err());
        assert!(l.check(IpAddr::V6(Ipv6Addr::LOCALHOST), None, t0).is_ok());
    }

    #[test]
    fn full_buckets_are_evicted_before_limited_ones() {
        let mut l = LoginLimiter::new(cfg(1, 1000, 2));
        let t0 = Instant::now();
        l.record_failure(B, None, t0); // full again at t0 + 10 s
        let t9 = t0 + Duration::from_secs(9);
        l.record_failure(A, None, t9); // limited until t0 + 19 s
        let t10 = t0 + Duration::from_secs(10);
        let c = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        l.record_failure(c, None, t10);
        assert_eq!(l.len().0, 2);
        assert!(l.check(A, None, t10).is_err(), "the limited entry was kept");
        assert!(l.check(c, None, t10).is_err(), "the new entry was kept");
    }

    #[test]
    fn maps_stay_bounded_when_every_entry_is_limited() {
        let mut l = LoginLimiter::new(cfg(1, 1, 3));
        let t0 = Instant::now();
        for i in 0..50u8 {
            let t = t0 + Duration::from_millis(u64::from(i));
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            l.record_failure(ip, Some(&format!("user{i}")), t);
            assert!(l.len().0 <= 3 && l.len().1 <= 3, "{:?}", l.len());
            // The least recently touched entry goes; the newest stays limited.
            assert!(l.check(ip, None, t).is_err());
        }
        assert!(l
            .check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), None, t0)
            .is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1001)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(7)).seconds(), 7);
    }

    #[test]
    fn default_config_allows_typos_but_stops_guessing() {
        let mut l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.record_failure(A, Some("alice"), t0);
        }
        assert!(l.check(A, Some("alice"), t0).is_ok());
        for _ in 0..7 {
            l.record_failure(A, Some("alice"), t0);
        }
        assert_eq!(l.check(A, Some("alice"), t0).unwrap_err().seconds(), 6);
    }
}
