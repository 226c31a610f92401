//! Manifest pushes: by tag and by digest, Docker schema 2, OCI index and
//! Docker manifest list (each read back as pushed), content negotiation,
//! and the manifest size limit.

use serde_json::{json, Map};

use super::fixtures::{build_image, push_artifact, push_image, Flavor, SEED_IMAGE, SMALL_LAYERS};
use super::{dcd_if_present_matches, follow_manifest_location, need, prep, Ctx};
use crate::api::Res;
use crate::client::Request;
use crate::exchange::Exchange;
use crate::oci::{self, Blob};
use crate::report::{Failure, Feature};
use crate::spec;

const DCD: &str = "docker-content-digest";

pub fn run(ctx: &Ctx) {
    by_tag_and_digest(ctx);
    artifact(ctx);
    kinds(ctx);
    accept(ctx);
    size_limit(ctx);
}

fn by_tag_and_digest(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "push.manifest.tag",
        "manifest PUT by tag answers 201 with a Location serving the manifest",
        &spec::MANIFEST_PUT_201,
        || {
            let img = ctx.image()?;
            follow_manifest_location(c, &img.put, &img.manifest)
        },
    );
    ctx.check(
        "push.manifest.dcd",
        "Docker-Content-Digest of a manifest PUT, when present, is the sha256 of the bytes sent",
        &spec::MANIFEST_DCD_VALUE,
        || {
            let img = ctx.image()?;
            dcd_if_present_matches(&img.put, &img.manifest)
        },
    );
    ctx.check(
        "push.manifest.dcd-present",
        "manifest PUT answers carry Docker-Content-Digest",
        &spec::X_PUT_DCD,
        || {
            let img = ctx.image()?;
            img.put.expect_header_eq(DCD, &img.digest).map(|_| ())
        },
    );

    let repo = ctx.repo("by-digest");
    let pushed = ctx.step(
        "push.manifest.digest",
        "manifest PUT by digest answers 201 with a Location serving the manifest",
        &spec::MANIFEST_PUT_201,
        || {
            let (config, layers, _) = build_image(Flavor::Oci, SEED_IMAGE + 50, &SMALL_LAYERS);
            for b in std::iter::once(&config).chain(layers.iter()) {
                prep("blob push", c.push_blob(&repo, &b.data, &b.digest))?;
            }
            let mut extra = Map::new();
            extra.insert("annotations".into(), json!({ "conformance": "by-digest" }));
            let refs: Vec<&Blob> = layers.iter().collect();
            let bytes = oci::image_manifest(oci::OCI_MANIFEST, &config, &refs, extra);
            let d = oci::sha256(&bytes);
            let ex = c.put_manifest(&repo, &d, oci::OCI_MANIFEST, &bytes)?;
            ex.expect_status(&[201])?;
            follow_manifest_location(c, &ex, &bytes)?;
            Ok((bytes, d))
        },
    );
    ctx.check(
        "push.manifest.digest.readback",
        "a manifest pushed by digest reads back byte for byte by that digest",
        &spec::MANIFEST_EXACT_BYTES,
        || {
            let (bytes, d) = need(&pushed)?;
            c.get_manifest(&repo, d)?
                .expect_status(&[200])?
                .expect_body_eq(bytes)
                .map(|_| ())
        },
    );
}

fn artifact(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "push.manifest.artifact",
        "an artifact (artifactType, the empty config) is accepted; its config blob reads back as {}",
        &spec::MANIFEST_PUT_201,
        || {
            let repo = ctx.repo("artifact");
            let ann = json!({ "org.opencontainers.image.title": "artifact" });
            let (bytes, put) =
                push_artifact(c, &repo, Some("artifact"), oci::ARTIFACT_SBOM, None, Some(ann), 51)?;
            follow_manifest_location(c, &put, &bytes)?;
            c.get_blob(&repo, oci::EMPTY_DIGEST)?
                .expect_status(&[200])?
                .expect_body_eq(oci::EMPTY_CONTENT)
                .map(|_| ())
        },
    );
}

/// A pushed manifest of one kind, fetched back by its tag.
struct Kind {
    tag: &'static str,
    media_type: &'static str,
    bytes: Vec<u8>,
    put: Exchange,
    get: Exchange,
}

