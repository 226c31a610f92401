//! Failed-login limiting per client address, per user name, and per known
//! (address, user) pair.
//!
//! # Buckets
//!
//! Token buckets keyed three ways. An attempt from an *unknown* pair (this
//! address never signed in as this user, or not lately) needs a token in
//! both the address bucket and the user-name bucket: the address bucket
//! stops one client guessing many accounts, the name bucket stops many
//! clients (a botnet) guessing one account. The name bucket is the more
//! generous one, because anybody can drain it and lock out newcomers to the
//! account for a while.
//!
//! A *known* pair is an (address, user) that signed in successfully within
//! [`LimitConfig::known_ttl`]: OWASP's "device cookie" idea, with the
//! address standing in for the cookie (docker and CI keep no cookies). A
//! known pair is judged by a bucket of its own (shaped like the address
//! bucket) and nothing else. So failures on *other* accounts from the same
//! address (a shared NAT, a proxy, or the attacker next door) and a botnet
//! draining the account's name bucket never lock the account out of where
//! it is used; guesses on the account from that address still run out of
//! tokens. An attacker cannot make a pair known without the password.
//!
//! # Reservations
//!
//! A token is taken *before* the password is checked ([`LoginLimiter::reserve`],
//! atomic under the caller's lock) and given back if the check succeeds
//! ([`LoginLimiter::succeeded`]) or could not be made
//! ([`LoginLimiter::cancel`]). Checking first and charging after the
//! (tens of milliseconds) hash check would let any number of guesses sent
//! at once through while one token is left.
//!
//! Answers that need no hash check (a remembered successful check, or one
//! already in flight for the same credentials) still ask
//! [`LoginLimiter::admit`], so a throttled client learns nothing from them.
//!
//! # Keys and bounds
//!
//! IPv6 clients are keyed by their /64: one host usually owns a whole /64
//! and could otherwise rotate through 2^64 addresses.
//!
//! The maps are bounded. A full bucket carries no state, so those go first;
//! beyond that the least recently touched entry is evicted, which an attacker
//! could only exploit by spraying more distinct keys than the bound. Known
//! pairs are evicted oldest first (only successful sign-ins make them).
//!
//! Pure: callers pass `now` (an `Instant`), tests pass a fake one. Not
//! internally locked; the server wraps one limiter in a `Mutex` (each call is
//! a few hash-map lookups).

mod bucket;
#[cfg(test)]
mod tests;

use bucket::Buckets;
use std::collections::HashMap;
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
    /// How long a successful sign-in makes its (address, user) pair known.
    /// Known pairs get a bucket of their own shaped like `per_address`.
    pub known_ttl: Duration,
    /// Entries kept per map (about 100 bytes each).
    pub max_entries: usize,
}

