//! Push checks: every blob upload method, cross-repository mounts, and
//! manifest pushes of each media type the spec and Docker v2 define.

use std::cell::Cell;

use serde_json::{json, Map};

use super::fixtures::{push_artifact, push_image, Flavor, SEED_IMAGE};
use super::{need, prep, verify_blob, Ctx};
use crate::api::with_query;
use crate::client::Request;
use crate::oci::{self, Blob};
use crate::report::ensure;

const DCD: &str = "docker-content-digest";
const SEC_BLOBS: &str = "Push / Pushing blobs";
const SEC_SINGLE: &str = "Push / Single POST monolithic upload";
const SEC_POST_PUT: &str = "Push / POST then PUT monolithic upload";
const SEC_CHUNKS: &str = "Push / Pushing a blob in chunks";
const SEC_MOUNT: &str = "Push / Mounting a blob from another repository";
const SEC_MANIFESTS: &str = "Push / Pushing manifests";
const SEC_SUBJECT: &str = "Push / Pushing manifests with subject";
const SEC_DOCKER: &str = "Docker Registry v2 / Image Manifest V2 Schema 2";
const SEC_LIST: &str = "Docker Registry v2 / Manifest List";

/// Chunk size for chunked uploads; 3 chunks make a ~300 KiB blob.
const CHUNK: usize = 100 * 1024;

pub fn run(ctx: &Ctx) {
    blob_uploads(ctx);
    chunked_uploads(ctx);
    upload_sessions(ctx);
    mounts(ctx);
    manifests(ctx);
    indexes(ctx);
}

