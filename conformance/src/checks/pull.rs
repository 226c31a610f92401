//! Pulls: manifests and blobs by tag and digest, HEAD, Docker-Content-Digest,
//! not-found answers, Range requests and conditional requests.

use super::{dcd_if_present_matches, Ctx};
use crate::api::Res;
use crate::client::Request;
use crate::exchange::Exchange;
use crate::oci;
use crate::report::{ensure, Failure};
use crate::spec;

const DCD: &str = "docker-content-digest";

pub fn run(ctx: &Ctx) {
    manifests(ctx);
    blobs(ctx);
    not_found(ctx);
    ranges(ctx);
    etags(ctx);
}

/// GET and HEAD of the main image's manifest by tag and by digest.
struct Fetched {
    label: &'static str,
    ex: Exchange,
}

fn fetch_manifests(ctx: &Ctx) -> Res<Vec<Fetched>> {
    let c = &ctx.client;
    let img = ctx.image()?;
    Ok(vec![
        Fetched {
            label: "GET by tag",
            ex: c.get_manifest(&img.repo, "v1")?,
        },
        Fetched {
            label: "GET by digest",
            ex: c.get_manifest(&img.repo, &img.digest)?,
        },
        Fetched {
            label: "HEAD by tag",
            ex: c.head_manifest(&img.repo, "v1")?,
        },
        Fetched {
            label: "HEAD by digest",
            ex: c.head_manifest(&img.repo, &img.digest)?,
        },
    ])
}

fn manifests(ctx: &Ctx) {
    let fetched = fetch_manifests(ctx);
    let each = |f: &dyn Fn(&Fetched) -> Res<()>| -> Res<()> {
        for x in fetched.as_ref().map_err(Clone::clone)? {
            f(x)?;
        }
        Ok(())
    };
    ctx.check(
        "pull.manifest.get",
        "GET of a manifest by tag and by digest answers 200 with the exact bytes pushed",
        &spec::MANIFEST_GET,
        || {
            let img = ctx.image()?;
            each(&|x| {
                if x.ex.method == "GET" {
                    x.ex.expect_status(&[200])?.expect_body_eq(&img.manifest)?;
                }
                Ok(())
            })
        },
    );
    ctx.check(
        "pull.manifest.head",
        "HEAD of a manifest by tag and by digest answers 200 without a body",
        &spec::HEAD_200,
        || {
            each(&|x| {
                if x.ex.method == "HEAD" {
                    x.ex.expect_status(&[200])?.expect_empty_body()?;
                }
                Ok(())
            })
        },
    );
    ctx.check(
        "pull.manifest.content-type",
        "GET and HEAD answer with the Content-Type the manifest was pushed with",
        &spec::MANIFEST_CONTENT_TYPE,
        || {
            let img = ctx.image()?;
            each(&|x| x.ex.expect_content_type(&img.media_type).map(|_| ()))
        },
    );
    ctx.check(
        "pull.manifest.content-type-params",
        "that Content-Type has no parameters",
        &spec::MANIFEST_CT_PARAMS,
        || {
            each(&|x| {
                let ct = x.ex.header("content-type").unwrap_or("");
                x.ex.ensure(!ct.contains(';'), || {
                    format!("{}: Content-Type {ct:?} carries parameters", x.label)
                })
                .map(|_| ())
            })
        },
    );
    for (method, rule) in [("GET", &spec::MANIFEST_DCD), ("HEAD", &spec::HEAD_DCD)] {
        ctx.check(
            &format!("pull.manifest.dcd.{}", method.to_lowercase()),
            &format!("manifest {method} by tag and by digest carries Docker-Content-Digest"),
            rule,
            || {
                each(&|x| {
                    if x.ex.method != method {
                        return Ok(());
                    }
                    x.ex.ensure(x.ex.header(DCD).is_some(), || {
                        format!("no Docker-Content-Digest on {}", x.label)
                    })
                    .map(|_| ())
                })
            },
        );
    }
    ctx.check(
        "pull.manifest.dcd-value",
        "that Docker-Content-Digest, when present, is the digest of the manifest",
        &spec::MANIFEST_DCD_VALUE,
        || {
            let img = ctx.image()?;
            each(&|x| dcd_if_present_matches(&x.ex, &img.manifest))
        },
    );
    ctx.check(
        "pull.manifest.head-length",
        "HEAD of a manifest carries its size in Content-Length",
        &spec::HEAD_LENGTH,
        || {
            let img = ctx.image()?;
            each(&|x| {
                if x.ex.method == "HEAD" {
                    x.ex.expect_content_length(img.manifest.len())?;
                }
                Ok(())
            })
        },
    );
}

