//! Password checks sent all at once (item 4 of the outside review): the
//! login limiter is not outrun by guesses that arrive together (a token is
//! reserved before each check), and password checks, 19 MiB of argon2id
//! each, run a few at a time whatever the number of requests, so the
//! registry's memory stays bounded. Each over HTTP/1.1 (a connection per
//! request) and HTTP/2 (one connection, a stream per request).
//!
//! A memory watch kills the registry if it passes 1 GiB (the memory limit
//! of deploy/k8s/registry.yaml): that is a failure too, and keeps a
//! regression from taking the test machine down with it.

use std::net::Ipv4Addr;

use e2e::auth::{Account, AuthRegistry};
use e2e::flood::{counter, flood, proc_status_kib, Answer, MemoryWatch, Transport};

/// The default `[login_limit] per_address_burst`.
const ADDRESS_BURST: usize = 10;
/// The default `[login_limit] max_concurrent_checks`.
const CHECKS_AT_ONCE: u64 = 4;
/// argon2id's memory per check (m = 19456 KiB).
const ARGON2_KIB: u64 = 19_456;
/// What the connections, streams and waiting requests of a flood may take
/// besides the checks (buffers, tasks, log lines).
const FLOOD_OVERHEAD_KIB: u64 = 64 << 10;
const CEILING_KIB: u64 = 1 << 20;

const TOKEN_PATH: &str = "/token?service=registry&scope=repository:alice/app:pull";

