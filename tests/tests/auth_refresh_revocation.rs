//! Refresh tokens die with the credentials they were issued against (item
//! 6 of the outside review), on SQLite and on PostgreSQL: a robot deleted
//! and added again does not revive the old robot's refresh tokens (the
//! identity token `docker login` stored); rotating a robot's secret kills
//! the old secret and its refresh tokens at once; a user's password change,
//! or the user deleted and added again, kills theirs; an expired robot is
//! answered exactly as a wrong secret (same status, same body, a hash check
//! run), so answers do not tell which robots exist.

use std::time::{Duration, Instant};

use e2e::auth::{
    docker_config_dir, docker_login, now, random_hex, Account, AuthRegistry, Metadata,
};
use e2e::client_auth::{oauth, stored_identity_token};
use e2e::flood::counter;
use e2e::http::Resp;
use serde_json::Value;

/// Each test on both metadata backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(e2e::auth::Metadata::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(e2e::auth::Metadata::Postgres)
            }
        }
    )*};
}

on_both_backends!(
    robot_deleted_and_added_again_does_not_revive_its_refresh_tokens,
    rotating_a_robot_secret_kills_the_old_secret_and_its_refresh_tokens,
    a_password_change_kills_the_users_refresh_tokens,
    a_user_deleted_and_added_again_does_not_revive_its_refresh_tokens,
    an_expired_robot_is_answered_as_a_wrong_secret,
);

const CONFIG: &str = r#"
[access]
public = ["public/**"]
"#;

const SCOPE: &str = "repository:dev/app:pull";

/// `grant_type=password` with `access_type=offline`: the refresh token.
fn offline_refresh(reg: &AuthRegistry, who: &Account) -> String {
    let r = oauth(
        reg,
        &[
            ("grant_type", "password"),
            ("username", &who.user),
            ("password", &who.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
            ("access_type", "offline"),
            ("scope", SCOPE),
        ],
    );
    assert_eq!(r.status, 200, "password grant:\n{}", r.describe());
    let v: Value = serde_json::from_slice(&r.body).expect("JSON");
    v["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {v}"))
        .to_string()
}

/// `grant_type=refresh_token` with `token`.
fn refresh_grant(reg: &AuthRegistry, token: &str) -> Resp {
    oauth(
        reg,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("service", "registry"),
            ("client_id", "e2e"),
            ("scope", SCOPE),
        ],
    )
}

fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}:\n{}", r.describe());
    r.expect_error(&[401], &["UNAUTHORIZED"]);
    assert!(!r.text().contains("token\""), "{what}: {}", r.describe());
}

fn token_status(reg: &AuthRegistry, who: &Account) -> u16 {
    reg.token_response(Some(who), &[SCOPE]).status
}

