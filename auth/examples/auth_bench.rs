//! Prints what the auth hot paths cost, for the token endpoint's budget
//! (`GET /token` under 1 ms p50) and the per-request cache decision.
//!
//! `cargo run --release -p auth --example auth_bench`

use auth::identity::{Identity, User};
use auth::password::PasswordHasher;
use auth::scope::parse_scopes;
use auth::token::{token_hash, Issuer, IssuerConfig, KeySet, SigningKey};
use auth::{AccessConfig, Policy};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn measure(name: &str, n: usize, mut f: impl FnMut()) {
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((n as f64 - 1.0) * q) as usize];
    println!(
        "{name:<44} n={n:<6} p50={:>10.2?} p99={:>10.2?}",
        p(0.5),
        p(0.99)
    );
}

fn main() {
    let now = auth::now_unix();
    let keys = Arc::new(KeySet::new(SigningKey::generate()));
    let issuer = Issuer::new(keys, IssuerConfig::new("https://r.example", "r.example")).unwrap();
    let verifier = issuer.verifier();

    // A policy of realistic size: 50 team rules plus public globs.
    let mut cfg = AccessConfig {
        public: vec!["library/**".into(), "mirror/*".into()],
        ..AccessConfig::default()
    };
    for i in 0..50 {
        cfg.rules.push(
            toml::from_str(&format!(
                "repositories = [\"team-{i}/**\"]\ngroups = [\"team-{i}\"]\nactions = [\"pull\", \"push\"]\n"
            ))
            .unwrap(),
        );
    }
    let policy = Policy::from_config(&cfg).unwrap();
    let who = Identity::User(User {
        name: "alice".into(),
        admin: false,
        groups: vec!["team-49".into()],
    });
    let asked = "repository:team-49/app:pull,push repository:library/busybox:pull";

    measure("parse scopes + grant (50 rules)", 20_000, || {
        let s = parse_scopes([asked]).unwrap();
        black_box(policy.grant(&who, &s));
    });
    let granted = policy.grant(&who, &parse_scopes([asked]).unwrap());
    measure("issue access token (ES256)", 5_000, || {
        black_box(issuer.issue_access(&who, &granted, now).unwrap());
    });
    let token = issuer.issue_access(&who, &granted, now).unwrap().token;
    measure("verify access token (ES256)", 5_000, || {
        black_box(verifier.verify(&token, now).unwrap());
    });
    measure("token_hash (cache key)", 100_000, || {
        black_box(token_hash(black_box(&token)));
    });
    let verified = verifier.verify(&token, now).unwrap();
    measure("cached claims: allows(repo, action)", 100_000, || {
        black_box(verified.allows(black_box("team-49/app"), auth::Action::Push));
    });
    measure("policy.allowed (50 rules, last matches)", 100_000, || {
        black_box(policy.allowed(&who, black_box("team-49/app"), auth::Action::Push));
    });
    let h = PasswordHasher::default();
    let phc = h.hash("correct horse battery").unwrap();
    measure("argon2id verify (19 MiB, t=2, p=1)", 20, || {
        black_box(h.verify("correct horse battery", &phc));
    });
}
