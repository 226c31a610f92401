//! Robot accounts with token auth (issue 9): a pull-only robot cannot push
//! (Docker shows `denied`), an expired robot cannot log in, and one that
//! expires after signing in gets nothing from what it was given before.

use std::time::{Duration, Instant};

use e2e::auth::{docker_auth_entry, docker_config_dir, docker_in, docker_login, now, AuthRegistry};
use e2e::client_auth::{oauth, stored_identity_token, CONFIG, DOCKERFILE};
use e2e::{docker, docker_build_busybox, DockerImages};
use serde_json::{json, Value};

#[test]
fn pull_only_robot_cannot_push_and_docker_shows_denied() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let robot = reg.add_robot("puller", &["repository:dev/*:pull"], Some("90d"));
    let image = format!("{host}/dev/app:v1");
    let retag = format!("{host}/dev/app:by-robot");
    let elsewhere = format!("{host}/robot/own:v1");
    let _images = DockerImages(vec![image.clone(), retag.clone(), elsewhere.clone()]);

    let dev_config = docker_config_dir();
    let login = docker_login(dev_config.path(), &host, &dev);
    assert!(login.success(), "{}", login.combined());
    docker_build_busybox(DOCKERFILE, "robot", &image);
    docker_in(dev_config.path()).args(["push", &image]).run_ok();
    docker().args(["rmi", &image]).run_ok();

    let config = docker_config_dir();
    let login = docker_login(config.path(), &host, &robot);
    assert!(login.success(), "robot login:\n{}", login.combined());
    stored_identity_token(&reg, config.path(), &robot);
    docker_in(config.path()).args(["pull", &image]).run_ok();

    docker().args(["tag", &image, &retag]).run_ok();
    docker().args(["tag", &image, &elsewhere]).run_ok();
    for target in [&retag, &elsewhere] {
        let out = docker_in(config.path()).args(["push", target]).run_fail();
        // Docker prints `denied` alone for a DENIED whose message is the
        // code's own and that has no detail (errcode's UnmarshalJSON).
        assert!(
            out.combined()
                .lines()
                .any(|l| l.trim() == "denied" || l.contains("denied: ")),
            "docker's message for a push the robot may not do:\n{}",
            out.combined()
        );
    }
    // Nothing was written.
    let http = reg.basic(&dev);
    let tags = http.get("/v2/dev/app/tags/list");
    assert_eq!(tags.status, 200, "{}", tags.describe());
    let v: Value = serde_json::from_slice(&tags.body).unwrap();
    assert_eq!(v["tags"], json!(["v1"]), "tags of dev/app");
    let admin = reg.add_user("admin", &["--admin"]);
    let mut catalog = reg.basic(&admin).catalog();
    catalog.sort();
    assert_eq!(catalog, ["dev/app"], "repositories");
}

/// Poll the clock (bounded) until `t` (seconds since the epoch) is past.
fn wait_until_past(t: u64) {
    let deadline = Instant::now() + Duration::from_secs(t.saturating_sub(now()) + 10);
    while now() <= t {
        assert!(Instant::now() < deadline, "the clock did not reach {t}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn expired_robot_cannot_log_in() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let robot = reg.add_robot("short", &["repository:dev/*:pull"], Some("1s"));
    // It expires at most a second after `robot add` returned.
    wait_until_past(now() + 1);

    let config = docker_config_dir();
    let login = docker_login(config.path(), &host, &robot);
    assert!(
        !login.success(),
        "an expired robot logged in:\n{}",
        login.combined()
    );
    assert!(
        login.combined().contains("unauthorized"),
        "docker's message:\n{}",
        login.combined()
    );
    assert!(docker_auth_entry(config.path(), &host).is_none());
    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    r.expect_error(&[401], &["UNAUTHORIZED"]);
    let r = reg.basic(&robot).get("/v2/");
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "password"),
            ("username", &robot.user),
            ("password", &robot.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.describe());
}

#[test]
fn robot_that_expires_after_signing_in_is_refused() {
    // Signed in while valid (its password check remembered, a refresh token
    // issued), then expired: neither may let it in afterwards.
    let reg = AuthRegistry::start(CONFIG);
    let t0 = now();
    let robot = reg.add_robot("brief", &["repository:dev/*:pull"], Some("10s"));
    // It expires between t0 + 10 and t1 + 10.
    let t1 = now();
    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    assert_eq!(r.status, 200, "while valid:\n{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "password"),
            ("username", &robot.user),
            ("password", &robot.secret),
            ("service", "registry"),
            ("client_id", "e2e"),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(r.status, 200, "while valid:\n{}", r.describe());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let refresh = v["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {v}"))
        .to_string();
    assert!(
        now() < t0 + 9,
        "signing in took too long for this test's 10 s robot"
    );
    wait_until_past(t1 + 10);

    let r = reg.token_response(Some(&robot), &["repository:dev/app:pull"]);
    assert_eq!(
        r.status,
        401,
        "GET /token with an expired robot's secret (remembered from before it expired?):\n{}",
        r.describe()
    );
    let r = reg.basic(&robot).get("/v2/");
    assert_eq!(r.status, 401, "Basic on /v2/:\n{}", r.describe());
    let r = oauth(
        &reg,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "registry"),
            ("client_id", "e2e"),
        ],
    );
    assert_eq!(r.status, 401, "refresh grant:\n{}", r.describe());
}
