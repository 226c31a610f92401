//! containerd's `ctr` against the registry: pull by tag, pull one platform of
//! an index, push to another repository (with a cross-repository mount).

use e2e::oci;
use e2e::{containerd_snapshotter, ctr, Registry};

/// Content digests known to containerd in `namespace`.
fn content_digests(namespace: &str) -> Vec<String> {
    ctr(namespace)
        .args(["content", "ls", "-q"])
        .run_ok()
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn image_refs(namespace: &str) -> Vec<String> {
    ctr(namespace)
        .args(["image", "ls", "-q"])
        .run_ok()
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// Removes the images of a test namespace at the end (best effort).
struct NamespaceCleanup(String, Vec<String>);

impl Drop for NamespaceCleanup {
    fn drop(&mut self) {
        for r in &self.1 {
            let _ = ctr(&self.0).args(["image", "rm", "--sync", r]).run();
        }
    }
}

#[test]
fn ctr_pull_by_tag_and_push_with_cross_repo_mount() {
    e2e::require_env("CONTAINERD_ADDRESS");
    let reg = Registry::start();
    let ns = format!("e2e-pushmount-{}", reg.port());
    let client = reg.client();
    let image = oci::simple_image("containerd-push");
    client.push_image("e2e/ctr-src", "v1", &image);

    let src = format!("{}/e2e/ctr-src:v1", reg.host());
    let dst = format!("{}/e2e/ctr-dst:v1", reg.host());
    let _cleanup = NamespaceCleanup(ns.clone(), vec![src.clone(), dst.clone()]);

    ctr(&ns)
        .args(["image", "pull", "--plain-http", "--snapshotter"])
        .arg(containerd_snapshotter())
        .arg(&src)
        .run_ok();
    assert!(image_refs(&ns).contains(&src), "{src} not in ctr image ls");
    let content = content_digests(&ns);
    for b in image.blobs().into_iter().chain([&image.manifest]) {
        assert!(
            content.contains(&b.digest),
            "containerd content store lacks {} after pull: {content:?}",
            b.digest
        );
    }
    let check = ctr(&ns).args(["image", "check"]).run_ok().stdout;
    assert!(
        check
            .lines()
            .any(|l| l.starts_with(&src) && l.contains("complete")),
        "image not complete according to `ctr image check`:\n{check}"
    );

    // Push the pulled image to another repository of the same registry.
    // containerd knows where the blobs came from and should mount them.
    ctr(&ns)
        .args(["image", "push", "--plain-http", &dst, &src])
        .run_ok();

    reg.wait_for_request("PUT /v2/e2e/ctr-dst/manifests/v1 -> 201", |r| {
        r.method == "PUT" && r.path == "/v2/e2e/ctr-dst/manifests/v1" && r.status == 201
    });
    let layer_digests: Vec<&str> = image
        .layers
        .iter()
        .map(|l| l.blob.digest.as_str())
        .collect();
    let mounts: Vec<_> = reg
        .find_requests("POST", "/v2/e2e/ctr-dst/blobs/uploads/", Some(201))
        .into_iter()
        .filter(|r| {
            r.param("from") == Some("e2e/ctr-src")
                && r.param("mount").is_some_and(|m| layer_digests.contains(&m))
        })
        .collect();
    assert!(
        !mounts.is_empty(),
        "no cross-repository mount (POST /v2/e2e/ctr-dst/blobs/uploads/?mount=<layer>&from=e2e/ctr-src -> 201) \
         in the registry log; requests:\n{}",
        reg.requests_summary()
    );

    // The destination serves the same manifest and blobs.
    let m = client.get_manifest("e2e/ctr-dst", "v1");
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(image.manifest.digest.as_str())
    );
    assert_eq!(e2e::sha256_digest(&m.body), image.manifest.digest);
    for b in image.blobs() {
        client.get_blob_verified("e2e/ctr-dst", &b.digest);
    }
}

#[test]
fn ctr_pull_single_platform_from_index() {
    e2e::require_env("CONTAINERD_ADDRESS");
    let reg = Registry::start();
    let ns = format!("e2e-platform-{}", reg.port());
    let client = reg.client();
    let multi = oci::two_platform_image("containerd-platform");
    client.push_index("e2e/ctr-multi", "v1", &multi);
    let reference = format!("{}/e2e/ctr-multi:v1", reg.host());
    let _cleanup = NamespaceCleanup(ns.clone(), vec![reference.clone()]);

    ctr(&ns)
        .args([
            "image",
            "pull",
            "--plain-http",
            "--platform",
            "linux/arm64/v8",
        ])
        .args(["--snapshotter", &containerd_snapshotter()])
        .arg(&reference)
        .run_ok();

    let content = content_digests(&ns);
    let arm64 = multi.image("arm64");
    let amd64 = multi.image("amd64");
    assert!(content.contains(&multi.index.digest), "index not fetched");
    for b in arm64.blobs().into_iter().chain([&arm64.manifest]) {
        assert!(
            content.contains(&b.digest),
            "arm64 content {} ({}) not fetched; content: {content:?}",
            b.digest,
            b.media_type
        );
    }
    // The amd64-only layer and config must not have been fetched.
    let amd64_only = &amd64.layers[1].blob.digest;
    assert!(
        !content.contains(amd64_only) && !content.contains(&amd64.config.digest),
        "amd64 content was fetched for an arm64 pull: {content:?}"
    );
    // ctr has exited: once the barrier is logged, so is every request it
    // made, and the absence below is real.
    reg.log_barrier();
    assert!(
        reg.count_requests(
            "GET",
            &format!("/v2/e2e/ctr-multi/manifests/{}", arm64.manifest.digest),
            Some(200)
        ) > 0,
        "the arm64 manifest was not fetched; requests:\n{}",
        reg.requests_summary()
    );
    assert_eq!(
        reg.count_requests(
            "GET",
            &format!("/v2/e2e/ctr-multi/blobs/{amd64_only}"),
            None
        ),
        0,
        "amd64 layer was downloaded"
    );

    // Default platform pull of the same index also works (amd64 here).
    ctr(&ns)
        .args(["image", "pull", "--plain-http", "--all-platforms"])
        .arg(&reference)
        .run_ok();
    let content = content_digests(&ns);
    assert!(content.contains(amd64_only), "--all-platforms missed amd64");
}
