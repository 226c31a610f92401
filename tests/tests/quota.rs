//! Namespace quotas with the real client: `docker push` into a namespace
//! over its byte quota, or one repository too many, fails showing the
//! registry's message naming the quota; what fits still pushes and pulls;
//! the API reports each namespace's usage against its quota.

use e2e::{docker, docker_build_busybox, DockerImages, Registry};

const CONFIG: &str = r#"
[gc]
interval_secs = 0

[[quotas]]
namespace = "tiny"
bytes = 100000

[[quotas]]
namespace = "two"
repositories = 1
"#;

#[test]
fn docker_push_over_a_quota_shows_which_quota() {
    e2e::require_env("DOCKER_HOST");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let reg = Registry::start_in(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let host = reg.host();
    let local = format!("{host}/quota/base:1");
    let (tiny, two_a, two_b) = (
        format!("{host}/tiny/app:1"),
        format!("{host}/two/a:1"),
        format!("{host}/two/b:1"),
    );
    let _images = DockerImages(vec![
        local.clone(),
        tiny.clone(),
        two_a.clone(),
        two_b.clone(),
    ]);
    docker_build_busybox("FROM scratch\nCOPY busybox /bin/busybox\n", "q", &local);

    // busybox alone is over a megabyte: more than tiny's 100 kB.
    docker().args(["tag", &local, &tiny]).run_ok();
    let push = docker().args(["push", &tiny]).run();
    assert!(!push.success(), "the push went over the quota");
    assert!(
        push.combined()
            .contains("quota exceeded: namespace tiny may hold 97.7 KiB (100000 bytes)"),
        "{}",
        push.combined()
    );

    // One repository in `two`: the first pushes (and pulls), a second not.
    docker().args(["tag", &local, &two_a]).run_ok();
    docker().args(["push", &two_a]).run_ok();
    docker().args(["rmi", &two_a]).run_ok();
    docker().args(["pull", &two_a]).run_ok();
    docker().args(["tag", &local, &two_b]).run_ok();
    let push = docker().args(["push", &two_b]).run();
    assert!(!push.success(), "a second repository was allowed");
    assert!(
        push.combined()
            .contains("namespace two may hold 1 repository and holds 1"),
        "{}",
        push.combined()
    );

    let usage: serde_json::Value = serde_json::from_str(
        &reg.client()
            .get("/api/v1/namespaces")
            .expect_status(200)
            .text(),
    )
    .unwrap();
    let ns = usage["namespaces"].as_array().unwrap();
    let find = |name: &str| ns.iter().find(|n| n["namespace"] == name).cloned().unwrap();
    // Of the refused push, only the small config that fitted was kept.
    let tiny_usage = find("tiny");
    assert!(
        tiny_usage["bytes"].as_i64().unwrap() < 100000,
        "{tiny_usage}"
    );
    assert_eq!(tiny_usage["quota"]["bytes"], 100000);
    let two = find("two");
    assert_eq!(two["repositories"], 1, "{two}");
    assert!(two["bytes"].as_i64().unwrap() > 1_000_000, "{two}");
    assert_eq!(two["quota"]["repositories"], 1);
}