fn blob_uploads(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("app");

    ctx.check(
        "push: POST upload returns 202 with Location",
        SEC_BLOBS,
        || {
            let ex = c.post_upload(&repo, &[], b"")?;
            ex.expect_status(&[202])?;
            c.location(&ex).map(|_| ())
        },
    );

    ctx.check(
        "push: POST upload returns Docker-Upload-UUID and Range",
        "Docker Registry v2 / Starting an upload",
        || {
            let ex = c.post_upload(&repo, &[], b"")?;
            ex.expect_status(&[202])?
                .expect_header("docker-upload-uuid")?;
            let range = ex.require_header("range")?;
            let r = range.trim_start_matches("bytes=");
            ex.ensure(r.starts_with("0-"), || {
                format!("Range of the form 0-<end> (0-0 for an empty session), got {range:?}")
            })
            .map(|_| ())
        },
    );

    ctx.check(
        "push: single POST monolithic upload returns 201",
        SEC_SINGLE,
        || {
            let data = oci::random_bytes(11, 3000);
            let d = oci::sha256(&data);
            let ex = c.post_upload(&repo, &[("digest", &d)], &data)?;
            if ex.status == 202 {
                return Err(ex.fail(
                    "status 201; got 202, which the spec permits for registries without \
                 single-POST support (the client must then PUT to Location)",
                ));
            }
            ex.expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &d)?;
            verify_blob(c, &repo, &data, &d)
        },
    );

    let mono = oci::random_bytes(12, 64 * 1024);
    let mono_digest = oci::sha256(&mono);
    let put = ctx.step(
        "push: POST then PUT upload returns 201 with Location and Docker-Content-Digest",
        SEC_POST_PUT,
        || {
            let loc = prep("upload session", c.start_upload(&repo))?;
            c.put_upload(&loc, &mono_digest, &mono)?
                .expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &mono_digest)
                .map(|_| ())
        },
    );
    ctx.check(
        "push: POST then PUT uploaded blob reads back identically",
        SEC_POST_PUT,
        || {
            need(&put)?;
            verify_blob(c, &repo, &mono, &mono_digest)
        },
    );

    // The blob must be rejected under a digest it doesn't hash to, and must
    // not then be served under either digest.
    let data = oci::random_bytes(13, 5000);
    let claimed = oci::sha256(&oci::random_bytes(14, 5000));
    let sent = Cell::new(false);
    let _ = ctx.step(
        "push: PUT with a wrong digest returns 400 DIGEST_INVALID",
        SEC_POST_PUT,
        || {
            let loc = prep("upload session", c.start_upload(&repo))?;
            sent.set(true);
            c.put_upload(&loc, &claimed, &data)?
                .expect_error(&[400], &["DIGEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "push: blob sent with a wrong digest is not stored",
        SEC_POST_PUT,
        || {
            ensure(sent.get(), || {
                "prerequisite failed: wrong-digest PUT was not sent".into()
            })?;
            c.head_blob(&repo, &claimed)?.expect_status(&[404])?;
            c.head_blob(&repo, &oci::sha256(&data))?
                .expect_status(&[404])?;
            Ok(())
        },
    );
}

fn chunked_uploads(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("app");

    let data = oci::random_bytes(21, 3 * CHUNK - 123);
    let chunked = ctx.step(
        "push: chunked PATCH returns 202 with Range 0-<end> and Location",
        SEC_CHUNKS,
        || {
            let mut loc = prep("upload session", c.start_upload(&repo))?;
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                let start = i * CHUNK;
                let ex = c.patch_chunk(&loc, start, chunk)?;
                ex.expect_status(&[202])?
                    .expect_header_eq("range", &format!("0-{}", start + chunk.len() - 1))?;
                loc = c.location(&ex)?;
            }
            Ok(loc)
        },
    );
    ctx.check(
        "push: upload status GET returns 204 with Range and Docker-Upload-UUID",
        SEC_CHUNKS,
        || {
            let loc = need(&chunked)?;
            c.get(loc.as_str())?
                .expect_status(&[204])?
                .expect_header_eq("range", &format!("0-{}", data.len() - 1))?
                .expect_header("docker-upload-uuid")
                .map(|_| ())
        },
    );
    ctx.check(
        "push: chunked upload closed by PUT without body returns 201",
        SEC_CHUNKS,
        || {
            let loc = need(&chunked)?;
            let d = oci::sha256(&data);
            c.put_upload(loc, &d, b"")?
                .expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &d)?;
            verify_blob(c, &repo, &data, &d)
        },
    );

    ctx.check(
        "push: chunked upload closed by PUT carrying the last chunk returns 201",
        SEC_CHUNKS,
        || {
            let data = oci::random_bytes(22, 2 * CHUNK - 7);
            let d = oci::sha256(&data);
            let (first, last) = data.split_at(CHUNK);
            let loc = prep("upload session", c.start_upload(&repo))?;
            let ex = c.patch_chunk(&loc, 0, first)?;
            ex.expect_status(&[202])?;
            let loc = c.location(&ex)?;
            let req = Request::new("PUT", with_query(&loc, &[("digest", &d)]))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{CHUNK}-{}", data.len() - 1))
                .body(last);
            c.send(req)?
                .expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &d)?;
            verify_blob(c, &repo, &data, &d)
        },
    );

    ctx.check("push: out-of-order chunk returns 416", SEC_CHUNKS, || {
        let data = oci::random_bytes(23, 3 * 1024);
        let loc = prep("upload session", c.start_upload(&repo))?;
        let ex = c.patch_chunk(&loc, 0, &data[..1024])?;
        ex.expect_status(&[202])?;
        let loc = c.location(&ex)?;
        // Skips bytes 1024..2048, so the start no longer matches the size.
        c.patch_chunk(&loc, 2048, &data[2048..])?
            .expect_status(&[416])
            .map(|_| ())
    });
}