fn blobs(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "pull.blob.get",
        "GET of each blob answers 200 with its exact bytes",
        &spec::BLOB_GET,
        || {
            let img = ctx.image()?;
            for b in img.blobs() {
                c.get_blob(&img.repo, &b.digest)?
                    .expect_status(&[200])?
                    .expect_body_eq(&b.data)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.blob.head",
        "HEAD of a blob answers 200 without a body",
        &spec::HEAD_200,
        || {
            let img = ctx.image()?;
            let b = &img.layers[1];
            c.head_blob(&img.repo, &b.digest)?
                .expect_status(&[200])?
                .expect_empty_body()
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.blob.head-length",
        "HEAD of a blob carries its size in Content-Length",
        &spec::HEAD_LENGTH,
        || {
            let img = ctx.image()?;
            let b = &img.layers[1];
            c.head_blob(&img.repo, &b.digest)?
                .expect_content_length(b.data.len())
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.blob.dcd.get",
        "blob GET carries Docker-Content-Digest",
        &spec::BLOB_DCD,
        || {
            let img = ctx.image()?;
            c.get_blob(&img.repo, &img.layers[0].digest)?
                .expect_header(DCD)
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.blob.dcd.head",
        "blob HEAD carries Docker-Content-Digest",
        &spec::HEAD_DCD,
        || {
            let img = ctx.image()?;
            c.head_blob(&img.repo, &img.layers[0].digest)?
                .expect_header(DCD)
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.blob.dcd-value",
        "that Docker-Content-Digest, when present, matches the blob",
        &spec::BLOB_DCD_VALUE,
        || {
            let img = ctx.image()?;
            for b in img.blobs() {
                dcd_if_present_matches(&c.get_blob(&img.repo, &b.digest)?, &b.data)?;
                dcd_if_present_matches(&c.head_blob(&img.repo, &b.digest)?, &b.data)?;
            }
            Ok(())
        },
    );
}

fn not_found(ctx: &Ctx) {
    let c = &ctx.client;
    let unknown = oci::sha256(b"conformance: content that is never pushed");
    // The same questions, answered once; the MUST check wants the status,
    // the extra the error code.
    let asked: Res<Vec<(&str, Exchange)>> = (|| {
        let img = ctx.image()?;
        let r = &img.repo;
        Ok(vec![
            ("MANIFEST_UNKNOWN", c.get_manifest(r, "no-such-tag")?),
            ("MANIFEST_UNKNOWN", c.get_manifest(r, &unknown)?),
            // Neither a tag nor a digest: the spec suite's nonexistent
            // manifest.
            (
                "MANIFEST_UNKNOWN",
                c.get_manifest(r, ".INVALID_MANIFEST_NAME")?,
            ),
            ("BLOB_UNKNOWN", c.get_blob(r, &unknown)?),
        ])
    })();
    ctx.check(
        "pull.not-found.get",
        "GET of an unknown tag, digest or reference, and of an unknown blob, answers 404",
        &spec::MANIFEST_NOT_FOUND,
        || {
            for (_, ex) in asked.as_ref().map_err(Clone::clone)? {
                ex.expect_status(&[404])?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.not-found.code",
        "those 404s carry MANIFEST_UNKNOWN or BLOB_UNKNOWN",
        &spec::X_ERROR_CODE,
        || {
            for (code, ex) in asked.as_ref().map_err(Clone::clone)? {
                ex.expect_error(&[404], &[code])?;
            }
            Ok(())
        },
    );
    ctx.check(
        "pull.not-found.head",
        "HEAD of an unknown manifest or blob answers 404",
        &spec::HEAD_NOT_FOUND,
        || {
            let img = ctx.image()?;
            c.head_manifest(&img.repo, "no-such-tag")?
                .expect_status(&[404])?;
            c.head_manifest(&img.repo, ".INVALID_MANIFEST_NAME")?
                .expect_status(&[404])?;
            c.head_blob(&img.repo, &unknown)?.expect_status(&[404])?;
            Ok(())
        },
    );
    let never = c.get_manifest(&ctx.repo("never-pushed"), "latest");
    ctx.check(
        "pull.not-found.repository",
        "GET of a manifest in a repository that does not exist answers 404",
        &spec::NONEXISTENT_REPO,
        || {
            never
                .as_ref()
                .map_err(Clone::clone)?
                .expect_status(&[404])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.not-found.repository.code",
        "that 404 carries NAME_UNKNOWN or MANIFEST_UNKNOWN",
        &spec::X_ERROR_CODE,
        || {
            never
                .as_ref()
                .map_err(Clone::clone)?
                .expect_error(&[404], &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"])
                .map(|_| ())
        },
    );
}

fn ranges(ctx: &Ctx) {
    let c = &ctx.client;
    let ranged: Res<Exchange> = (|| {
        let img = ctx.image()?;
        let b = &img.layers[1];
        c.send(Request::new("GET", c.blob_url(&img.repo, &b.digest)).header("Range", "bytes=10-19"))
    })();
    ctx.check(
        "pull.range.206",
        "a blob GET with Range: bytes=10-19 answers 206 with Content-Range and those bytes",
        &spec::RANGE,
        || {
            let img = ctx.image()?;
            let b = &img.layers[1];
            ranged
                .as_ref()
                .map_err(Clone::clone)?
                .expect_status(&[206])?
                .expect_header_eq("content-range", &format!("bytes 10-19/{}", b.data.len()))?
                .expect_body_eq(&b.data[10..20])
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.range.416",
        "a Range beyond the blob answers 416 with Content-Range: bytes */<length>",
        &spec::RANGE,
        || {
            let img = ctx.image()?;
            let b = &img.layers[0];
            let n = b.data.len();
            let req = Request::new("GET", c.blob_url(&img.repo, &b.digest))
                .header("Range", format!("bytes={}-{}", n + 100, n + 200));
            c.send(req)?
                .expect_status(&[416])?
                .expect_header_eq("content-range", &format!("bytes */{n}"))
                .map(|_| ())
        },
    );
    ctx.check(
        "pull.range.dcd",
        "a 206 carries the blob's Docker-Content-Digest",
        &spec::X_DCD_PARTIAL,
        || {
            let img = ctx.image()?;
            let ex = ranged.as_ref().map_err(Clone::clone)?;
            if ex.status != 206 {
                return Err(Failure::not_applicable("no 206 (see pull.range.206)"));
            }
            ex.expect_header_eq(DCD, &img.layers[1].digest).map(|_| ())
        },
    );
}

/// GET, then GET again with `If-None-Match: <its ETag>`.
fn conditional(ctx: &Ctx, manifest: bool) -> Res<(Exchange, Option<Exchange>)> {
    let c = &ctx.client;
    let img = ctx.image()?;
    let (url, first) = if manifest {
        (
            c.manifest_url(&img.repo, &img.digest),
            c.get_manifest(&img.repo, &img.digest)?,
        )
    } else {
        let d = &img.layers[0].digest;
        (c.blob_url(&img.repo, d), c.get_blob(&img.repo, d)?)
    };
    first.expect_status(&[200])?;
    let Some(etag) = first.header("etag") else {
        return Ok((first, None));
    };
    let req = Request::new("GET", url)
        .header("Accept", oci::ACCEPT_MANIFESTS)
        .header("If-None-Match", etag);
    let second = c.send(req)?;
    Ok((first, Some(second)))
}

fn etags(ctx: &Ctx) {
    for (manifest, what) in [(true, "manifest"), (false, "blob")] {
        let got = conditional(ctx, manifest);
        ctx.check(
            &format!("pull.{what}.etag"),
            &format!("a {what} GET has an ETag; If-None-Match with it answers 304 without a body"),
            &spec::X_ETAG,
            || {
                let (first, second) = got.as_ref().map_err(Clone::clone)?;
                let Some(second) = second else {
                    return Err(first.fail("an ETag header (none was sent)"));
                };
                second.expect_status(&[304])?;
                ensure(second.body.is_empty(), || "304 to carry no body".into())
            },
        );
        if !manifest {
            ctx.check(
                "pull.blob.etag.dcd",
                "a 304 carries the blob's Docker-Content-Digest",
                &spec::X_DCD_PARTIAL,
                || {
                    let img = ctx.image()?;
                    match got.as_ref().map_err(Clone::clone)? {
                        (_, Some(second)) if second.status == 304 => second
                            .expect_header_eq(DCD, &img.layers[0].digest)
                            .map(|_| ()),
                        _ => Err(Failure::not_applicable("no 304 (see pull.blob.etag)")),
                    }
                },
            );
        }
    }
}
