//! ECR's login flow (issue 22) with the real clients: `aws ecr
//! get-login-password | docker login --username AWS --password-stdin`,
//! then `docker push` and `docker pull` with exactly the key's rights; a
//! disabled key's login stops working at once. `GetAuthorizationToken`'s
//! shape as boto3 reads it: `AWS:<password>`, 12 hours, the proxy endpoint.

use e2e::auth::{docker_config_dir, docker_in, Metadata};
use e2e::client_auth::DOCKERFILE;
use e2e::ecr::Ecr;
use e2e::{docker, docker_build_busybox, DockerImages};

fn image_id(reference: &str) -> String {
    docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .run_ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn get_login_password_into_docker_login_pushes_and_pulls_with_the_keys_rights() {
    let ecr = Ecr::start(Metadata::Sqlite);
    ecr.reg.add_user("alice", &[]);
    ecr.reg.add_user("bob", &[]);
    let (alice, bob) = (ecr.key("alice"), ecr.key("bob"));
    let host = ecr.reg.host();

    // The token as boto3 reads it.
    let t = ecr.boto3(
        &alice,
        "import base64\n\
         d = ecr.get_authorization_token()['authorizationData'][0]\n\
         user, password = base64.b64decode(d['authorizationToken']).decode().split(':', 1)\n\
         now = datetime.datetime.now(datetime.timezone.utc)\n\
         result = {'user': user, 'password': password, 'endpoint': d['proxyEndpoint'], \
                   'ttl': (d['expiresAt'] - now).total_seconds()}",
    );
    ecr.reg
        .note_secret("a login password", t["password"].as_str().unwrap());
    assert_eq!(t["user"], "AWS");
    assert_eq!(t["endpoint"], ecr.endpoint());
    let ttl = t["ttl"].as_f64().unwrap();
    assert!(
        (12.0 * 3600.0 - 120.0..=12.0 * 3600.0).contains(&ttl),
        "ttl {ttl}"
    );

    ecr.aws_ok(
        &alice,
        &["create-repository", "--repository-name", "team/app"],
    );
    let image = format!("{host}/team/app:v1");
    let _images = DockerImages(vec![image.clone(), format!("{host}/team/app:bob")]);
    docker_build_busybox(DOCKERFILE, "ecr-login", &image);
    let built = image_id(&image);

    let alice_cfg = docker_config_dir();
    let login = ecr.docker_login(&alice, alice_cfg.path());
    assert!(login.success(), "docker login:\n{}", login.combined());
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    docker_in(alice_cfg.path()).args(["push", &image]).run_ok();

    // What Docker pushed, as ECR describes it.
    let d = ecr.aws_ok(
        &alice,
        &["describe-images", "--repository-name", "team/app"],
    );
    let details = d["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{d}");
    assert_eq!(details[0]["imageTags"], serde_json::json!(["v1"]));
    assert_eq!(details[0]["registryId"], e2e::ecr::REGISTRY_ID);
    assert!(
        details[0]["imageSizeInBytes"].as_u64().unwrap() > 500_000,
        "{d}"
    );
    assert_eq!(
        details[0]["imageManifestMediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    docker().args(["rmi", &image]).run_ok();
    docker_in(alice_cfg.path()).args(["pull", &image]).run_ok();
    assert_eq!(image_id(&image), built, "the pulled image differs");
    // The pull is recorded for lifecycle policies and shown by ECR.
    let pulled = ecr.aws_ok(
        &alice,
        &["describe-images", "--repository-name", "team/app"],
    );
    assert!(
        pulled["imageDetails"][0]
            .get("lastRecordedPullTime")
            .is_some(),
        "{pulled}"
    );

    // A login password stops at its expiry: one made (with the key's
    // secret, as the registry makes them) to have expired a second ago is
    // refused, one good for another minute is taken.
    let password_at = |offset: i64| -> String {
        let v = ecr.boto3(
            &alice,
            &format!(
                "import hmac, hashlib, base64, time\n\
                 exp = int(time.time()) + ({offset})\n\
                 mac = hmac.new({secret:?}.encode(), ('ecr1.%s.%d' % ({id:?}, exp)).encode(), hashlib.sha256).digest()\n\
                 result = 'ecr1.%s.%d.%s' % ({id:?}, exp, base64.urlsafe_b64encode(mac).decode().rstrip('='))",
                secret = alice.secret,
                id = alice.id
            ),
        );
        let p = v.as_str().unwrap().to_owned();
        ecr.reg.note_secret("a made login password", &p);
        p
    };
    for (offset, works) in [(-1, false), (60, true)] {
        let cfg = docker_config_dir();
        let bin = std::env::var("DOCKER_BIN").unwrap_or_else(|_| "/usr/bin/docker".to_string());
        let mut login = std::process::Command::new(bin);
        login.env("DOCKER_CONFIG", cfg.path()).args([
            "login",
            "--username",
            "AWS",
            "--password-stdin",
            &host,
        ]);
        let out = e2e::auth::run_with_stdin(
            &mut login,
            &password_at(offset),
            std::time::Duration::from_secs(120),
        );
        assert_eq!(
            out.success(),
            works,
            "expiry {offset:+} s:\n{}",
            out.combined()
        );
    }

    // bob may pull, not push: his login says so.
    let bob_cfg = docker_config_dir();
    let login = ecr.docker_login(&bob, bob_cfg.path());
    assert!(login.success(), "bob's docker login:\n{}", login.combined());
    docker().args(["rmi", &image]).run_ok();
    docker_in(bob_cfg.path()).args(["pull", &image]).run_ok();
    let bobs = format!("{host}/team/app:bob");
    docker().args(["tag", &image, &bobs]).run_ok();
    let push = docker_in(bob_cfg.path()).args(["push", &bobs]).run();
    assert!(
        !push.success(),
        "bob pushed with a pull-only key:\n{}",
        push.combined()
    );

    // Disabled: the key's signatures and its login both stop at once.
    let out = ecr.reg.cli(&["access-key", "disable", &alice.id], "");
    assert!(out.success(), "{}", out.combined());
    docker().args(["rmi", &image]).run_ok();
    let pull = docker_in(alice_cfg.path()).args(["pull", &image]).run();
    assert!(
        !pull.success(),
        "a disabled key's login pulled:\n{}",
        pull.combined()
    );
    let (code, _) = ecr.aws_err(&alice, &["describe-repositories"]);
    assert_eq!(code, "UnrecognizedClientException");
    let out = ecr
        .reg
        .cli(&["access-key", "disable", "--enable", &alice.id], "");
    assert!(out.success(), "{}", out.combined());
    docker_in(alice_cfg.path()).args(["pull", &image]).run_ok();

    // The list shows the keys (never a secret) and when they were used.
    let list = ecr.reg.cli(&["access-key", "list"], "");
    assert!(list.success(), "{}", list.combined());
    assert!(
        list.stdout.contains(&alice.id) && list.stdout.contains(&bob.id),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(&alice.secret), "{}", list.stdout);
}
