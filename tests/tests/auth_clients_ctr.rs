//! Token auth with containerd's `ctr --user` (issue 9): no pull without
//! credentials, pull and push as a user, no push as a pull-only robot.

use e2e::auth::{Account, AuthRegistry};
use e2e::client_auth::{wait_access, CONFIG};
use e2e::oci;
use e2e::{containerd_snapshotter, ctr};

/// Removes a containerd namespace's images at the end.
struct CtrImages(String, Vec<String>);

impl Drop for CtrImages {
    fn drop(&mut self) {
        for r in &self.1 {
            let _ = ctr(&self.0).args(["image", "rm", "--sync", r]).run();
        }
    }
}

#[test]
fn ctr_pull_and_push_with_user() {
    e2e::require_env("CONTAINERD_ADDRESS");
    let reg = AuthRegistry::start(CONFIG);
    let dev = reg.add_user("dev", &[]);
    let robot = reg.add_robot("reader", &["repository:dev/*:pull"], None);
    let image = oci::simple_image("ctr with auth");
    reg.basic(&dev).push_image("dev/ctr-src", "v1", &image);
    let ns = format!("e2e-auth-{}", reg.port());
    let src = format!("{}/dev/ctr-src:v1", reg.host());
    let dst = format!("{}/dev/ctr-dst:v1", reg.host());
    let _cleanup = CtrImages(ns.clone(), vec![src.clone(), dst.clone()]);
    let pull = |user: Option<&Account>| {
        let mut c = ctr(&ns);
        c.args(["image", "pull", "--plain-http", "--snapshotter"])
            .arg(containerd_snapshotter());
        if let Some(u) = user {
            c.args(["--user", &format!("{}:{}", u.user, u.secret)]);
        }
        c.arg(&src);
        c.run()
    };

    let anonymous = pull(None);
    assert!(
        !anonymous.success(),
        "ctr pulled a private image without --user:\n{}",
        anonymous.combined()
    );
    assert!(
        anonymous.combined().contains("401") || anonymous.combined().contains("nauthorized"),
        "{}",
        anonymous.combined()
    );
    let out = pull(Some(&dev));
    assert!(out.success(), "ctr pull --user:\n{}", out.combined());
    let check = ctr(&ns).args(["image", "check"]).run_ok().stdout;
    assert!(
        check
            .lines()
            .any(|l| l.contains(&src) && l.contains("complete")),
        "{check}"
    );

    // Push to another repository, as dev; a pull-only robot may not.
    let push = |user: &Account| {
        ctr(&ns)
            .args(["image", "push", "--plain-http", "--user"])
            .arg(format!("{}:{}", user.user, user.secret))
            .args([&dst, &src])
            .run()
    };
    let refused = push(&robot);
    assert!(
        !refused.success(),
        "a pull-only robot pushed with ctr:\n{}",
        refused.combined()
    );
    let out = push(&dev);
    assert!(out.success(), "ctr push --user:\n{}", out.combined());
    let m = reg.basic(&dev).get_manifest("dev/ctr-dst", "v1");
    assert_eq!(m.status, 200, "{}", m.describe());
    assert_eq!(
        m.require_header("docker-content-digest"),
        image.manifest.digest
    );
    wait_access(&reg, "ctr's manifest PUT as dev", |v| {
        v["method"] == "PUT" && v["path"] == "/v2/dev/ctr-dst/manifests/v1" && v["user"] == "dev"
    });
}