fn checks_run(reg: &AuthRegistry) -> u64 {
    let r = reg.anonymous().get("/metrics");
    assert_eq!(r.status, 200, "{}", r.describe());
    counter(&r.text(), "registry_password_checks_total")
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

fn summary(answers: &[Answer]) -> String {
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
        .iter()
        .map(|s| format!("{s} x{}", count(answers, *s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every 429 and 503 says when to come back.
fn assert_retry_after(answers: &[Answer]) {
    for a in answers.iter().filter(|a| matches!(a.status, 429 | 503)) {
        let secs: u64 = a
            .retry_after
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} without a Retry-After in seconds: {a:?}", a.status));
        assert!(secs >= 1, "{a:?}");
    }
}

fn concurrent_wrong_guesses(transport: Transport) {
    const GUESSES: usize = 200;
    let reg = AuthRegistry::start("");
    let alice = reg.add_user("alice", &[]);
    let before = checks_run(&reg);
    let guesses: Vec<String> = (0..GUESSES)
        .map(|i| {
            let guess = Account {
                user: "alice".into(),
                secret: format!("guess-{i}"),
            };
            reg.note_secret("a guessed password", &guess.secret);
            guess.basic()
        })
        .collect();
    let watch = MemoryWatch::start(reg.pid().expect("running"), CEILING_KIB);
    let answers = flood(
        reg.port(),
        transport,
        Ipv4Addr::LOCALHOST,
        TOKEN_PATH,
        &guesses,
    );
    let (peak_kib, killed) = watch.finish();
    assert!(
        !killed,
        "{GUESSES} concurrent guesses over {transport:?} took the registry past {} MiB",
        CEILING_KIB >> 10
    );
    let checked = count(&answers, 401);
    println!(
        "{GUESSES} concurrent wrong guesses over {transport:?}: {}; peak RSS {} MiB",
        summary(&answers),
        peak_kib >> 10
    );
    assert_eq!(
        checked + count(&answers, 429) + count(&answers, 503),
        GUESSES,
        "statuses: {}",
        summary(&answers)
    );
    // A 401 is only answered after the password was checked.
    assert!(
        checked <= ADDRESS_BURST,
        "{checked} of {GUESSES} guesses sent at once from one address were checked (401); \
         the burst is {ADDRESS_BURST}: {}",
        summary(&answers)
    );
    assert!(count(&answers, 429) > 0, "{}", summary(&answers));
    assert_retry_after(&answers);
    let verifications = checks_run(&reg) - before;
    println!("{verifications} of {GUESSES} concurrent guesses reached a password check");
    assert!(
        (1..=ADDRESS_BURST as u64).contains(&verifications),
        "{verifications} password checks for {GUESSES} guesses from one address (burst {ADDRESS_BURST})"
    );
    // The account's owner, elsewhere, is not locked out by them.
    let r = reg
        .basic_elsewhere(&alice)
        .get("/token?service=registry&scope=repository:alice/app:pull");
    assert_eq!(
        r.status,
        200,
        "alice from another address:\n{}",
        r.describe()
    );
}

#[test]
fn concurrent_guesses_over_http1_reach_no_more_checks_than_the_burst() {
    concurrent_wrong_guesses(Transport::Http1);
}

#[test]
fn concurrent_guesses_over_http2_reach_no_more_checks_than_the_burst() {
    concurrent_wrong_guesses(Transport::Http2);
}

/// Buckets no flood of one address empties: only the cap on checks at
/// once stands between these requests and the memory.
const GENEROUS: &str = "
[login_limit]
per_address_burst = 100000
per_user_burst = 100000
";

fn memory_under_concurrent_checks(transport: Transport) {
    const REQUESTS: usize = 500;
    let reg = AuthRegistry::start(GENEROUS);
    let pid = reg.pid().expect("running");
    // Warm: one check made (the allocator has seen a hash) and answered.
    let warm = Account {
        user: "nobody".into(),
        secret: "warming-up".into(),
    };
    assert_eq!(reg.token_response(Some(&warm), &[]).status, 401);
    let before_kib = proc_status_kib(pid, "VmHWM");
    let checks_before = checks_run(&reg);
    // Unknown names, each a check of its own (the hash runs for unknown
    // names too, so that timing does not tell which exist).
    let requests: Vec<String> = (0..REQUESTS)
        .map(|i| {
            Account {
                user: format!("nobody{i}"),
                secret: format!("password-{i}"),
            }
            .basic()
        })
        .collect();
    let bound_kib = before_kib + CHECKS_AT_ONCE * ARGON2_KIB * 5 / 4 + FLOOD_OVERHEAD_KIB;
    let watch = MemoryWatch::start(pid, CEILING_KIB);
    let answers = flood(
        reg.port(),
        transport,
        Ipv4Addr::LOCALHOST,
        TOKEN_PATH,
        &requests,
    );
    let (sampled_kib, killed) = watch.finish();
    let peak_kib = if killed {
        sampled_kib
    } else {
        proc_status_kib(pid, "VmHWM")
    };
    println!(
        "peak RSS (VmHWM) under {REQUESTS} concurrent Basic requests over {transport:?}: \
         {} MiB ({} MiB before; bound {} MiB = before + {CHECKS_AT_ONCE} checks x 19 MiB x 1.25 \
         + {} MiB); answers: {}",
        peak_kib >> 10,
        before_kib >> 10,
        bound_kib >> 10,
        FLOOD_OVERHEAD_KIB >> 10,
        summary(&answers)
    );
    assert!(
        !killed,
        "{REQUESTS} concurrent password checks over {transport:?} took the registry past {} MiB",
        CEILING_KIB >> 10
    );
    assert!(
        peak_kib <= bound_kib,
        "peak RSS {} MiB over the bound of {} MiB",
        peak_kib >> 10,
        bound_kib >> 10
    );
    // Wrong credentials (401), or no check slot within a moment (503).
    assert_eq!(
        count(&answers, 401) + count(&answers, 503),
        REQUESTS,
        "{}",
        summary(&answers)
    );
    assert_retry_after(&answers);
    assert!(
        checks_run(&reg) > checks_before,
        "no password was checked at all: the flood proved nothing"
    );
}

#[test]
fn concurrent_password_checks_over_http1_keep_memory_bounded() {
    memory_under_concurrent_checks(Transport::Http1);
}

#[test]
fn concurrent_password_checks_over_http2_keep_memory_bounded() {
    memory_under_concurrent_checks(Transport::Http2);
}
