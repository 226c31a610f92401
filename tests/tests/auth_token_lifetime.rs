//! A token this registry issued is dead the second its `exp` passes (item 9
//! of the outside review): no clock-skew leeway for our own tokens, whose
//! `exp` our own clock set. (Another issuer's tokens keep a leeway; the
//! verifier's unit tests cover that.)

use std::time::{Duration, Instant};

use e2e::auth::{jwt_part, now, AuthRegistry};

#[test]
fn a_token_of_ours_one_second_past_exp_is_refused() {
    let reg = AuthRegistry::start("[token]\nttl_secs = 3\n");
    let alice = reg.add_user("alice", &[]);
    let token = reg.token(Some(&alice), &["repository:alice/app:pull"]);
    let exp = jwt_part(&token, 1)["exp"]
        .as_u64()
        .unwrap_or_else(|| panic!("no exp in {}", jwt_part(&token, 1)));
    let http = reg.bearer(&token);
    let r = http.get("/v2/");
    assert_eq!(r.status, 200, "the fresh token:\n{}", r.describe());
    // Poll the clock until a second past `exp` (what expiry itself takes).
    let deadline = Instant::now() + Duration::from_secs(exp.saturating_sub(now()) + 10);
    while now() < exp + 1 {
        assert!(Instant::now() < deadline, "the clock did not reach exp + 1");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = http.get("/v2/");
    assert_eq!(
        r.status,
        401,
        "our token, {}s past its exp:\n{}",
        now() - exp,
        r.describe()
    );
    let challenge = r.require_header("www-authenticate");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
}
