//! Password guessing and scope tricks (issue 9's attack list): brute force
//! hits the rate limit, a throttled client learns nothing from the
//! credential cache, and scopes or paths with traversal or wildcards grant
//! nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::attack::{assert_unchanged, world, World};
use e2e::auth::{jwt_part, Account};
use e2e::http::Resp;
use e2e::oci;
use serde_json::Value;

/// Wrong passwords for `user` on `GET /token` until a 429 (at most 40):
/// the 429, after how many 401s.
fn guess_until_throttled(w: &World, user: &str) -> (usize, Resp) {
    for i in 0..40 {
        let guess = Account {
            user: user.into(),
            secret: format!("guess-{i}"),
        };
        let r = w
            .reg
            .token_response(Some(&guess), &["repository:alice/app:pull"]);
        match r.status {
            401 => r.expect_error(&[401], &["UNAUTHORIZED"]),
            429 => return (i, r),
            _ => panic!("guess {i}: {}", r.describe()),
        }
    }
    panic!("40 wrong passwords for {user} in a row and never a 429");
}

fn assert_throttled(r: &Resp) {
    r.expect_error(&[429], &["TOOMANYREQUESTS"]);
    let retry: u64 = r
        .require_header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not a number of seconds:\n{}", r.describe()));
    assert!(retry >= 1, "Retry-After {retry}");
    assert!(
        !r.text().contains("token\""),
        "a token while throttled:\n{}",
        r.describe()
    );
}

/// The doors a password opens: `GET /token`, Basic on `/v2/`, the OAuth2
/// password grant.
fn every_door(w: &World, who: &Account) -> Vec<(&'static str, Resp)> {
    let http = w.reg.anonymous();
    let oauth = http.send(http.request(reqwest::Method::POST, "/token").form(&[
        ("grant_type", "password"),
        ("username", who.user.as_str()),
        ("password", who.secret.as_str()),
        ("service", "registry"),
        ("client_id", "e2e"),
    ]));
    vec![
        (
            "GET /token",
            w.reg
                .token_response(Some(who), &["repository:alice/app:pull"]),
        ),
        (
            "Basic on /v2/",
            w.reg
                .basic(who)
                .get_manifest(&format!("{}/app", who.user), "v1"),
        ),
        ("POST /token (password grant)", oauth),
    ]
}

#[test]
fn brute_force_hits_the_rate_limit() {
    let w = world();
    // Never signed in: no cached check can answer for it.
    let carol = w.reg.add_user("carol", &[]);
    let (n, r) = guess_until_throttled(&w, "carol");
    assert_eq!(
        n, 10,
        "throttled after {n} failures, not the per-address burst"
    );
    assert_throttled(&r);
    // The world's [login_limit] refill (an hour) is what the wait reflects.
    let retry: u64 = r.require_header("retry-after").parse().unwrap();
    assert!(
        retry > 3000,
        "Retry-After {retry} s, with one failure an hour refilled"
    );
    // While throttled, even the right password gets nothing, on every door.
    for (door, r) in every_door(&w, &carol) {
        assert_eq!(r.status, 429, "{door} while throttled:\n{}", r.describe());
        assert_throttled(&r);
    }
    assert_unchanged(&w);
}

#[test]
fn throttled_client_gets_no_answer_from_the_credential_cache() {
    // The registry remembers a good password check for 30 s. An attacker
    // who is throttled must not be able to keep guessing against that
    // memory: it would tell them the right password at full speed while the
    // real user is active.
    let w = world();
    // alice was just active (her pushes in world()); once more, to be sure.
    assert_eq!(
        w.reg.basic(&w.alice).get_manifest("alice/app", "v1").status,
        200
    );
    let (_, r) = guess_until_throttled(&w, "alice");
    assert_throttled(&r);
    for (door, r) in every_door(&w, &w.alice) {
        assert_eq!(
            r.status,
            429,
            "{door}: a throttled client had alice's password confirmed (by the credential \
             cache?):\n{}",
            r.describe()
        );
    }
    assert_unchanged(&w);
}

/// One raw HTTP/1.1 request (reqwest would normalize `..` away): status
/// and body.
fn raw_get(w: &World, path: &str, authorization: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", w.reg.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
        w.reg.host(),
        oci::ACCEPT_ALL_MANIFESTS
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

#[test]
fn scope_with_traversal_or_wildcards_grants_nothing() {
    let w = world();
    let scopes = [
        "repository:../bob/secret:pull",
        "repository:alice/../bob/secret:pull,push",
        "repository:alice/app/../../bob/secret:pull",
        "repository:alice/./app:pull",
        "repository:*:pull",
        "repository:bob/*:pull",
        "repository:bob/**:pull",
        "repository:**:pull,push,delete",
        "repository:alice/*:pull,push",
        "repository:/bob/secret:pull",
        "repository:bob//secret:pull",
        "repository:bob/secret%2F..:pull",
        "repository:127.0.0.1:5000/bob/secret:pull",
        "repository:bob/secret:pull\nrepository:bob/secret:push",
    ];
    for scope in scopes {
        let r = w.reg.token_response(Some(&w.alice), &[scope]);
        match r.status {
            // Refused as invalid: nothing issued.
            400 => {
                assert!(!r.text().contains("token"), "{scope}: {}", r.describe());
            }
            // Issued: it must grant nothing beyond alice's own exact names.
            200 => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                let t = v["token"].as_str().unwrap();
                let access = jwt_part(t, 1)["access"].clone();
                for e in access.as_array().cloned().unwrap_or_default() {
                    let name = e["name"].as_str().unwrap_or_default();
                    assert!(
                        name.starts_with("alice/")
                            && !name.contains(['*', '.'])
                            && !name.contains("//"),
                        "{scope:?} granted {e}"
                    );
                }
                let http = w.reg.bearer(t);
                let r = http.get_manifest("bob/secret", "v1");
                assert!(matches!(r.status, 401 | 403), "{scope:?}: {}", r.describe());
            }
            _ => panic!("{scope:?}: {}", r.describe()),
        }
    }
    // Traversal in /v2/ paths, sent as written.
    let basic = w.alice.basic();
    let token = w.reg.token(Some(&w.alice), &["repository:alice/app:pull"]);
    w.reg.note_secret("token", &token);
    for auth in [basic.clone(), format!("Bearer {token}")] {
        for path in [
            "/v2/alice/app/../../bob/secret/manifests/v1",
            "/v2/alice/app/%2e%2e/%2e%2e/bob/secret/manifests/v1",
            "/v2/alice/../bob/secret/manifests/v1",
            "/v2/alice%2F..%2Fbob/secret/manifests/v1",
        ] {
            let (status, answer) = raw_get(&w, path, &auth);
            assert!((400..500).contains(&status), "{path}: {status}\n{answer}");
            assert!(
                !answer.contains(&w.bob_secret.config.digest),
                "{path} served bob's manifest:\n{answer}"
            );
        }
    }
    assert_unchanged(&w);
}
