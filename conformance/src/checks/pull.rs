//! Pull checks: manifests and blobs by tag and digest, HEAD variants,
//! range requests, conditional requests, and not-found errors.

use super::Ctx;
use crate::client::Request;
use crate::oci;
use crate::report::ensure;

const DCD: &str = "docker-content-digest";
const SEC_MANIFESTS: &str = "Pull / Pulling manifests";
const SEC_BLOBS: &str = "Pull / Pulling blobs";
const SEC_RANGE: &str = "Pull / Pulling blobs (Range requests)";

pub fn run(ctx: &Ctx) {
    manifests(ctx);
    blobs(ctx);
    not_found(ctx);
}

fn manifests(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "pull: GET manifest by tag returns exact bytes",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.get_manifest(&img.repo, "v1")?
                .expect_status(&[200])?
                .expect_body_eq(&img.manifest)
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: GET manifest by tag has Content-Type of the pushed media type",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.get_manifest(&img.repo, "v1")?
                .expect_status(&[200])?
                .expect_content_type(&img.media_type)
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: GET manifest by tag has Docker-Content-Digest and Content-Length",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.get_manifest(&img.repo, "v1")?
                .expect_status(&[200])?
                .expect_header_eq(DCD, &img.digest)?
                .expect_content_length(img.manifest.len())
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: HEAD manifest by tag returns 200 with headers and no body",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.head_manifest(&img.repo, "v1")?
                .expect_status(&[200])?
                .expect_content_type(&img.media_type)?
                .expect_header_eq(DCD, &img.digest)?
                .expect_content_length(img.manifest.len())?
                .expect_empty_body()
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: GET manifest by digest returns exact bytes and Content-Type",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.get_manifest(&img.repo, &img.digest)?
                .expect_status(&[200])?
                .expect_content_type(&img.media_type)?
                .expect_header_eq(DCD, &img.digest)?
                .expect_body_eq(&img.manifest)
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: HEAD manifest by digest returns 200 with Content-Length",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            c.head_manifest(&img.repo, &img.digest)?
                .expect_status(&[200])?
                .expect_content_length(img.manifest.len())?
                .expect_empty_body()
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: manifest If-None-Match with its ETag returns 304",
        SEC_MANIFESTS,
        || {
            let img = ctx.image()?;
            let ex = c.get_manifest(&img.repo, &img.digest)?;
            ex.expect_status(&[200])?;
            // ETags on manifests are optional; only test them if offered.
            let Some(etag) = ex.header("etag") else {
                return Ok(());
            };
            let req = Request::new("GET", c.manifest_url(&img.repo, &img.digest))
                .header("Accept", oci::ACCEPT_MANIFESTS)
                .header("If-None-Match", etag);
            c.send(req)?.expect_status(&[304]).map(|_| ())
        },
    );
}

fn blobs(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "pull: GET blob returns exact bytes with Content-Length and Docker-Content-Digest",
        SEC_BLOBS,
        || {
            let img = ctx.image()?;
            for b in img.blobs() {
                c.get_blob(&img.repo, &b.digest)?
                    .expect_status(&[200])?
                    .expect_content_length(b.data.len())?
                    .expect_header_eq(DCD, &b.digest)?
                    .expect_body_eq(&b.data)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull: HEAD blob returns 200 with Content-Length and no body",
        SEC_BLOBS,
        || {
            let img = ctx.image()?;
            let b = &img.layers[1];
            c.head_blob(&img.repo, &b.digest)?
                .expect_status(&[200])?
                .expect_content_length(b.data.len())?
                .expect_header_eq(DCD, &b.digest)?
                .expect_empty_body()
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: blob Range request returns 206 with Content-Range and the slice",
        SEC_RANGE,
        || {
            let img = ctx.image()?;
            let b = &img.layers[1];
            let req = Request::new("GET", c.blob_url(&img.repo, &b.digest))
                .header("Range", "bytes=10-19");
            c.send(req)?
                .expect_status(&[206])?
                .expect_header_eq("content-range", &format!("bytes 10-19/{}", b.data.len()))?
                .expect_body_eq(&b.data[10..20])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: unsatisfiable blob Range returns 416",
        SEC_RANGE,
        || {
            let img = ctx.image()?;
            let b = &img.layers[0];
            let n = b.data.len();
            let req = Request::new("GET", c.blob_url(&img.repo, &b.digest))
                .header("Range", format!("bytes={}-{}", n + 100, n + 200));
            c.send(req)?.expect_status(&[416]).map(|_| ())
        },
    );
    ctx.check(
        "pull: blob If-None-Match with its ETag returns 304",
        SEC_BLOBS,
        || {
            let img = ctx.image()?;
            let b = &img.layers[0];
            let ex = c.get_blob(&img.repo, &b.digest)?;
            ex.expect_status(&[200])?;
            let etag = ex.require_header("etag")?;
            let req =
                Request::new("GET", c.blob_url(&img.repo, &b.digest)).header("If-None-Match", etag);
            let ex = c.send(req)?;
            ex.expect_status(&[304])?;
            ensure(ex.body.is_empty(), || "304 to carry no body".into())
        },
    );
}

fn not_found(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("app");
    let unknown_digest = oci::sha256(b"conformance: content that is never pushed");

    ctx.check(
        "pull: unknown manifest tag returns 404 MANIFEST_UNKNOWN",
        SEC_MANIFESTS,
        || {
            ctx.image()?; // make sure the repository itself exists
            c.get_manifest(&repo, "no-such-tag")?
                .expect_error(&[404], &["MANIFEST_UNKNOWN"])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: unknown manifest digest returns 404 MANIFEST_UNKNOWN",
        SEC_MANIFESTS,
        || {
            ctx.image()?;
            c.get_manifest(&repo, &unknown_digest)?
                .expect_error(&[404], &["MANIFEST_UNKNOWN"])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: unknown blob returns 404 BLOB_UNKNOWN",
        SEC_BLOBS,
        || {
            ctx.image()?;
            c.get_blob(&repo, &unknown_digest)?
                .expect_error(&[404], &["BLOB_UNKNOWN"])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull: manifest in an unknown repository returns 404",
        SEC_MANIFESTS,
        || {
            c.get_manifest(&ctx.repo("never-pushed"), "latest")?
                .expect_error(&[404], &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"])
                .map(|_| ())
        },
    );
}