fn kinds(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("kinds");
    let pushed: Res<Vec<Kind>> = (|| {
        let mut out = Vec::new();
        let mut push = |tag: &'static str, media_type: &'static str, bytes: Vec<u8>| -> Res<()> {
            let put = c.put_manifest(&repo, tag, media_type, &bytes)?;
            let get = c.get_manifest(&repo, tag)?;
            out.push(Kind {
                tag,
                media_type,
                bytes,
                put,
                get,
            });
            Ok(())
        };
        let sizes = &SMALL_LAYERS;
        let d1 = push_image(c, &repo, "", Flavor::Docker, SEED_IMAGE + 100, sizes)?;
        let d2 = push_image(c, &repo, "", Flavor::Docker, SEED_IMAGE + 110, sizes)?;
        let o1 = push_image(c, &repo, "", Flavor::Oci, SEED_IMAGE + 120, sizes)?;
        let o2 = push_image(c, &repo, "", Flavor::Oci, SEED_IMAGE + 130, sizes)?;
        push("docker-v2", oci::DOCKER_MANIFEST, d1.manifest.clone())?;
        let pair = |a: &super::fixtures::Image, b: &super::fixtures::Image| {
            [
                (a.descriptor(), oci::platform("amd64")),
                (b.descriptor(), oci::platform("arm64")),
            ]
        };
        push(
            "index",
            oci::OCI_INDEX,
            oci::index(oci::OCI_INDEX, &pair(&o1, &o2)),
        )?;
        push(
            "list",
            oci::DOCKER_LIST,
            oci::index(oci::DOCKER_LIST, &pair(&d1, &d2)),
        )?;
        Ok(out)
    })();
    let pushed = prep(
        "push of a Docker schema 2 manifest, an OCI index and a manifest list",
        pushed,
    );

    ctx.check(
        "push.manifest.kinds",
        "Docker schema 2, OCI index and Docker manifest list PUTs answer 201 with a Location serving them",
        &spec::MANIFEST_PUT_201,
        || {
            for k in need(&pushed)? {
                k.put.expect_status(&[201])?;
                follow_manifest_location(c, &k.put, &k.bytes)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.manifest.kinds",
        "Docker schema 2, OCI index and Docker manifest list read back byte for byte",
        &spec::MANIFEST_EXACT_BYTES,
        || {
            for k in need(&pushed)? {
                k.get.expect_status(&[200])?.expect_body_eq(&k.bytes)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.manifest.kinds.content-type",
        "each comes back with the Content-Type it was pushed with",
        &spec::MANIFEST_CONTENT_TYPE,
        || {
            for k in need(&pushed)? {
                k.get.expect_content_type(k.media_type)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.manifest.kinds.dcd",
        "each GET carries Docker-Content-Digest",
        &spec::MANIFEST_DCD,
        || {
            for k in need(&pushed)? {
                k.get.ensure(k.get.header(DCD).is_some(), || {
                    format!("no Docker-Content-Digest on GET of {}", k.tag)
                })?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.manifest.kinds.dcd-value",
        "that Docker-Content-Digest, when present, is the digest of the manifest",
        &spec::MANIFEST_DCD_VALUE,
        || {
            for k in need(&pushed)? {
                dcd_if_present_matches(&k.get, &k.bytes)?;
            }
            Ok(())
        },
    );
}

fn accept(ctx: &Ctx) {
    let c = &ctx.client;
    let asked: Res<Exchange> = (|| {
        let img = ctx.image()?;
        c.send(
            Request::new("GET", c.manifest_url(&img.repo, &img.digest))
                .header("Accept", oci::DOCKER_MANIFEST),
        )
    })();
    ctx.check(
        "pull.manifest.accept",
        "an OCI manifest asked for with Accept: Docker schema 2 only is served as stored or refused, never altered",
        &spec::MANIFEST_EXACT_BYTES,
        || {
            let img = ctx.image()?;
            let ex = need(&asked)?;
            if ex.status == 200 {
                ex.expect_body_eq(&img.manifest)?;
                return ex.expect_content_type(&img.media_type).map(|_| ());
            }
            ex.expect_status(&[404, 406]).map(|_| ())
        },
    );
    ctx.check(
        "pull.manifest.accept.choice",
        "that manifest is served as stored (not refused)",
        &spec::X_ACCEPT,
        || {
            let ex = need(&asked)?;
            ex.ensure(ex.status == 200, || {
                format!(
                    "refused it with {} (does not serve a type the client did not list)",
                    ex.status
                )
            })
            .map(|_| ())
        },
    );
}

/// Over 4 MiB (4.5 MiB), and 4 MB exactly.
const OVERSIZE: usize = 4 * 1024 * 1024 + 512 * 1024;
const FOUR_MB: usize = 4_000_000;

/// An OCI manifest over `img`'s blobs padded with an annotation to `size`.
fn padded(config: &Blob, layers: &[Blob], size: usize) -> Vec<u8> {
    let refs: Vec<&Blob> = layers.iter().collect();
    let base = oci::image_manifest(oci::OCI_MANIFEST, config, &refs, Map::new()).len();
    let overhead = r#","annotations":{"padding":""}"#.len();
    let mut extra = Map::new();
    let pad = size.saturating_sub(base + overhead);
    extra.insert("annotations".into(), json!({ "padding": "x".repeat(pad) }));
    oci::image_manifest(oci::OCI_MANIFEST, config, &refs, extra)
}

fn size_limit(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("manifest-size");
    let blobs = prep(
        "blob push",
        (|| {
            let (config, layers, _) = build_image(Flavor::Oci, SEED_IMAGE + 150, &SMALL_LAYERS);
            for b in std::iter::once(&config).chain(layers.iter()) {
                c.push_blob(&repo, &b.data, &b.digest)?;
            }
            Ok((config, layers))
        })(),
    );

    ctx.check(
        "push.manifest.4mb",
        "a 4 MB manifest is accepted (201)",
        &spec::MANIFEST_4MB,
        || {
            let (config, layers) = need(&blobs)?;
            let bytes = padded(config, layers, FOUR_MB);
            let ex = c.put_manifest(&repo, "four-mb", oci::OCI_MANIFEST, &bytes)?;
            ex.ensure(ex.status == 201, || {
                format!("refused a {}-byte manifest with {}", bytes.len(), ex.status)
            })
            .map(|_| ())
        },
    );

    let oversize = need(&blobs).map(|(config, layers)| padded(config, layers, OVERSIZE));
    // A registry may answer from the headers alone and close the
    // connection; reqwest then fails to send the body and shows no answer,
    // so the request is sent again by a client that watches for it (as RFC
    // 9112 §9.5 asks). A transport error on both is kept for the report.
    let sent: Res<Result<Exchange, Failure>> =
        oversize.as_ref().map_err(Clone::clone).map(|bytes| {
            c.put_manifest(&repo, "oversize", oci::OCI_MANIFEST, bytes)
                .or_else(|_| {
                    c.send_watching(
                        Request::new("PUT", c.manifest_url(&repo, "oversize"))
                            .header("Content-Type", oci::OCI_MANIFEST)
                            .body(bytes.clone()),
                    )
                })
        });
    ctx.check(
        "push.manifest.oversize",
        "a 4.5 MiB manifest is refused with 413",
        &spec::MANIFEST_LIMIT_413,
        || match need(&sent)? {
            Ok(ex) if ex.status == 413 => Ok(()),
            Ok(ex) if (200..300).contains(&ex.status) => Err(ex.fail(format!(
                "accepted it ({}): no manifest size limit at or below 4.5 MiB",
                ex.status
            ))),
            Ok(ex) => Err(ex.fail(format!("refused it with {} instead of 413", ex.status))),
            Err(f) => Err(Failure::new(format!("no answer: {}", f.message))),
        },
    );
    ctx.check(
        "push.manifest.oversize.not-stored",
        "a refused manifest is not stored: its digest and tag answer 404",
        &spec::REJECTED_NOT_STORED,
        || {
            if let Ok(ex) = need(&sent)? {
                if (200..300).contains(&ex.status) {
                    return Err(Failure::not_offered(
                        Feature::ManifestLimit,
                        "the registry accepted the manifest",
                    ));
                }
            }
            let bytes = need(&oversize)?;
            c.get_manifest(&repo, &oci::sha256(bytes))?
                .expect_status(&[404])?;
            c.get_manifest(&repo, "oversize")?
                .expect_status(&[404])
                .map(|_| ())
        },
    );
}