impl Default for LimitConfig {
    /// 10 quick failures per address, then one per 6 s (600 guesses an hour
    /// at most); 20 per user name, then one per 3 s. A person mistyping a
    /// password never meets either; `docker login` retries nothing. A pair
    /// stays known for 30 days after its last successful sign-in.
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
            known_ttl: Duration::from_secs(30 * 86_400),
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

type PairKey = (AddrKey, String);

/// The tokens one attempt took, to be settled when its check is over.
#[must_use = "settle the reservation: succeeded, failed or cancel"]
#[derive(Debug)]
pub struct Reservation {
    addr: AddrKey,
    user: Option<String>,
    /// Taken from the known pair's bucket (else from the address and the
    /// user name buckets).
    known: bool,
}

/// The limiter the token endpoint, Basic auth and the web sign-in share.
#[derive(Debug)]
pub struct LoginLimiter {
    by_addr: Buckets<AddrKey>,
    by_user: Buckets<String>,
    by_pair: Buckets<PairKey>,
    /// Known pairs: when each last signed in.
    known: HashMap<PairKey, Instant>,
    known_ttl: Duration,
    max_entries: usize,
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
            by_pair: Buckets::new(cfg.per_address, cfg.max_entries),
            known: HashMap::new(),
            known_ttl: cfg.known_ttl,
            max_entries: cfg.max_entries.max(1),
        }
    }

    fn is_known(&mut self, key: &PairKey, now: Instant) -> bool {
        match self.known.get(key) {
            Some(at) if now.saturating_duration_since(*at) < self.known_ttl => true,
            Some(_) => {
                self.known.remove(key);
                false
            }
            None => false,
        }
    }

    /// Whether an attempt may go ahead, without taking anything; the known
    /// pair's key when it is one.
    fn judge(
        &mut self,
        addr: AddrKey,
        user: Option<&str>,
        now: Instant,
    ) -> Result<Option<PairKey>, RetryAfter> {
        if let Some(u) = user {
            let pair = (addr, u.to_owned());
            if self.is_known(&pair, now) {
                self.by_pair.check(&pair, now)?;
                return Ok(Some(pair));
            }
        }
        let a = self.by_addr.check(&addr, now);
        let u = match user {
            Some(u) => self.by_user.check(&u.to_owned(), now),
            None => Ok(()),
        };
        match (a, u) {
            (Err(x), Err(y)) => Err(RetryAfter(x.0.max(y.0))),
            (Err(x), _) | (_, Err(x)) => Err(x),
            _ => Ok(None),
        }
    }

    /// Before checking credentials: take a token for this attempt, or
    /// refuse it (answer 429 without looking at the password, so a locked
    /// out guess learns nothing and costs no hash time). Settle the
    /// reservation when the check is over.
    pub fn reserve(
        &mut self,
        addr: IpAddr,
        user: Option<&str>,
        now: Instant,
    ) -> Result<Reservation, RetryAfter> {
        let addr = addr_key(addr);
        let known = match self.judge(addr, user, now)? {
            Some(pair) => {
                self.by_pair.take(&pair, now);
                true
            }
            None => {
                self.by_addr.take(&addr, now);
                if let Some(u) = user {
                    self.by_user.take(&u.to_owned(), now);
                }
                false
            }
        };
        Ok(Reservation {
            addr,
            user: user.map(str::to_owned),
            known,
        })
    }

    /// May an attempt be answered without a check of its own (a remembered
    /// success, a check in flight for the same credentials)? Takes nothing.
    pub fn admit(
        &mut self,
        addr: IpAddr,
        user: Option<&str>,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        self.judge(addr_key(addr), user, now).map(|_| ())
    }

    fn refund(&mut self, r: &Reservation, now: Instant) {
        match (&r.user, r.known) {
            (Some(u), true) => self.by_pair.give(&(r.addr, u.clone()), now),
            (user, _) => {
                self.by_addr.give(&r.addr, now);
                if let Some(u) = user {
                    self.by_user.give(u, now);
                }
            }
        }
    }

    /// The credentials were right: the token goes back, and the pair is
    /// known from now on.
    pub fn succeeded(&mut self, r: Reservation, now: Instant) {
        self.refund(&r, now);
        if let Some(u) = &r.user {
            self.remember(r.addr, u, now);
        }
    }

    /// The credentials were wrong: the token stays taken.
    pub fn failed(&mut self, r: Reservation) {
        drop(r);
    }

    /// The check could not be made (too busy, the database down): the
    /// attempt proved nothing either way, so its token goes back.
    pub fn cancel(&mut self, r: Reservation, now: Instant) {
        self.refund(&r, now);
    }

    /// A success that needed no reservation (after [`LoginLimiter::admit`]).
    pub fn note_success(&mut self, addr: IpAddr, user: &str, now: Instant) {
        self.remember(addr_key(addr), user, now);
    }

    /// A failure outside any reservation (a bad refresh token): charged to
    /// the address and user buckets whatever their level.
    pub fn record_failure(&mut self, addr: IpAddr, user: Option<&str>, now: Instant) {
        let addr = addr_key(addr);
        self.by_addr.take(&addr, now);
        if let Some(u) = user {
            self.by_user.take(&u.to_owned(), now);
        }
    }

    fn remember(&mut self, addr: AddrKey, user: &str, now: Instant) {
        let key = (addr, user.to_owned());
        if !self.known.contains_key(&key) && self.known.len() >= self.max_entries {
            let ttl = self.known_ttl;
            self.known
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if self.known.len() >= self.max_entries {
                if let Some(oldest) = self
                    .known
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                {
                    self.known.remove(&oldest);
                }
            }
        }
        self.known.insert(key, now);
    }

    /// Entries held: address buckets, user buckets, known pairs (for a
    /// metric, and the tests of the bounds).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.by_addr.len(), self.by_user.len(), self.known.len())
    }
}
