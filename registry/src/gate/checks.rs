//! Password checks, bounded: the login limiter (a token reserved before the
//! check, refunded on success), a cap on argon2id checks running at once
//! (19 MiB each, on threads of their own: [`super::hash_pool`]), one check
//! for identical requests
//! arriving together, and the memory of recent successes.
//!
//! Order for each attempt: the limiter first, even before the memory of
//! successes (a throttled client must not have a guess confirmed by a
//! remembered success); then a remembered success, re-read against the
//! account (a changed password, a rotated secret or an expired robot ends
//! it at once); then a check in flight for the same credentials, joined;
//! else a check of its own: a reserved token, a slot (waited for a moment,
//! else 503), the account row and the hash.

use super::cache::TtlCache;
use super::hash_pool::HashPool;
use super::AuthError;
use auth::identity::{Robot, ScopePattern, Subject, User};
use auth::password::PasswordHasher;
use auth::ratelimit::{LimitConfig, LoginLimiter, Reservation};
use auth::Identity;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use storage::{ErrorCode, Registry};

/// How long a successful password check is remembered (argon2id costs
/// ~20 ms; `docker pull` of a big image asks for several tokens).
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(30);

/// How long an attempt waits for a check slot before 503: long enough for
/// a burst of docker's parallel token requests to pass, short enough that
/// waiting requests cannot pile up for long.
const SLOT_WAIT: Duration = Duration::from_secs(3);

/// Credentials that checked out, and the account's credential generation
/// at the time (refresh tokens issued now are bound to it).
#[derive(Debug, Clone)]
pub struct Passed {
    pub id: Arc<Identity>,
    pub generation: Arc<str>,
}

/// A check's outcome, shared by the requests that joined it.
#[derive(Clone)]
enum Verdict {
    Passed(Passed),
    Wrong,
    Busy,
    Unavailable(ErrorCode, String),
}

type Flight = Shared<BoxFuture<'static, Verdict>>;

pub(super) struct Checks {
    limiter: Mutex<LoginLimiter>,
    pool: HashPool,
    in_flight: Mutex<HashMap<[u8; 32], Flight>>,
    /// hash of user + secret -> what passed, for a short while.
    passed: TtlCache<[u8; 32], Passed>,
    hasher: PasswordHasher,
    registry: Registry,
}

fn throttled(r: auth::ratelimit::RetryAfter) -> AuthError {
    AuthError::Throttled(r.seconds())
}

const WRONG: AuthError = AuthError::Invalid("incorrect user name or password");

impl Checks {
    pub(super) fn new(limits: LimitConfig, max_checks: usize, registry: Registry) -> Checks {
        Checks {
            limiter: Mutex::new(LoginLimiter::new(limits)),
            pool: HashPool::new(max_checks),
            in_flight: Mutex::new(HashMap::new()),
            passed: TtlCache::new(10_000),
            hasher: PasswordHasher::default(),
            registry,
        }
    }

    pub(super) fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub(super) fn limiter(&self) -> MutexGuard<'_, LoginLimiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `user`'s credentials from `client`, rate-limited, checked in
    /// constant time against the stored hash.
    pub(super) async fn check(
        self: &Arc<Self>,
        user: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<Passed, AuthError> {
        let key = credential_key(user, secret);
        if let Some(hit) = self.passed.get(&key) {
            self.limiter()
                .admit(client, Some(user), Instant::now())
                .map_err(throttled)?;
            if self.still_current(&hit).await? {
                self.limiter().note_success(client, user, Instant::now());
                return Ok(hit);
            }
            // Changed since: judged afresh (an expired robot like a wrong
            // secret, hash check included).
            self.passed.remove(&key);
        }
        let (flight, joined) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match in_flight.get(&key) {
                Some(f) => {
                    self.limiter()
                        .admit(client, Some(user), now)
                        .map_err(throttled)?;
                    (f.clone(), true)
                }
                None => {
                    let r = self
                        .limiter()
                        .reserve(client, Some(user), now)
                        .map_err(throttled)?;
                    // A task of its own: it settles the reservation and
                    // frees the slot even if every asker goes away.
                    let task = tokio::spawn(self.clone().run(key, user.into(), secret.into(), r));
                    let f = async move {
                        task.await.unwrap_or_else(|e| {
                            Verdict::Unavailable(
                                ErrorCode::Internal,
                                format!("password check: {e}"),
                            )
                        })
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key, f.clone());
                    (f, false)
                }
            }
        };
        match flight.await {
            Verdict::Passed(p) => {
                if joined {
                    self.limiter().note_success(client, user, Instant::now());
                }
                Ok(p)
            }
            Verdict::Wrong => Err(WRONG),
            Verdict::Busy => {
                crate::observe::metrics::password_check_busy();
                Err(AuthError::Unavailable(storage::Error::new(
                    ErrorCode::Unavailable,
                    "too many password checks at once; retry in a moment",
                )))
            }
            Verdict::Unavailable(code, message) => {
                Err(AuthError::Unavailable(storage::Error::new(code, message)))
            }
        }
    }