fn upload_sessions(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("app");

    ctx.check(
        "push: status of an unknown upload returns 404 BLOB_UPLOAD_UNKNOWN",
        SEC_CHUNKS,
        || {
            let mut rng = oci::Rng::new(31);
            let id = format!(
                "{}-{}-4{}-a{}-{}",
                rng.hex(8),
                rng.hex(4),
                rng.hex(3),
                rng.hex(3),
                rng.hex(12)
            );
            c.get(format!("{}{id}", c.uploads_url(&repo)))?
                .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"])
                .map(|_| ())
        },
    );

    let cancelled = ctx.step(
        "push: DELETE of an upload session returns 204",
        "Docker Registry v2 / Canceling an upload",
        || {
            let loc = prep("upload session", c.start_upload(&repo))?;
            let ex = c.patch_chunk(&loc, 0, &oci::random_bytes(32, 1024))?;
            ex.expect_status(&[202])?;
            let loc = c.location(&ex)?;
            c.delete(loc.as_str())?.expect_status(&[204])?;
            Ok(loc)
        },
    );
    ctx.check(
        "push: status of a cancelled upload returns 404",
        "Docker Registry v2 / Canceling an upload",
        || {
            let loc = need(&cancelled)?;
            c.get(loc.as_str())?.expect_status(&[404]).map(|_| ())
        },
    );
}

fn mounts(ctx: &Ctx) {
    let c = &ctx.client;
    let (from, to) = (ctx.repo("app"), ctx.repo("mount"));

    let data = oci::random_bytes(41, 8 * 1024);
    let d = oci::sha256(&data);
    let mounted = ctx.step(
        "push: cross-repository mount returns 201 with Location and Docker-Content-Digest",
        SEC_MOUNT,
        || {
            prep(
                "blob push to source repository",
                c.push_blob(&from, &data, &d),
            )?;
            c.post_upload(&to, &[("mount", &d), ("from", &from)], b"")?
                .expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &d)
                .map(|_| ())
        },
    );
    ctx.check(
        "push: mounted blob is readable in the target repository",
        SEC_MOUNT,
        || {
            need(&mounted)?;
            verify_blob(c, &to, &data, &d)
        },
    );

    ctx.check(
        "push: mount of a blob the source lacks falls back to a 202 upload session",
        SEC_MOUNT,
        || {
            let missing = oci::sha256(&oci::random_bytes(42, 100));
            let ex = c.post_upload(&to, &[("mount", &missing), ("from", &from)], b"")?;
            ex.expect_status(&[202])?;
            c.location(&ex).map(|_| ())
        },
    );

    ctx.check(
        "pull: blob is not readable from a repository that never received it (registry isolation)",
        "Pull / Pulling blobs",
        || {
            let other = ctx.repo("isolated");
            // Give the other repository some content so it exists and the
            // expected answer is specifically BLOB_UNKNOWN.
            let own = oci::random_bytes(43, 100);
            prep(
                "blob push to the other repository",
                c.push_blob(&other, &own, &oci::sha256(&own)),
            )?;
            let data = oci::random_bytes(44, 2048);
            let d = oci::sha256(&data);
            prep(
                "blob push to the source repository",
                c.push_blob(&from, &data, &d),
            )?;
            c.head_blob(&other, &d)?.expect_status(&[404])?;
            c.get_blob(&other, &d)?
                .expect_error(&[404], &["BLOB_UNKNOWN"])
                .map(|_| ())
        },
    );
}

fn manifests(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "push: manifest PUT by tag returns 201 with Location",
        SEC_MANIFESTS,
        || ctx.image()?.put.expect_header("location").map(|_| ()),
    );
    ctx.check(
        "push: manifest PUT returns Docker-Content-Digest = sha256 of the exact bytes",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            img.put.expect_header_eq(DCD, &img.digest).map(|_| ())
        },
    );

    ctx.check(
        "push: manifest PUT by digest returns 201",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            let mut extra = Map::new();
            extra.insert("annotations".into(), json!({ "conformance": "by-digest" }));
            let layers: Vec<&Blob> = img.layers.iter().collect();
            let bytes = oci::image_manifest(oci::OCI_MANIFEST, &img.config, &layers, extra);
            let d = oci::sha256(&bytes);
            c.put_manifest(&img.repo, &d, oci::OCI_MANIFEST, &bytes)?
                .expect_status(&[201])?
                .expect_header("location")?
                .expect_header_eq(DCD, &d)
                .map(|_| ())
        },
    );

    ctx.check(
        "push: manifest PUT with subject returns 201",
        SEC_SUBJECT,
        || ctx.referrers()?.sbom_put.expect_status(&[201]).map(|_| ()),
    );
    ctx.check(
        "push: manifest PUT with subject returns OCI-Subject = subject digest",
        SEC_SUBJECT,
        || {
            let r = ctx.referrers()?;
            r.sbom_put
                .expect_header_eq("oci-subject", &r.subject)
                .map(|_| ())
        },
    );

    ctx.check(
        "push: artifact manifest with artifactType and empty config returns 201",
        SEC_MANIFESTS,
        || {
            let repo = ctx.repo("app");
            let ann = Some(json!({ "org.opencontainers.image.title": "artifact" }));
            push_artifact(
                c,
                &repo,
                Some("artifact"),
                oci::ARTIFACT_SBOM,
                None,
                ann,
                51,
            )?;
            let ex = c.head_blob(&repo, oci::EMPTY_DIGEST)?;
            ex.expect_status(&[200])?
                .expect_content_length(2)
                .map(|_| ())
        },
    );
}

