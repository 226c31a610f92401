//! Bad repository names and tags (refused; long valid ones taken), and
//! the error codes of unknown blobs, manifests and repositories.

use e2e::oci::MT_OCI_MANIFEST;
use e2e::sha256_digest;
use reqwest::Method;

use crate::{Ctx, REPO};

pub fn bad_repository_names(x: &Ctx) {
    let names = [
        "Upper/case",
        "e2e/UPPER",
        "e2e/a..b",
        "e2e/-lead",
        "e2e/trail-",
        "e2e/a___b",
        "e2e/.hidden",
        "e2e/trail_",
        "e2e/sp%20ace",
    ];
    for name in names {
        let r =
            x.c.send(x.c.request(Method::POST, &format!("/v2/{name}/blobs/uploads/")));
        r.expect_error(&[400], &["NAME_INVALID"]);
        let r =
            x.c.put_manifest_raw(name, "v1", MT_OCI_MANIFEST, x.good.manifest.data.clone());
        r.expect_error(&[400], &["NAME_INVALID"]);
    }
    // A long but valid multi-component name works.
    let ok = "e2e/a-b_c.d/e__f/g0";
    x.c.push_image(ok, "v1", &x.good);
}

pub fn bad_tags(x: &Ctx) {
    let repo = "e2e/bad-tags";
    for b in x.good.blobs() {
        x.c.push_blob(repo, &b.data);
    }
    let long_bad = "a".repeat(129);
    for tag in ["-lead", ".dot", long_bad.as_str(), "bad%21tag", "bad%20tag"] {
        let r =
            x.c.put_manifest_raw(repo, tag, MT_OCI_MANIFEST, x.good.manifest.data.clone());
        r.expect_error(&[400], &["TAG_INVALID", "MANIFEST_INVALID", "NAME_INVALID"]);
    }
    let long_ok = format!("_{}", "a".repeat(127));
    x.c.push_manifest(repo, &long_ok, &x.good.manifest);
    assert_eq!(x.c.tags(repo), vec![long_ok]);
}

pub fn not_found_codes(x: &Ctx) {
    let unknown = sha256_digest(b"unknown blob");
    x.c.get(&format!("/v2/{REPO}/blobs/{unknown}"))
        .expect_error(&[404], &["BLOB_UNKNOWN"]);
    x.c.get(&format!("/v2/{REPO}/manifests/no-such-tag"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    x.c.get(&format!("/v2/{REPO}/manifests/{unknown}"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    x.c.get("/v2/e2e/no-such-repo/tags/list")
        .expect_error(&[404], &["NAME_UNKNOWN"]);
}
