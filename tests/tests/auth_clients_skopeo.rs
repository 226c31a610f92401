//! Token auth with skopeo (issue 9): `--creds`, and `--authfile` with a
//! Kubernetes image pull secret for a pull-only robot, which cannot push.

use std::path::Path;

use e2e::auth::AuthRegistry;
use e2e::client_auth::{wait_access, CONFIG};
use e2e::oci;
use e2e::skopeo;
use serde_json::{json, Value};

/// skopeo with no ambient credentials: its own HOME, XDG_RUNTIME_DIR and
/// DOCKER_CONFIG.
fn skopeo_alone(work: &Path) -> e2e::Cmd {
    let mut c = skopeo(work);
    c.env("HOME", work)
        .env("XDG_RUNTIME_DIR", work)
        .env("DOCKER_CONFIG", work.join("no-docker-config"))
        .env("REGISTRY_AUTH_FILE", work.join("no-auth.json"));
    c
}

#[test]
fn skopeo_with_creds_and_a_kubernetes_image_pull_secret() {
    let reg = AuthRegistry::start(CONFIG);
    let host = reg.host();
    let dev = reg.add_user("dev", &[]);
    let puller = reg.add_robot("k8s-node", &["repository:dev/*:pull"], Some("30d"));
    let image = oci::simple_image("skopeo with auth");
    reg.basic(&dev).push_image("dev/sk", "v1", &image);
    let work = tempfile::tempdir().unwrap();
    let src = format!("docker://{host}/dev/sk:v1");

    let out = skopeo_alone(work.path())
        .args(["inspect", "--raw", "--tls-verify=false", &src])
        .run();
    assert!(
        !out.success(),
        "skopeo read a private image with no credentials:\n{}",
        out.combined()
    );

    // --creds
    let creds = format!("{}:{}", dev.user, dev.secret);
    let raw = skopeo_alone(work.path())
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &src,
        ])
        .run_ok()
        .stdout;
    assert_eq!(e2e::sha256_digest(raw.as_bytes()), image.manifest.digest);
    skopeo_alone(work.path())
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(["--src-creds", &creds, "--dest-creds", &creds])
        .arg(&src)
        .arg(format!("docker://{host}/dev/sk-copy:v1"))
        .run_ok();
    let m = reg.basic(&dev).get_manifest("dev/sk-copy", "v1");
    assert_eq!(m.status, 200, "{}", m.describe());

    // --authfile: the `.dockerconfigjson` of a Kubernetes image pull secret
    // (`kubectl create secret docker-registry`) for the robot.
    let basic =
        data_encoding::BASE64.encode(format!("{}:{}", puller.user, puller.secret).as_bytes());
    let secret = json!({"auths": {host.clone(): {
        "username": puller.user,
        "password": puller.secret,
        "auth": basic,
    }}});
    let authfile = work.path().join("dockerconfigjson");
    std::fs::write(&authfile, secret.to_string()).unwrap();
    let layout = work.path().join("layout");
    skopeo_alone(work.path())
        .args(["copy", "--src-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(&src)
        .arg(format!("oci:{}:v1", layout.display()))
        .run_ok();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        Some(image.manifest.digest.as_str()),
        "{index}"
    );
    for b in image.blobs() {
        let p = layout.join("blobs/sha256").join(b.hex());
        assert_eq!(std::fs::read(&p).unwrap(), b.data, "{}", p.display());
    }
    // The node's pull secret cannot push.
    let out = skopeo_alone(work.path())
        .args(["copy", "--dest-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}/dev/sk-by-node:v1"))
        .run();
    assert!(!out.success(), "a pull secret pushed:\n{}", out.combined());
    let r = reg.basic(&dev).get_manifest("dev/sk-by-node", "v1");
    assert!(matches!(r.status, 404), "{}", r.describe());
    wait_access(&reg, "the robot's pull", |v| {
        v["path"] == "/v2/dev/sk/manifests/v1"
            && v["status"] == 200
            && v["user"] == "robot+k8s-node"
    });
}
