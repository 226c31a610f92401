//! The API's tag writes with token auth on: moving a tag back needs push,
//! tag immutability needs delete, both need credentials in a header (a
//! browser's session cookie is not enough), and a repository the caller
//! cannot read is unknown to it. The CLI signs in with --username and
//! REGISTRY_PASSWORD.

use e2e::auth::AuthRegistry;
use e2e::client_auth::CONFIG;
use e2e::{oci, registry_bin};
use reqwest::Method;

fn code(r: &e2e::http::Resp) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn tag_writes_need_the_right_permission_and_header_credentials() {
    let mut reg = AuthRegistry::start(CONFIG);
    let dev = reg.add_user("dev", &[]);
    let puller = reg.add_robot("puller", &["repository:dev/*:pull"], Some("1d"));
    let pusher = reg.add_robot("pusher", &["repository:dev/*:pull,push"], Some("1d"));
    let owner = reg.basic(&dev);
    let v1 = oci::simple_image("auth-rollback-1");
    let v2 = oci::simple_image("auth-rollback-2");
    for image in [&v1, &v2] {
        for b in image.blobs() {
            assert_eq!(owner.upload_blob("dev/app", &b.data).status, 201);
        }
        assert_eq!(
            owner
                .put_manifest("dev/app", "prod", &image.manifest)
                .status,
            201
        );
    }
    let rollback = "/api/v1/repositories/dev/app/tags/prod/rollback";
    let immutability = "/api/v1/repositories/dev/app/immutability";
    let body = serde_json::json!({ "steps": 1 }).to_string();
    let send = |http: &e2e::auth::Http, method: Method, path: &str, body: &str| {
        http.send(
            http.request(method, path)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
    };

    // No credentials: 401 with a challenge. Pull only: 403 DENIED.
    let r = send(&reg.anonymous(), Method::POST, rollback, &body);
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = send(&reg.basic(&puller), Method::POST, rollback, &body);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (403, "DENIED"),
        "{}",
        r.describe()
    );
    // A repository the caller cannot read is unknown.
    let r = send(
        &reg.basic(&puller),
        Method::POST,
        "/api/v1/repositories/other/app/tags/prod/rollback",
        &body,
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (404, "NAME_UNKNOWN"),
        "{}",
        r.describe()
    );
    assert_eq!(
        owner.get_manifest("dev/app", "prod").body,
        v2.manifest.data,
        "nothing moved"
    );
    // Push: the tag goes back.
    let r = send(&reg.basic(&pusher), Method::POST, rollback, &body);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(owner.get_manifest("dev/app", "prod").body, v1.manifest.data);

    // Immutability needs delete: the pusher is refused, the owner is not.
    let on = serde_json::json!({ "immutable": true }).to_string();
    let r = send(&reg.basic(&pusher), Method::PUT, immutability, &on);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (403, "DENIED"),
        "{}",
        r.describe()
    );
    let r = send(&owner, Method::PUT, immutability, &on);
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = owner.put_manifest("dev/app", "prod", &v2.manifest);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "TAG_INVALID"),
        "{}",
        r.describe()
    );

    // The CLI signs in from the environment; without it the registry's
    // answer is named.
    let history = e2e::cmd(registry_bin())
        .args([
            "tag",
            "history",
            "dev/app:prod",
            "--url",
            &reg.url(),
            "--username",
            "dev",
        ])
        .env("REGISTRY_PASSWORD", &dev.secret)
        .run_ok()
        .stdout;
    assert_eq!(history.lines().count(), 4, "{history}");
    // Who made each change: the rollback the robot, the pushes the owner.
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert!(
        rows[0].contains("rollback") && rows[0].contains("pusher"),
        "{history}"
    );
    assert!(rows[1..].iter().all(|r| r.contains(" dev ")), "{history}");
    let refused = e2e::cmd(registry_bin())
        .args(["tag", "rollback", "dev/app:prod", "--url", &reg.url()])
        .run_fail();
    assert!(
        refused.stderr.contains("wants credentials"),
        "{}",
        refused.combined()
    );
    reg.note_secret("dev's password", &dev.secret);
    // Neither the password nor the robots' secrets reached the log.
    reg.assert_no_secret_logged();
}
