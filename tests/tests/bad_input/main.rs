//! Malformed and hostile requests over plain HTTP. Every rejection must carry
//! a distribution error body, and none of them may disturb a good image that
//! was pushed first.
//!
//! All cases run against one registry; each case runs under `catch_unwind` so
//! that one failure does not hide the others, and the test fails at the end
//! with the list of failed cases.
//!
//! The cases, by subject: `uploads.rs` (digests, chunks, ranges, truncated
//! bodies, upload ids), `manifests.rs` (oversized, malformed, naming
//! missing blobs, schema 1), `names.rs` (repository names, tags, and what
//! unknown ones answer). This file holds their context and the test that
//! runs them.

mod manifests;
mod names;
mod uploads;

use std::panic::{catch_unwind, AssertUnwindSafe};

use e2e::http::{with_query, Client, Resp};
use e2e::oci::{self, Image, MT_OCI_MANIFEST};
use e2e::{blob_files, sha256_digest, Registry};
use reqwest::Method;
use serde_json::json;

use manifests::{malformed_manifests, manifest_blob_unknown, oversized_manifest, schema1_manifest};
use names::{bad_repository_names, bad_tags, not_found_codes};
use uploads::{
    chunks_out_of_order, content_range_claims_more_than_body, partial_upload_then_full_digest,
    truncated_body_connection_closed, unknown_upload_id, wrong_digest_on_put,
};

const REPO: &str = "e2e/bad";

struct Ctx<'a> {
    reg: &'a Registry,
    c: Client,
    good: Image,
}

impl Ctx<'_> {
    fn patch(&self, loc: &str, range: Option<&str>, body: Vec<u8>) -> Resp {
        let mut rb = self
            .c
            .request(Method::PATCH, loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", body.len().to_string());
        if let Some(r) = range {
            rb = rb.header("Content-Range", r);
        }
        self.c.send(rb.body(body))
    }

    fn put_digest(&self, loc: &str, digest: &str, body: Vec<u8>) -> Resp {
        self.c.send(
            self.c
                .request(Method::PUT, &with_query(loc, "digest", digest))
                .header("Content-Type", "application/octet-stream")
                .body(body),
        )
    }

    fn assert_blob_absent(&self, digest: &str) {
        let r = self.c.head(&format!("/v2/{REPO}/blobs/{digest}"));
        assert_eq!(
            r.status,
            404,
            "blob {digest} should not exist:\n{}",
            r.describe()
        );
        let hex = digest.trim_start_matches("sha256:");
        let files = blob_files(self.reg.data_dir());
        // The scan must see the blobs that are there, or finding no file
        // for the rejected one proves nothing.
        for b in self.good.blobs() {
            assert!(
                files.iter().any(|(_, n)| n == b.hex()),
                "the good blob {} is not where the scan looks ({}/blobs): the on-disk \
                 layout changed",
                b.digest,
                self.reg.data_dir().display()
            );
        }
        assert!(
            !files.iter().any(|(_, n)| n == hex),
            "a file for rejected blob {digest} exists under blobs/"
        );
    }

    /// The upload's state: `None` if the registry forgot it (404
    /// BLOB_UPLOAD_UNKNOWN), else the end of its `Range` (`0-<end>`), which
    /// a 204 must carry.
    fn upload_range(&self, loc: &str) -> Option<String> {
        let st = self.c.get(loc);
        match st.status {
            204 => {
                let range = st.require_header("range");
                assert!(
                    range
                        .strip_prefix("0-")
                        .is_some_and(|end| end.parse::<u64>().is_ok()),
                    "Range {range:?} is not 0-<end>:\n{}",
                    st.describe()
                );
                Some(range)
            }
            404 => {
                st.expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
                None
            }
            _ => panic!("unexpected upload status:\n{}", st.describe()),
        }
    }

    /// Proves an upload session holds no bytes: a chunk starting at 0 is
    /// taken (it would be 416 otherwise) and the blob completes intact.
    fn assert_resumes_from_zero(&self, loc: &str, data: &[u8]) {
        let r = self
            .patch(loc, Some(&format!("0-{}", data.len() - 1)), data.to_vec())
            .expect_status(202);
        assert_eq!(
            r.require_header("range"),
            format!("0-{}", data.len() - 1),
            "{}",
            r.describe()
        );
        let digest = sha256_digest(data);
        self.put_digest(&r.location(), &digest, Vec::new())
            .expect_status(201);
        assert_eq!(self.c.get_blob_verified(REPO, &digest), data);
    }

    /// A manifest over the good image's blobs with extra `annotations`.
    fn manifest_with_annotation(&self, key: &str, value: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": self.good.config.descriptor(),
            "layers": self.good.layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
            "annotations": {key: value},
        }))
        .unwrap()
    }
}

#[test]
fn bad_input_is_rejected_and_good_image_survives() {
    let reg = Registry::start();
    let c = reg.client();
    let good = oci::simple_image("bad-input-good");
    let good_digest = c.push_image(REPO, "v1", &good);
    let x = Ctx { reg: &reg, c, good };

    type Case = fn(&Ctx);
    let cases: &[(&str, Case)] = &[
        ("wrong_digest_on_put", wrong_digest_on_put),
        (
            "partial_upload_then_full_digest",
            partial_upload_then_full_digest,
        ),
        (
            "content_range_claims_more_than_body",
            content_range_claims_more_than_body,
        ),
        (
            "truncated_body_connection_closed",
            truncated_body_connection_closed,
        ),
        ("bad_repository_names", bad_repository_names),
        ("bad_tags", bad_tags),
        ("oversized_manifest", oversized_manifest),
        ("malformed_manifests", malformed_manifests),
        ("chunks_out_of_order", chunks_out_of_order),
        ("unknown_upload_id", unknown_upload_id),
        ("manifest_blob_unknown", manifest_blob_unknown),
        ("schema1_manifest", schema1_manifest),
        ("not_found_codes", not_found_codes),
    ];
    let mut failed: Vec<String> = Vec::new();
    let mut seen_server_errors = 0;
    for (name, case) in cases {
        eprintln!("--- case {name}");
        if catch_unwind(AssertUnwindSafe(|| case(&x))).is_err() {
            failed.push(name.to_string());
        }
        // Every request of the case is in the log before it is scanned.
        reg.log_barrier();
        let server_errors: Vec<String> = reg
            .requests()
            .iter()
            .filter(|r| r.status >= 500)
            .map(|r| format!("{} {} -> {}", r.method, r.raw_uri, r.status))
            .collect();
        if server_errors.len() > seen_server_errors {
            eprintln!(
                "case {name} caused server errors: {:?}",
                &server_errors[seen_server_errors..]
            );
            failed.push(format!("{name} (5xx)"));
            seen_server_errors = server_errors.len();
        }
    }

    // The good image is intact.
    let m = x.c.get_manifest(REPO, "v1");
    assert_eq!(m.body, x.good.manifest.data, "manifest bytes changed");
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(good_digest.as_str()),
        "tag v1 no longer resolves to the good manifest"
    );
    assert_eq!(
        x.c.get_manifest(REPO, &good_digest).body,
        x.good.manifest.data
    );
    for b in x.good.blobs() {
        assert_eq!(x.c.get_blob_verified(REPO, &b.digest), b.data);
    }
    let tags = x.c.tags(REPO);
    assert_eq!(tags, vec!["v1".to_string()], "unexpected tags in {REPO}");

    assert!(
        failed.is_empty(),
        "failed cases: {failed:?} (details above)"
    );
}