fn indexes(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("app");

    let docker = ctx.step(
        "push: Docker schema 2 manifest PUT returns 201",
        SEC_DOCKER,
        || push_image(c, &repo, "docker-v2", Flavor::Docker, SEED_IMAGE + 100),
    );
    ctx.check(
        "pull: Docker schema 2 manifest GET returns the same bytes and Content-Type",
        SEC_DOCKER,
        || {
            let img = need(&docker)?;
            c.get_manifest(&repo, "docker-v2")?
                .expect_status(&[200])?
                .expect_content_type(oci::DOCKER_MANIFEST)?
                .expect_body_eq(&img.manifest)
                .map(|_| ())
        },
    );

    let oci_index = ctx.step(
        "push: OCI image index PUT returns 201",
        SEC_MANIFESTS,
        || {
            let amd = ctx.image()?;
            let arm = prep(
                "push of a second platform image",
                push_image(c, &repo, "", Flavor::Oci, SEED_IMAGE + 200),
            )?;
            let bytes = oci::index(
                oci::OCI_INDEX,
                &[
                    (amd.descriptor(), oci::platform("amd64")),
                    (arm.descriptor(), oci::platform("arm64")),
                ],
            );
            c.put_manifest(&repo, "index", oci::OCI_INDEX, &bytes)?
                .expect_status(&[201])?
                .expect_header_eq(DCD, &oci::sha256(&bytes))?;
            Ok(bytes)
        },
    );
    ctx.check(
        "pull: OCI image index GET returns the same bytes and Content-Type",
        "Pull / Pulling manifests",
        || {
            let bytes = need(&oci_index)?;
            c.get_manifest(&repo, "index")?
                .expect_status(&[200])?
                .expect_content_type(oci::OCI_INDEX)?
                .expect_body_eq(bytes)
                .map(|_| ())
        },
    );

    let list = ctx.step(
        "push: Docker manifest list PUT returns 201",
        SEC_LIST,
        || {
            let amd = need(&docker)?;
            let arm = prep(
                "push of a second platform Docker image",
                push_image(c, &repo, "", Flavor::Docker, SEED_IMAGE + 300),
            )?;
            let bytes = oci::index(
                oci::DOCKER_LIST,
                &[
                    (amd.descriptor(), oci::platform("amd64")),
                    (arm.descriptor(), oci::platform("arm64")),
                ],
            );
            c.put_manifest(&repo, "list", oci::DOCKER_LIST, &bytes)?
                .expect_status(&[201])?
                .expect_header_eq(DCD, &oci::sha256(&bytes))?;
            Ok(bytes)
        },
    );
    ctx.check(
        "pull: Docker manifest list GET returns the same bytes and Content-Type",
        SEC_LIST,
        || {
            let bytes = need(&list)?;
            c.get_manifest(&repo, "list")?
                .expect_status(&[200])?
                .expect_content_type(oci::DOCKER_LIST)?
                .expect_body_eq(bytes)
                .map(|_| ())
        },
    );
}
