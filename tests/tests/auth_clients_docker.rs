//! Token auth with the Docker CLI (issue 9): `docker login` (an identity
//! token stored, no password), push and pull through the token flow,
//! logout; then a private pull is refused with Docker's message and a
//! public one works anonymously.

use e2e::auth::{docker_auth_entry, docker_config_dir, docker_in, docker_login, AuthRegistry};
use e2e::client_auth::{stored_identity_token, wait_access, CONFIG, DOCKERFILE};
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
fn docker_login_push_pull_logout_then_private_pull_is_refused_and_public_pull_works() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let admin = reg.add_user("admin", &["--admin"]);
    let private = format!("{host}/dev/app:v1");
    let public = format!("{host}/public/base:v1");
    let _images = DockerImages(vec![private.clone(), public.clone()]);
    let dev_config = docker_config_dir();
    let admin_config = docker_config_dir();
    let cfg = dev_config.path();

    // A public image, pushed by the admin.
    docker_build_busybox(DOCKERFILE, "public", &public);
    let login = docker_login(admin_config.path(), &host, &admin);
    assert!(login.success(), "admin login:\n{}", login.combined());
    stored_identity_token(&reg, admin_config.path(), &admin);
    docker_in(admin_config.path())
        .args(["push", &public])
        .run_ok();

    // dev: login (identity token stored), push, pull.
    let login = docker_login(cfg, &host, &dev);
    assert!(login.success(), "docker login:\n{}", login.combined());
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    let identity = stored_identity_token(&reg, cfg, &dev);
    assert_ne!(identity, dev.secret);
    wait_access(&reg, "a token issued to dev", |v| {
        v["path"] == "/token" && v["status"] == 200 && v["user"] == "dev"
    });

    docker_build_busybox(DOCKERFILE, "private", &private);
    let built = image_id(&private);
    docker_in(cfg).args(["push", &private]).run_ok();
    // The push went through tokens the identity token got (OAuth2 refresh).
    wait_access(&reg, "dev's refresh-token grant", |v| {
        v["method"] == "POST" && v["path"] == "/token" && v["status"] == 200 && v["user"] == "dev"
    });
    wait_access(&reg, "dev's manifest PUT", |v| {
        v["method"] == "PUT"
            && v["path"] == "/v2/dev/app/manifests/v1"
            && v["status"] == 201
            && v["user"] == "dev"
    });
    docker().args(["rmi", &private]).run_ok();
    docker_in(cfg).args(["pull", &private]).run_ok();
    assert_eq!(
        image_id(&private),
        built,
        "pulled image differs from the pushed one"
    );

    // Logout: the entry is gone; the public image still pulls (anonymous),
    // and a private pull is refused with Docker's message for a 401.
    docker_in(cfg).args(["logout", &host]).run_ok();
    assert!(
        docker_auth_entry(cfg, &host).is_none(),
        "docker logout left credentials behind"
    );
    docker().args(["rmi", &public]).run_ok();
    docker_in(cfg).args(["pull", &public]).run_ok();
    let anonymous_pull = wait_access(&reg, "the anonymous manifest GET", |v| {
        v["method"] == "GET"
            && v["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v2/public/base/manifests/"))
            && v["status"] == 200
    });
    assert!(anonymous_pull.get("user").is_none(), "{anonymous_pull}");

    docker().args(["rmi", &private]).run_ok();
    let refused = docker_in(cfg).args(["pull", &private]).run_fail();
    assert!(
        refused
            .combined()
            .contains("unauthorized: authentication required"),
        "docker's message for a refused pull:\n{}",
        refused.combined()
    );
}
