//! Error handling: malformed names, tags, digests and manifests must be
//! rejected with the spec's status and `{"errors":[...]}` codes, and none
//! of it may disturb content already stored.

use serde_json::{json, Map};

use super::Ctx;
use crate::oci::{self, Blob};

const SEC_CODES: &str = "Error codes";
const SEC_MANIFESTS: &str = "Push / Pushing manifests";

/// Rejected by the spec's name grammar: uppercase, empty component, and a
/// leading separator.
const INVALID_NAMES: [&str; 3] = ["Upper/Case", "a//b", "-lead"];

/// Registries must accept at least 4 MiB manifests; this is comfortably over.
const OVERSIZE: usize = 4 * 1024 * 1024 + 512 * 1024;

pub fn run(ctx: &Ctx) {
    names_tags_digests(ctx);
    bad_manifests(ctx);
    still_intact(ctx);
}

fn names_tags_digests(ctx: &Ctx) {
    let c = &ctx.client;

    for name in INVALID_NAMES {
        ctx.check(
            &format!(
                "errors: invalid repository name {name:?} on manifest GET returns 400 NAME_INVALID"
            ),
            SEC_CODES,
            || {
                c.get_manifest(name, "latest")?
                    .expect_error(&[400], &["NAME_INVALID"])
                    .map(|_| ())
            },
        );
        ctx.check(
            &format!("errors: invalid repository name {name:?} on blob upload POST returns 400 NAME_INVALID"),
            SEC_CODES,
            || {
                c.post_upload(name, &[], b"")?
                    .expect_error(&[400], &["NAME_INVALID"])
                    .map(|_| ())
            },
        );
    }

    let long_tag = "a".repeat(200);
    for (label, tag) in [("-bad", "-bad"), ("of 200 characters", long_tag.as_str())] {
        ctx.check(
            &format!("errors: manifest PUT with invalid tag {label} returns 400"),
            SEC_CODES,
            || {
                let img = ctx.image()?;
                c.put_manifest(&img.repo, tag, &img.media_type, &img.manifest)?
                    .expect_error(&[400], &["MANIFEST_INVALID", "TAG_INVALID"])
                    .map(|_| ())
            },
        );
    }

    ctx.check(
        "errors: blob GET with malformed digest sha256:xyz returns 400 DIGEST_INVALID",
        SEC_CODES,
        || {
            let img = ctx.image()?;
            c.get_blob(&img.repo, "sha256:xyz")?
                .expect_error(&[400], &["DIGEST_INVALID"])
                .map(|_| ())
        },
    );
}

fn bad_manifests(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "errors: manifest referencing an unknown blob returns 400 MANIFEST_BLOB_UNKNOWN",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            let ghost = Blob::new(oci::OCI_LAYER, oci::random_bytes(61, 1000));
            let bytes = oci::image_manifest(oci::OCI_MANIFEST, &img.config, &[&ghost], Map::new());
            c.put_manifest(&img.repo, "ghost-layer", oci::OCI_MANIFEST, &bytes)?
                .expect_error(&[400], &["MANIFEST_BLOB_UNKNOWN"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors: index referencing an unknown manifest returns 400",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            let ghost = oci::manifest_descriptor(oci::OCI_MANIFEST, b"{\"never\":\"pushed\"}");
            let bytes = oci::index(
                oci::OCI_INDEX,
                &[
                    (img.descriptor(), oci::platform("amd64")),
                    (ghost, oci::platform("arm64")),
                ],
            );
            c.put_manifest(&img.repo, "ghost-index", oci::OCI_INDEX, &bytes)?
                .expect_error(&[400], &["MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors: malformed manifest JSON returns 400 MANIFEST_INVALID",
        SEC_CODES,
        || {
            let img = ctx.image()?;
            let truncated = &img.manifest[..img.manifest.len() / 2];
            c.put_manifest(&img.repo, "malformed", oci::OCI_MANIFEST, truncated)?
                .expect_error(&[400], &["MANIFEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors: Docker schema 1 manifest returns 400 MANIFEST_INVALID",
        SEC_CODES,
        || {
            let img = ctx.image()?;
            let body = json!({
                "schemaVersion": 1,
                "name": img.repo,
                "tag": "schema1",
                "architecture": "amd64",
                "fsLayers": [{ "blobSum": img.layers[0].digest }],
                "history": [{ "v1Compatibility": "{\"id\":\"conformance\"}" }],
            });
            let bytes = serde_json::to_vec(&body).expect("json");
            c.put_manifest(&img.repo, "schema1", oci::DOCKER_SCHEMA1, &bytes)?
                .expect_error(&[400], &["MANIFEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors: manifest PUT by digest with a body hashing elsewhere returns 400 DIGEST_INVALID",
        SEC_CODES,
        || {
            let img = ctx.image()?;
            let claimed = oci::sha256(b"some other manifest");
            c.put_manifest(&img.repo, &claimed, &img.media_type, &img.manifest)?
                .expect_error(&[400], &["DIGEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors: manifest over 4 MiB returns 413, or 400 with an error body",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            let mut extra = Map::new();
            extra.insert(
                "annotations".into(),
                json!({ "padding": "x".repeat(OVERSIZE) }),
            );
            let layers: Vec<&Blob> = img.layers.iter().collect();
            let bytes = oci::image_manifest(oci::OCI_MANIFEST, &img.config, &layers, extra);
            let ex = c.put_manifest(&img.repo, "oversized", oci::OCI_MANIFEST, &bytes)?;
            if ex.status == 413 {
                return Ok(());
            }
            ex.expect_error(&[400], &[]).map(|_| ())
        },
    );
}

fn still_intact(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "errors: after the bad input the earlier image still pulls and verifies",
        "Pull / Pulling manifests",
        || {
            let img = ctx.image()?;
            let ex = c.get_manifest(&img.repo, "v1")?;
            ex.expect_status(&[200])?.readable_body()?;
            let got = oci::sha256(&ex.body);
            ex.ensure(got == img.digest, || {
                format!("manifest digest {}, got {got}", img.digest)
            })?;
            for b in img.blobs() {
                let ex = c.get_blob(&img.repo, &b.digest)?;
                ex.expect_status(&[200])?.readable_body()?;
                let got = oci::sha256(&ex.body);
                ex.ensure(got == b.digest, || {
                    format!("blob digest {}, got {got}", b.digest)
                })?;
            }
            Ok(())
        },
    );
}
