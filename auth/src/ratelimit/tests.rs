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
        known_ttl: Duration::from_secs(3600),
        max_entries: max,
    }
}

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// A wrong password from `addr` for `user`, which must be let through.
fn fail(l: &mut LoginLimiter, addr: IpAddr, user: Option<&str>, now: Instant) {
    let r = l.reserve(addr, user, now).expect("not throttled yet");
    l.failed(r);
}

/// A right password from `addr` for `user`, which must be let through.
fn succeed(l: &mut LoginLimiter, addr: IpAddr, user: &str, now: Instant) {
    let r = l.reserve(addr, Some(user), now).expect("not throttled");
    l.succeeded(r, now);
}

#[test]
fn refuses_after_burst_and_says_when_to_retry() {
    let mut l = LoginLimiter::new(cfg(3, 100, 10));
    let t0 = Instant::now();
    for _ in 0..3 {
        fail(&mut l, A, Some("alice"), t0);
    }
    let e = l.reserve(A, Some("alice"), t0).unwrap_err();
    assert_eq!(e.0, Duration::from_secs(10));
    assert_eq!(e.seconds(), 10);
    // Half-way through the refill: still refused, 5 s left.
    let e = l
        .reserve(A, Some("bob"), t0 + Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(e.seconds(), 5);
    // After one refill period one more attempt is allowed, and only one.
    let t1 = t0 + Duration::from_secs(10);
    fail(&mut l, A, None, t1);
    assert!(l.reserve(A, None, t1).is_err());
    // Another address is unaffected.
    assert!(l.admit(B, None, t1).is_ok());
}

#[test]
fn reservations_taken_at_once_never_exceed_the_burst() {
    // The issue: 200 guesses sent at once all passed a check that only
    // read the bucket, since each was charged after its hash check.
    let mut l = LoginLimiter::new(cfg(10, 20, 1000));
    let t0 = Instant::now();
    let held: Vec<Reservation> = (0..200)
        .filter_map(|i| l.reserve(A, Some(&format!("user{}", i % 3)), t0).ok())
        .collect();
    assert_eq!(held.len(), 10, "one address, burst 10");
    // One user from many addresses: the name bucket's burst.
    let held_user: Vec<Reservation> = (0..200u8)
        .filter_map(|i| l.reserve(ip(i), Some("carol"), t0).ok())
        .collect();
    assert_eq!(held_user.len(), 20, "one name, burst 20");
    for r in held.into_iter().chain(held_user) {
        l.failed(r);
    }
    assert!(l.admit(A, Some("dave"), t0).is_err());
}

#[test]
fn success_and_cancel_give_the_token_back() {
    let mut l = LoginLimiter::new(cfg(2, 100, 10));
    let t0 = Instant::now();
    let r1 = l.reserve(A, Some("alice"), t0).unwrap();
    let r2 = l.reserve(A, Some("bob"), t0).unwrap();
    assert!(l.reserve(A, Some("carol"), t0).is_err(), "both tokens held");
    l.succeeded(r1, t0);
    l.cancel(r2, t0);
    // Both back: two more failures fit, a third does not.
    fail(&mut l, A, Some("carol"), t0);
    fail(&mut l, A, Some("carol"), t0);
    assert!(l.reserve(A, Some("carol"), t0).is_err());
    // A cancelled attempt proved nothing: bob is not known from A.
    assert!(l.reserve(A, Some("bob"), t0).is_err());
    // alice is: her own bucket lets her in.
    succeed(&mut l, A, "alice", t0);
}

#[test]
fn refunds_never_exceed_the_burst() {
    let mut l = LoginLimiter::new(cfg(2, 100, 10));
    let t0 = Instant::now();
    let r = l.reserve(A, None, t0).unwrap();
    // Refilled completely while the check ran: the refund adds nothing.
    let t1 = t0 + Duration::from_secs(60);
    l.cancel(r, t1);
    fail(&mut l, A, None, t1);
    fail(&mut l, A, None, t1);
    assert!(l.reserve(A, None, t1).is_err(), "still a burst of 2");
}

#[test]
fn admit_takes_nothing_and_refuses_the_throttled() {
    let mut l = LoginLimiter::new(cfg(1, 100, 10));
    let t0 = Instant::now();
    for _ in 0..5 {
        assert!(l.admit(A, Some("alice"), t0).is_ok());
    }
    fail(&mut l, A, Some("alice"), t0);
    assert_eq!(l.admit(A, Some("alice"), t0).unwrap_err().seconds(), 10);
    assert_eq!(l.admit(A, Some("bob"), t0).unwrap_err().seconds(), 10);
    assert!(l.admit(B, Some("alice"), t0).is_ok());
}

#[test]
fn per_user_limit_spans_addresses() {
    let mut l = LoginLimiter::new(cfg(100, 2, 10));
    let t0 = Instant::now();
    fail(&mut l, A, Some("alice"), t0);
    fail(&mut l, B, Some("alice"), t0);
    let e = l.reserve(ip(9), Some("alice"), t0);
    assert_eq!(e.unwrap_err().seconds(), 5);
    assert!(l.admit(A, Some("bob"), t0).is_ok());
    assert!(l.admit(A, None, t0).is_ok());
}

#[test]
fn both_exhausted_reports_the_longer_wait() {
    let mut l = LoginLimiter::new(cfg(1, 1, 10));
    let t0 = Instant::now();
    fail(&mut l, A, Some("alice"), t0);
    assert_eq!(l.admit(A, Some("alice"), t0).unwrap_err().seconds(), 10);
}

#[test]
fn a_known_pair_is_not_locked_out_by_failures_on_other_accounts() {
    let mut l = LoginLimiter::new(cfg(3, 100, 10));
    let t0 = Instant::now();
    succeed(&mut l, A, "alice", t0);
    // Someone at the same address sprays other accounts until throttled.
    for i in 0..3 {
        fail(&mut l, A, Some(&format!("victim{i}")), t0);
    }
    assert!(l.reserve(A, Some("victim9"), t0).is_err());
    assert!(l.reserve(A, None, t0).is_err());
    // An account never signed in from A is refused: it could be a guess.
    assert!(l.admit(A, Some("bob"), t0).is_err());
    // alice, known from A, is judged by her own bucket: untouched.
    succeed(&mut l, A, "alice", t0);
    assert!(l.admit(A, Some("alice"), t0).is_ok());
}

#[test]
fn guesses_on_a_known_pair_run_out_of_its_own_tokens() {
    let mut l = LoginLimiter::new(cfg(3, 100, 10));
    let t0 = Instant::now();
    succeed(&mut l, A, "alice", t0);
    for _ in 0..3 {
        fail(&mut l, A, Some("alice"), t0);
    }
    assert_eq!(l.reserve(A, Some("alice"), t0).unwrap_err().seconds(), 10);
    // The address bucket was not charged: other accounts' known pairs and
    // new ones from A are unaffected.
    assert!(l.admit(A, Some("bob"), t0).is_ok());
    // alice from elsewhere is an unknown pair, judged by the address and
    // name buckets, which the guesses on the pair did not touch.
    succeed(&mut l, B, "alice", t0);
    // One refill later, one more attempt on the pair.
    let t1 = t0 + Duration::from_secs(10);
    fail(&mut l, A, Some("alice"), t1);
    assert!(l.admit(A, Some("alice"), t1).is_err());
}

#[test]
fn a_botnet_draining_an_account_does_not_lock_it_out_where_it_is_known() {
    let mut l = LoginLimiter::new(cfg(100, 5, 1000));
    let t0 = Instant::now();
    succeed(&mut l, A, "alice", t0);
    for i in 0..5 {
        fail(&mut l, ip(i), Some("alice"), t0);
    }
    // Newcomers to the account wait for the name bucket...
    assert!(l.admit(ip(200), Some("alice"), t0).is_err());
    assert!(l.admit(B, Some("alice"), t0).is_err());
    // ...its known place does not.
    succeed(&mut l, A, "alice", t0);
}

#[test]
fn known_pairs_are_forgotten_after_their_ttl() {
    let mut l = LoginLimiter::new(cfg(1, 100, 10));
    let t0 = Instant::now();
    succeed(&mut l, A, "alice", t0);
    let later = t0 + Duration::from_secs(3600);
    fail(&mut l, A, Some("bob"), later);
    assert!(
        l.admit(A, Some("alice"), later).is_err(),
        "an hour after her last sign-in, alice from A is a stranger again"
    );
    // Each success renews it.
    let mut l = LoginLimiter::new(cfg(1, 100, 10));
    succeed(&mut l, A, "alice", t0);
    let mid = t0 + Duration::from_secs(1800);
    l.note_success(A, "alice", mid);
    fail(&mut l, A, Some("bob"), later);
    assert!(l.admit(A, Some("alice"), later).is_ok());
}

#[test]
fn note_success_makes_a_pair_known_without_a_reservation() {
    let mut l = LoginLimiter::new(cfg(1, 100, 10));
    let t0 = Instant::now();
    l.note_success(A, "alice", t0);
    fail(&mut l, A, Some("bob"), t0);
    assert!(l.admit(A, Some("alice"), t0).is_ok());
    assert!(l.admit(A, Some("carol"), t0).is_err());
}

#[test]
fn record_failure_charges_without_asking() {
    let mut l = LoginLimiter::new(cfg(2, 100, 10));
    let t0 = Instant::now();
    for _ in 0..5 {
        l.record_failure(A, None, t0);
    }
    // Empty, not negative: one refill period brings one token.
    assert!(l.admit(A, None, t0).is_err());
    assert!(l.admit(A, None, t0 + Duration::from_secs(10)).is_ok());
}

#[test]
fn ipv6_is_keyed_by_64_and_mapped_v4_as_v4() {
    let mut l = LoginLimiter::new(cfg(1, 100, 10));
    let t0 = Instant::now();
    let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let same64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    succeed(&mut l, x, "alice", t0);
    fail(&mut l, x, None, t0);
    assert!(l.admit(same64, None, t0).is_err());
    assert!(l.admit(other64, None, t0).is_ok());
    assert!(
        l.admit(same64, Some("alice"), t0).is_ok(),
        "known by the /64"
    );
    let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
    fail(&mut l, A, None, t0);
    assert!(l.admit(mapped, None, t0).is_err());
    assert!(l.admit(IpAddr::V6(Ipv6Addr::LOCALHOST), None, t0).is_ok());
}

#[test]
fn full_buckets_are_evicted_before_limited_ones() {
    let mut l = LoginLimiter::new(cfg(1, 1000, 2));
    let t0 = Instant::now();
    fail(&mut l, B, None, t0); // full again at t0 + 10 s
    let t9 = t0 + Duration::from_secs(9);
    fail(&mut l, A, None, t9); // limited until t0 + 19 s
    let t10 = t0 + Duration::from_secs(10);
    let c = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    fail(&mut l, c, None, t10);
    assert_eq!(l.len().0, 2);
    assert!(l.admit(A, None, t10).is_err(), "the limited entry was kept");
    assert!(l.admit(c, None, t10).is_err(), "the new entry was kept");
}

#[test]
fn maps_stay_bounded_when_every_entry_is_limited() {
    let mut l = LoginLimiter::new(cfg(1, 1, 3));
    let t0 = Instant::now();
    for i in 0..50u8 {
        let t = t0 + Duration::from_millis(u64::from(i));
        let user = format!("user{i}");
        succeed(&mut l, ip(i), &user, t);
        fail(&mut l, ip(i), Some(&format!("other{i}")), t);
        let (a, u, k) = l.len();
        assert!(a <= 3 && u <= 3 && k <= 3, "{:?}", l.len());
        // The least recently touched entry goes; the newest stays limited.
        assert!(l.admit(ip(i), None, t).is_err());
        assert!(
            l.admit(ip(i), Some(&user), t).is_ok(),
            "the newest known pair"
        );
    }
    assert!(l.admit(ip(0), None, t0).is_ok());
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
        fail(&mut l, A, Some("alice"), t0);
    }
    assert!(l.admit(A, Some("alice"), t0).is_ok());
    for _ in 0..7 {
        fail(&mut l, A, Some("alice"), t0);
    }
    assert_eq!(l.admit(A, Some("alice"), t0).unwrap_err().seconds(), 6);
}
