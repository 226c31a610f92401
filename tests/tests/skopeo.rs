//! skopeo against the registry: copy a generated two-platform OCI layout in,
//! inspect it, list tags, copy it back out, delete it.

use e2e::oci::{self, MultiImage};
use e2e::{skopeo, Registry};

fn assert_index_references_both(raw: &[u8], multi: &MultiImage) {
    let v: serde_json::Value = serde_json::from_slice(raw).expect("index is JSON");
    let digests: Vec<&str> = v["manifests"]
        .as_array()
        .expect("index has manifests")
        .iter()
        .filter_map(|m| m["digest"].as_str())
        .collect();
    for img in &multi.images {
        assert!(
            digests.contains(&img.manifest.digest.as_str()),
            "index does not reference the {} manifest {}: {}",
            img.architecture,
            img.manifest.digest,
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn skopeo_copy_inspect_list_delete() {
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let multi = oci::two_platform_image("skopeo");
    oci::write_layout(&layout, "v1", &multi);
    let dest = format!("docker://{}/e2e/sk:v1", reg.host());

    // Copy the whole index (both platforms) into the registry.
    skopeo(work.path())
        .args([
            "copy",
            "--all",
            "--format",
            "oci",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&dest)
        .run_ok();

    // The registry returns the index byte-for-byte.
    let raw = skopeo(work.path())
        .args(["inspect", "--tls-verify=false", "--raw", &dest])
        .run_ok()
        .stdout;
    assert_index_references_both(raw.as_bytes(), &multi);
    assert_eq!(
        raw.as_bytes(),
        &multi.index.data[..],
        "skopeo inspect --raw returned different index bytes"
    );

    // The same through plain HTTP: digest header and per-platform manifests.
    let client = reg.client();
    let r = client.get_manifest("e2e/sk", "v1");
    assert_eq!(r.body, multi.index.data);
    assert_eq!(
        r.header("docker-content-digest").as_deref(),
        Some(multi.index.digest.as_str())
    );
    for img in &multi.images {
        let m = client.get_manifest("e2e/sk", &img.manifest.digest);
        assert_eq!(m.body, img.manifest.data);
        for b in img.blobs() {
            client.get_blob_verified("e2e/sk", &b.digest);
        }
    }

    // Per-platform inspect sees the right config.
    let inspect = skopeo(work.path())
        .args([
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            "inspect",
            "--tls-verify=false",
            "--config",
            &dest,
        ])
        .run_ok()
        .stdout;
    let cfg: serde_json::Value = serde_json::from_str(&inspect).expect("config JSON");
    assert_eq!(cfg["architecture"], "arm64", "{inspect}");

    // list-tags
    let tags = skopeo(work.path())
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/e2e/sk", reg.host()))
        .run_ok()
        .stdout;
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("list-tags JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]), "{tags}");

    // Copy back out to a new layout and compare every blob.
    let out_layout = work.path().join("out");
    skopeo(work.path())
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(&dest)
        .arg(format!("oci:{}:copied", out_layout.display()))
        .run_ok();
    for img in &multi.images {
        for b in img.blobs().into_iter().chain([&img.manifest]) {
            let p = out_layout.join("blobs/sha256").join(b.hex());
            let data = std::fs::read(&p)
                .unwrap_or_else(|e| panic!("{} missing after copy back: {e}", p.display()));
            assert_eq!(data, b.data, "blob {} differs after round trip", b.digest);
        }
    }

    // Delete, then inspect must fail.
    skopeo(work.path())
        .args(["delete", "--tls-verify=false", &dest])
        .run_ok();
    let out = skopeo(work.path())
        .args(["inspect", "--tls-verify=false", "--raw", &dest])
        .run_fail();
    // skopeo reports the registry's MANIFEST_UNKNOWN ("manifest unknown"),
    // not some other failure (a connection error, an auth problem).
    assert!(
        out.combined().contains("manifest unknown"),
        "inspect after delete should fail with the registry's MANIFEST_UNKNOWN: {}",
        out.combined()
    );
    client
        .get(&format!("/v2/e2e/sk/manifests/{}", multi.index.digest))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    client
        .get("/v2/e2e/sk/manifests/v1")
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
}

#[test]
fn skopeo_copy_between_repositories() {
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let multi = oci::two_platform_image("skopeo-repo-copy");
    oci::write_layout(&layout, "v1", &multi);
    let src = format!("docker://{}/e2e/sk-src:v1", reg.host());
    let dst = format!("docker://{}/e2e/sk-dst:v2", reg.host());
    skopeo(work.path())
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&src)
        .run_ok();
    skopeo(work.path())
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ])
        .run_ok();
    let raw = skopeo(work.path())
        .args(["inspect", "--tls-verify=false", "--raw", &dst])
        .run_ok()
        .stdout;
    assert_eq!(raw.as_bytes(), &multi.index.data[..]);
    let client = reg.client();
    for img in &multi.images {
        for b in img.blobs() {
            client.get_blob_verified("e2e/sk-dst", &b.digest);
        }
    }
}