/// Returns just after the clock turns a second: what follows at once
/// happens in the second a token issued now carries as `iat`, where a
/// revocation by timestamps (whole seconds) sees no change.
fn at_a_second_boundary() {
    let t = now();
    let deadline = Instant::now() + Duration::from_secs(3);
    while now() == t {
        assert!(Instant::now() < deadline, "the clock stands still");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn robot_deleted_and_added_again_does_not_revive_its_refresh_tokens(meta: Metadata) {
    let reg = AuthRegistry::start_on(CONFIG, meta);
    let robot = reg.add_robot("ci", &["repository:dev/*:pull"], None);
    let config = docker_config_dir();
    let login = docker_login(config.path(), &reg.host(), &robot);
    assert!(login.success(), "docker login:\n{}", login.combined());
    let identity = stored_identity_token(&reg, config.path(), &robot);
    let r = refresh_grant(&reg, &identity);
    assert_eq!(
        r.status,
        200,
        "docker's identity token, at first:\n{}",
        r.describe()
    );

    let out = reg.cli(&["robot", "del", "ci"], "");
    assert!(out.success(), "{}", out.combined());
    let again = reg.add_robot("ci", &["repository:**:pull,push"], None);
    assert_refused(
        &refresh_grant(&reg, &identity),
        "the old robot's identity token, after robot del + robot add of the same name",
    );
    // The new robot is a robot of its own.
    assert_eq!(token_status(&reg, &again), 200);
    let fresh = offline_refresh(&reg, &again);
    assert_eq!(refresh_grant(&reg, &fresh).status, 200);
}

fn rotating_a_robot_secret_kills_the_old_secret_and_its_refresh_tokens(meta: Metadata) {
    let reg = AuthRegistry::start_on(CONFIG, meta);
    let old = reg.add_robot("ci", &["repository:dev/*:pull"], Some("90d"));
    let refresh = offline_refresh(&reg, &old);
    // Signed in just now: the server remembers the check.
    assert_eq!(token_status(&reg, &old), 200);

    let new = reg.rotate_robot("ci");
    assert_ne!(new.secret, old.secret);
    let r = reg.token_response(Some(&old), &[SCOPE]);
    assert_refused(&r, "GET /token with the old secret, right after rotate");
    assert_eq!(
        reg.basic(&old).get("/v2/").status,
        401,
        "Basic with the old secret"
    );
    assert_refused(
        &refresh_grant(&reg, &refresh),
        "the old secret's refresh token",
    );

    assert_eq!(token_status(&reg, &new), 200, "the new secret");
    let fresh = offline_refresh(&reg, &new);
    assert_eq!(refresh_grant(&reg, &fresh).status, 200);
    // Scopes and expiry stay.
    let list = reg.cli(&["robot", "list"], "");
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("robot+ci "))
        .unwrap_or_else(|| panic!("robot list:\n{}", list.stdout));
    assert!(
        line.contains("repository:dev/*:pull") && !line.contains("never"),
        "{line}"
    );
    // Rotating nobody is an error that says so.
    let out = reg.cli(&["robot", "rotate", "ghost"], "");
    assert_eq!(out.status.code(), Some(2), "{}", out.combined());
    assert!(out.stderr.contains("no robot ghost"), "{}", out.stderr);
}

fn a_password_change_kills_the_users_refresh_tokens(meta: Metadata) {
    let reg = AuthRegistry::start_on(CONFIG, meta);
    let alice = reg.add_user("alice", &[]);
    // Checked once: the token below is issued at once.
    assert_eq!(token_status(&reg, &alice), 200);
    at_a_second_boundary();
    let refresh = offline_refresh(&reg, &alice);
    let new = Account {
        user: "alice".into(),
        secret: format!("pw-new-{}", random_hex(12)),
    };
    reg.note_secret("password of alice (new)", &new.secret);
    let out = reg.cli(&["user", "passwd", "alice"], &format!("{}\n", new.secret));
    assert!(out.success(), "{}", out.combined());

    assert_refused(
        &refresh_grant(&reg, &refresh),
        "a refresh token of the old password",
    );
    assert_refused(
        &reg.token_response(Some(&alice), &[SCOPE]),
        "the old password (remembered as checked a moment ago)",
    );
    assert_eq!(token_status(&reg, &new), 200, "the new password");
    let fresh = offline_refresh(&reg, &new);
    assert_eq!(refresh_grant(&reg, &fresh).status, 200);
}

fn a_user_deleted_and_added_again_does_not_revive_its_refresh_tokens(meta: Metadata) {
    let reg = AuthRegistry::start_on(CONFIG, meta);
    let alice = reg.add_user("alice", &[]);
    assert_eq!(token_status(&reg, &alice), 200);
    at_a_second_boundary();
    let refresh = offline_refresh(&reg, &alice);
    let out = reg.cli(&["user", "del", "alice"], "");
    assert!(out.success(), "{}", out.combined());
    assert_refused(
        &refresh_grant(&reg, &refresh),
        "a deleted user's refresh token",
    );
    // Same name, same password: another account.
    let out = reg.cli(&["user", "add", "alice"], &format!("{}\n", alice.secret));
    assert!(out.success(), "{}", out.combined());
    assert_refused(
        &refresh_grant(&reg, &refresh),
        "the first alice's refresh token, after user del + user add",
    );
    assert_eq!(token_status(&reg, &alice), 200, "the new alice signs in");
}

/// What an answer says: status, error body, challenge.
fn shape(r: &Resp) -> (u16, String, Option<String>) {
    (r.status, r.text(), r.header("www-authenticate"))
}

fn checks_run(reg: &AuthRegistry) -> u64 {
    counter(
        &reg.anonymous().get("/metrics").text(),
        "registry_password_checks_total",
    )
}

fn an_expired_robot_is_answered_as_a_wrong_secret(meta: Metadata) {
    // Enough failures per address for every attempt below.
    let config = format!("{CONFIG}\n[login_limit]\nper_address_burst = 1000\n");
    let reg = AuthRegistry::start_on(&config, meta);
    let expired = reg.add_robot("old", &["repository:dev/*:pull"], Some("1s"));
    let live = reg.add_robot("live", &["repository:dev/*:pull"], None);
    // It expired at most a second after `robot add` returned.
    let past = now() + 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while now() <= past {
        assert!(Instant::now() < deadline, "the clock did not move");
        std::thread::sleep(Duration::from_millis(20));
    }
    let wrong = |user: &str| Account {
        user: user.into(),
        secret: format!("rgr_{}", random_hex(16)),
    };
    let cases = [
        ("an expired robot's own secret", expired.clone()),
        ("a wrong secret for the expired robot", wrong(&expired.user)),
        ("a wrong secret for a live robot", wrong(&live.user)),
        ("a robot that does not exist", wrong("robot+ghost")),
    ];
    type Door = fn(&AuthRegistry, &Account) -> Resp;
    let doors: [(&str, Door); 3] = [
        ("GET /token", |reg, who| {
            reg.token_response(Some(who), &[SCOPE])
        }),
        ("POST /token (password grant)", |reg, who| {
            oauth(
                reg,
                &[
                    ("grant_type", "password"),
                    ("username", &who.user),
                    ("password", &who.secret),
                    ("service", "registry"),
                    ("client_id", "e2e"),
                ],
            )
        }),
        ("Basic on /v2/", |reg, who| reg.basic(who).get("/v2/")),
    ];
    for (door, send) in doors {
        // (case, answer, hash checks it ran)
        let mut seen = Vec::new();
        for (case, who) in &cases {
            let before = checks_run(&reg);
            let started = Instant::now();
            let r = send(&reg, who);
            println!("{door}, {case}: {} in {:?}", r.status, started.elapsed());
            seen.push((case, shape(&r), checks_run(&reg) - before));
        }
        let (first_case, first, _) = &seen[0];
        assert_eq!(first.0, 401, "{door}, {first_case}: {first:?}");
        for (case, answer, _) in &seen[1..] {
            assert_eq!(
                answer, first,
                "{door}: {case} is answered unlike {first_case}"
            );
        }
        for (case, _, checks) in &seen {
            assert_eq!(
                *checks, 1,
                "{door}, {case}: one hash check, as for any wrong secret"
            );
        }
    }
}
