//! Behind a load balancer (item 5 of the outside review): nginx in front
//! of the registry, as the ALB or the ingress of the shipped deployments,
//! connecting from 127.0.0.9 (the only address in `trusted_proxies`) and
//! appending the client to `X-Forwarded-For`. Clients bind other loopback
//! addresses (127.0.0.2, .3, ...), so each is a machine of its own to the
//! registry only if it believes the balancer and nobody else: one client
//! failing logins is throttled alone; a client's account that signed in from
//! its address is not locked out by that address's failures on other
//! names; the access log names the real client; a client talking to the
//! registry directly cannot forge its way out of its throttle; the scheme
//! the balancer reports makes cookies `Secure` and the token realm https.

use std::net::IpAddr;

use e2e::auth::{docker_config_dir, docker_login, Account, AuthRegistry, Http};
use e2e::client_auth::{access_lines, wait_access};
use e2e::cluster::Nginx;
use e2e::http::{Client, Resp};
use serde_json::Value;

/// Refills an hour apart: a throttled client stays throttled however slow
/// the machine.
const CONFIG: &str = r#"
trusted_proxies = ["127.0.0.9/32"]

[login_limit]
per_address_refill_secs = 3600
per_user_refill_secs = 3600
"#;

const BALANCER: &str = "127.0.0.9";
const SCOPE: &str = "/token?service=registry&scope=repository:team/app:pull";