    /// One check, start to end: the verdict, the reservation settled, the
    /// success remembered, the flight over.
    async fn run(
        self: Arc<Self>,
        key: [u8; 32],
        user: String,
        secret: String,
        r: Reservation,
    ) -> Verdict {
        let verdict = self.lookup_and_verify(&user, secret).await;
        {
            let mut limiter = self.limiter();
            match &verdict {
                Verdict::Passed(_) => limiter.succeeded(r, Instant::now()),
                Verdict::Wrong => limiter.failed(r),
                // Nothing was learnt about the password.
                Verdict::Busy | Verdict::Unavailable(..) => limiter.cancel(r, Instant::now()),
            }
        }
        if let Verdict::Passed(p) = &verdict {
            self.passed.insert(key, p.clone(), CREDENTIAL_CACHE_TTL);
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        verdict
    }

    /// The account `user` names and whether `secret` is its own. The hash
    /// check runs for unknown names and expired robots too, so neither
    /// answer nor timing tells them from a wrong secret.
    async fn lookup_and_verify(&self, user: &str, secret: String) -> Verdict {
        let now = auth::now_unix();
        let accounts = self.registry.accounts();
        let found = match Subject::parse(user) {
            Ok(Subject::User(name)) => accounts.user(&name).await.map(|row| {
                row.map(|row| {
                    let id = user_identity(&row);
                    (row.password_hash, id, row.credential_gen)
                })
            }),
            Ok(Subject::Robot(name)) => accounts.robot(&name).await.map(|row| {
                row.map(|row| {
                    let id = Identity::Robot(robot_identity(&row));
                    (row.secret_hash, id, row.credential_gen)
                })
            }),
            _ => Ok(None),
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => return Verdict::Unavailable(e.code, e.message),
        };
        let Some(slot) = self.pool.slot(SLOT_WAIT).await else {
            return Verdict::Busy;
        };
        let hasher = self.hasher.clone();
        let hash = found.as_ref().map(|(h, _, _)| h.clone());
        let ok = self
            .pool
            .run(slot, move || {
                crate::observe::metrics::password_check();
                match hash {
                    Some(h) => hasher.verify(&secret, &h),
                    None => hasher.verify_unknown(&secret),
                }
            })
            .await
            .unwrap_or(false);
        match found {
            Some((_, id, generation)) if ok && id.is_active(now) => Verdict::Passed(Passed {
                id: Arc::new(id),
                generation: generation.into(),
            }),
            _ => Verdict::Wrong,
        }
    }

    /// Whether a remembered success still stands: the account is there,
    /// with the same credential generation, and (a robot) not expired.
    async fn still_current(&self, p: &Passed) -> Result<bool, AuthError> {
        let accounts = self.registry.accounts();
        let generation = match &*p.id {
            Identity::User(u) => accounts.user(&u.name).await?.map(|r| r.credential_gen),
            Identity::Robot(r) => accounts.robot(&r.name).await?.map(|r| r.credential_gen),
            Identity::Anonymous => None,
        };
        Ok(generation.as_deref() == Some(&*p.generation) && p.id.is_active(auth::now_unix()))
    }
}

fn credential_key(user: &str, secret: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(user.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    h.finalize().into()
}

pub(super) fn user_identity(row: &storage::metadata::UserRow) -> Identity {
    Identity::User(User {
        name: row.name.clone(),
        admin: row.admin,
        groups: row.groups.clone(),
    })
}

pub(super) fn robot_identity(row: &storage::metadata::RobotRow) -> Robot {
    Robot {
        name: row.name.clone(),
        scopes: row
            .scopes
            .iter()
            .filter_map(|s| s.parse::<ScopePattern>().ok())
            .collect(),
        expires_at: row.expires_at.map(|t| t.max(0) as u64),
    }
}
