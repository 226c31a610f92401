//! Pull-through cache rules through the ECR API (issue 22): an admin
//! creates one with `aws ecr create-pull-through-cache-rule`, then `docker
//! pull` through it (after the ECR login) fetches from the upstream; the
//! rule is kept in the metadata database (PostgreSQL) and a second node
//! sharing it applies it too, without a restart. Describe, validate,
//! duplicate and unsupported credentials, delete.

use e2e::auth::{docker_config_dir, docker_in, Metadata};
use e2e::ecr::{Ecr, CONFIG};
use e2e::oci::{self, Entry};
use e2e::{docker, DockerImages, Registry};
use std::time::{Duration, Instant};

/// An image Docker can run nothing from but pull: one small layer.
fn upstream_image(salt: &str) -> oci::Image {
    let data = format!("pulled through {salt}\n");
    oci::image(
        "linux",
        "amd64",
        None,
        vec![oci::layer(&[Entry::File(
            "hello.txt",
            0o644,
            data.as_bytes(),
        )])],
    )
}

#[test]
fn a_rule_made_with_the_cli_serves_docker_pulls_on_every_node() {
    // The upstream: another registry, open on loopback.
    let upstream = Registry::start();
    let up = upstream.client();
    up.push_image("library/base", "v1", &upstream_image("node one"));
    up.push_image("library/other", "v1", &upstream_image("node two"));

    let config = format!(
        "{CONFIG}\n[[access.rules]]\ndescription = \"alice pulls through the cache\"\nrepositories = \"hub/**\"\nusers = [\"alice\"]\nactions = [\"pull\"]\n"
    );
    let ecr = Ecr::start_with(&config, Metadata::Postgres);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("root", &["--admin"]);
    let (alice, root) = (ecr.key("alice"), ecr.key("root"));

    // A second node on the same database, with the same secret key, up
    // before the rule exists.
    let text = std::fs::read_to_string(ecr.reg.config_path()).expect("config");
    let key_file = ecr.reg.data_dir().join("ecr-secrets.key");
    let text = text.replacen(
        "[ecr]\n",
        &format!("[ecr]\nsecret_key_file = \"{}\"\n", key_file.display()),
        1,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let second_config = dir.path().join("node2.toml");
    std::fs::write(&second_config, text).expect("config");
    let second = Registry::start_with(&["--config", second_config.to_str().expect("UTF-8")]);

    let upstream_url = upstream.url();
    let (code, _) = ecr.aws_err(
        &alice,
        &[
            "create-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
            "--upstream-registry-url",
            &upstream_url,
        ],
    );
    assert_eq!(code, "AccessDeniedException", "only an admin makes rules");
    let made = ecr.aws_ok(
        &root,
        &[
            "create-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
            "--upstream-registry-url",
            &upstream_url,
        ],
    );
    assert_eq!(made["ecrRepositoryPrefix"], "hub");
    assert_eq!(made["upstreamRegistryUrl"], upstream_url.as_str());
    let (code, _) = ecr.aws_err(
        &root,
        &[
            "create-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
            "--upstream-registry-url",
            &upstream_url,
        ],
    );
    assert_eq!(code, "PullThroughCacheRuleAlreadyExistsException");
    let (code, message) = ecr.aws_err(
        &root,
        &[
            "create-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "ghcr",
            "--upstream-registry-url",
            "ghcr.io",
            "--credential-arn",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/ghcr-abc",
        ],
    );
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("not supported"), "{message}");
    let listed = ecr.aws_ok(&root, &["describe-pull-through-cache-rules"]);
    assert_eq!(
        listed["pullThroughCacheRules"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    let valid = ecr.aws_ok(
        &root,
        &[
            "validate-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
        ],
    );
    assert_eq!(valid["isValid"], true, "{valid}");

    // docker pull through the rule, on the node that made it.
    let image = format!("{}/hub/library/base:v1", ecr.reg.host());
    let other = format!("{}/hub/library/other:v1", second.host());
    let _images = DockerImages(vec![image.clone(), other.clone()]);
    let cfg = docker_config_dir();
    let login = ecr.docker_login(&alice, cfg.path());
    assert!(login.success(), "{}", login.combined());
    docker_in(cfg.path()).args(["pull", &image]).run_ok();
    let described = ecr.aws_ok(
        &alice,
        &["describe-images", "--repository-name", "hub/library/base"],
    );
    assert_eq!(
        described["imageDetails"][0]["imageTags"],
        serde_json::json!(["v1"]),
        "{described}"
    );

    // ... and on the other node, which read the rule from the database.
    let password = ecr
        .aws(&alice, &["get-login-password"])
        .stdout
        .trim()
        .to_owned();
    ecr.reg.note_secret("a login password", &password);
    let bin = std::env::var("DOCKER_BIN").unwrap_or_else(|_| "/usr/bin/docker".to_string());
    let mut login = std::process::Command::new(bin);
    login.env("DOCKER_CONFIG", cfg.path()).args([
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        &second.host(),
    ]);
    let out = e2e::auth::run_with_stdin(&mut login, &password, Duration::from_secs(120));
    assert!(
        out.success(),
        "login on the second node:\n{}",
        out.combined()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pull = docker_in(cfg.path()).args(["pull", &other]).run();
        if pull.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second node never applied the rule:\n{}",
            pull.combined()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Deleted: no longer listed; new names under the prefix are not
    // fetched any more.
    let deleted = ecr.aws_ok(
        &root,
        &[
            "delete-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
        ],
    );
    assert_eq!(deleted["ecrRepositoryPrefix"], "hub");
    let (code, _) = ecr.aws_err(
        &root,
        &[
            "delete-pull-through-cache-rule",
            "--ecr-repository-prefix",
            "hub",
        ],
    );
    assert_eq!(code, "PullThroughCacheRuleNotFoundException");
    let listed = ecr.aws_ok(&root, &["describe-pull-through-cache-rules"]);
    assert_eq!(listed["pullThroughCacheRules"], serde_json::json!([]));
    let fresh = format!("{}/hub/library/never:v1", ecr.reg.host());
    up.push_image("library/never", "v1", &upstream_image("never"));
    let pull = docker_in(cfg.path()).args(["pull", &fresh]).run();
    assert!(
        !pull.success(),
        "pulled through a deleted rule:\n{}",
        pull.combined()
    );
    let _ = docker().args(["rmi", "-f", &fresh]).run();
}