struct Setup {
    reg: AuthRegistry,
    /// Reports the scheme clients used (`http` here).
    lb: Nginx,
    /// Says `X-Forwarded-Proto: https`, as a balancer terminating TLS.
    lb_tls: Nginx,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let reg = AuthRegistry::start(CONFIG);
    let dir = tempfile::tempdir().expect("temp dir");
    let lb = Nginx::start_forwarding(&dir.path().join("lb"), &[reg.port()], BALANCER, "$scheme");
    let lb_tls =
        Nginx::start_forwarding(&dir.path().join("lb-tls"), &[reg.port()], BALANCER, "https");
    Setup {
        reg,
        lb,
        lb_tls,
        _dir: dir,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Requests from `source` through the balancer on `port`.
fn via(port: u16, source: &str, who: Option<&Account>) -> Http {
    Http::with_client(
        Client::new_from(&format!("http://127.0.0.1:{port}"), ip(source)),
        who.map(Account::basic),
    )
}

/// Requests from `source` straight to the registry.
fn direct(reg: &AuthRegistry, source: &str, who: Option<&Account>) -> Http {
    Http::with_client(
        Client::new_from(&reg.url(), ip(source)),
        who.map(Account::basic),
    )
}

fn guess(reg: &AuthRegistry, user: &str, i: usize) -> Account {
    let a = Account {
        user: user.into(),
        secret: format!("guess-{i}-{}", e2e::auth::random_hex(4)),
    };
    reg.note_secret("a guessed password", &a.secret);
    a
}

/// Wrong passwords from `send` until a 429 (at most 40): how many 401s
/// came first.
fn failures_until_throttled(mut send: impl FnMut(usize) -> Resp) -> usize {
    for i in 0..40 {
        let r = send(i);
        match r.status {
            401 => r.expect_error(&[401], &["UNAUTHORIZED"]),
            429 => {
                r.expect_error(&[429], &["TOOMANYREQUESTS"]);
                r.require_header("retry-after");
                return i;
            }
            _ => panic!("guess {i}: {}", r.describe()),
        }
    }
    panic!("40 wrong passwords in a row and never a 429");
}

fn token_status(http: &Http) -> Resp {
    http.get(SCOPE)
}

fn oauth_password(http: &Http, who: &Account) -> Resp {
    http.send(http.request(reqwest::Method::POST, "/token").form(&[
        ("grant_type", "password"),
        ("username", who.user.as_str()),
        ("password", who.secret.as_str()),
        ("service", "registry"),
        ("client_id", "e2e"),
    ]))
}

#[test]
fn a_client_failing_behind_the_balancer_throttles_only_itself() {
    let s = setup();
    let reg = &s.reg;
    let carol = reg.add_user("carol", &[]);
    let bob = reg.add_user("bob", &[]);
    let n = failures_until_throttled(|i| {
        token_status(&via(s.lb.port, "127.0.0.2", Some(&guess(reg, "carol", i))))
    });
    assert_eq!(n, 10, "the per-address burst, for the client's own address");
    // The right password from there gets nothing either.
    let r = token_status(&via(s.lb.port, "127.0.0.2", Some(&carol)));
    assert_eq!(r.status, 429, "{}", r.describe());

    // Another client behind the same balancer signs in, twice (the second
    // answered from the memory of the first check).
    for _ in 0..2 {
        let r = token_status(&via(s.lb.port, "127.0.0.3", Some(&bob)));
        assert_eq!(r.status, 200, "bob from 127.0.0.3:\n{}", r.describe());
    }
    // docker login through the balancer (from the docker daemon's address).
    let config = docker_config_dir();
    let lb_host = format!("127.0.0.1:{}", s.lb.port);
    let login = docker_login(config.path(), &lb_host, &bob);
    assert!(
        login.success(),
        "docker login through the balancer:\n{}",
        login.combined()
    );

    // The access log names the clients, and the balancer apart.
    let from_balancer = |v: &Value| {
        v["proxy"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.9:"))
    };
    wait_access(reg, "the attacker's throttled guess", |v| {
        v["client"] == "127.0.0.2" && v["status"] == 429 && from_balancer(v)
    });
    wait_access(reg, "bob's token from 127.0.0.3", |v| {
        v["client"] == "127.0.0.3" && v["status"] == 200 && v["user"] == "bob" && from_balancer(v)
    });
}

#[test]
fn a_user_who_signed_in_from_an_address_is_not_locked_out_by_its_other_failures() {
    let s = setup();
    let reg = &s.reg;
    let alice = reg.add_user("alice", &[]);
    let bob = reg.add_user("bob", &[]);
    let port = s.lb.port;
    let here = "127.0.0.4";
    // alice signs in from here; bob from elsewhere (his success is
    // remembered for a while).
    assert_eq!(token_status(&via(port, here, Some(&alice))).status, 200);
    assert_eq!(
        token_status(&via(port, "127.0.0.5", Some(&bob))).status,
        200
    );
    // Someone at alice's address sprays other names until throttled.
    let n = failures_until_throttled(|i| {
        token_status(&via(port, here, Some(&guess(reg, &format!("user{i}"), i))))
    });
    assert_eq!(n, 10);
    // alice, known from here, gets in by every door.
    let r = token_status(&via(port, here, Some(&alice)));
    assert_eq!(r.status, 200, "alice's token:\n{}", r.describe());
    let r = via(port, here, Some(&alice)).get("/v2/");
    assert_eq!(r.status, 200, "alice's Basic on /v2/:\n{}", r.describe());
    let r = oauth_password(&via(port, here, None), &alice);
    assert_eq!(r.status, 200, "alice's password grant:\n{}", r.describe());
    // bob never signed in from here: while the address is throttled, his
    // right password gets nothing, the remembered check included.
    let r = token_status(&via(port, here, Some(&bob)));
    assert_eq!(
        r.status,
        429,
        "bob from the throttled address:\n{}",
        r.describe()
    );
    // Guesses on alice from here still run out (her own bucket there) ...
    let n =
        failures_until_throttled(|i| token_status(&via(port, here, Some(&guess(reg, "alice", i)))));
    assert_eq!(n, 10);
    assert_eq!(token_status(&via(port, here, Some(&alice))).status, 429);
    // ... and lock her out nowhere else.
    assert_eq!(
        token_status(&via(port, "127.0.0.6", Some(&alice))).status,
        200
    );
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let s = setup();
    let reg = &s.reg;
    let carol = reg.add_user("carol", &[]);
    // Straight to the registry, forging a new client address each time.
    let n = failures_until_throttled(|i| {
        let http = direct(reg, "127.0.0.7", Some(&guess(reg, "carol", i)));
        http.send(
            http.request(reqwest::Method::GET, SCOPE)
                .header("X-Forwarded-For", format!("198.51.100.{i}"))
                .header("Forwarded", format!("for=198.51.100.{i}")),
        )
    });
    assert_eq!(n, 10, "the forged headers moved the throttle");
    let http = direct(reg, "127.0.0.7", Some(&carol));
    let r = http.send(
        http.request(reqwest::Method::GET, SCOPE)
            .header("X-Forwarded-For", "203.0.113.1"),
    );
    assert_eq!(r.status, 429, "{}", r.describe());
    // Logged as their peer, the forged addresses nowhere.
    let from_7 = |v: &Value| {
        v["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.7:"))
            && v["path"] == "/token"
    };
    e2e::flood::poll(
        "the access lines of the 12 forged requests",
        std::time::Duration::from_secs(10),
        || access_lines(reg).iter().filter(|v| from_7(v)).count() >= n + 2,
    );
    for v in access_lines(reg).iter().filter(|v| from_7(v)) {
        let line = v.to_string();
        assert!(
            v.get("proxy").is_none()
                && !line.contains("198.51.100.")
                && !line.contains("203.0.113."),
            "a forged address in the access log: {line}"
        );
    }
    // Through the balancer, forging what comes before its entry: the same.
    let n = failures_until_throttled(|i| {
        let http = via(s.lb.port, "127.0.0.8", Some(&guess(reg, "carol", i)));
        http.send(
            http.request(reqwest::Method::GET, SCOPE)
                .header("X-Forwarded-For", format!("198.51.100.{i}")),
        )
    });
    assert_eq!(
        n, 10,
        "a forged X-Forwarded-For passed through the balancer"
    );
    // A forged scheme changes nothing either.
    let http = direct(reg, "127.0.0.7", None);
    let r = http.send(
        http.request(reqwest::Method::GET, "/v2/")
            .header("X-Forwarded-Proto", "https"),
    );
    let challenge = r.require_header("www-authenticate");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/token\"", reg.url())),
        "{challenge}"
    );
    let r = http.send(
        http.request(reqwest::Method::GET, "/ui/login")
            .header("X-Forwarded-Proto", "https"),
    );
    let cookie = r.require_header("set-cookie");
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[test]
fn the_scheme_the_balancer_reports_makes_cookies_secure_and_the_realm_https() {
    let s = setup();
    for (lb, scheme, secure) in [(&s.lb_tls, "https", true), (&s.lb, "http", false)] {
        let http = via(lb.port, "127.0.0.2", None);
        let r = http.get("/v2/");
        assert_eq!(r.status, 401, "{}", r.describe());
        let challenge = r.require_header("www-authenticate");
        let realm = format!("Bearer realm=\"{scheme}://127.0.0.1:{}/token\"", lb.port);
        assert!(challenge.starts_with(&realm), "{challenge}, not {realm}");
        let r = http.get("/ui/login");
        assert_eq!(r.status, 200, "{}", r.describe());
        let cookie = r.require_header("set-cookie");
        assert_eq!(cookie.contains("; Secure"), secure, "{scheme}: {cookie}");
    }
}

#[test]
fn the_realm_names_the_host_an_http2_client_used() {
    // HTTP/2 has no Host header (`:authority` instead); the realm must not
    // fall back to some default.
    let reg = AuthRegistry::start(CONFIG);
    let (status, headers) = e2e::flood::get_http2(reg.port(), "/v2/");
    assert_eq!(status, 401);
    let challenge = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/token\"", reg.url())),
        "over HTTP/2: {challenge}"
    );
}
