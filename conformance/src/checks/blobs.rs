//! Monolithic blob uploads (POST then PUT, single POST), a wrong digest,
//! cross-repository mounts, and blob isolation between repositories.

use super::{follow_blob_location, need, prep, verify_blob, Ctx};
use crate::api::Res;
use crate::exchange::Exchange;
use crate::oci;
use crate::report::{Failure, Feature};
use crate::spec;

const DCD: &str = "docker-content-digest";

pub fn run(ctx: &Ctx) {
    post_put(ctx);
    single_post(ctx);
    wrong_digest(ctx);
    mounts(ctx);
    isolation(ctx);
}

fn post_put(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("blobs");

    let post = ctx.step(
        "push.post",
        "POST /blobs/uploads/ answers 202 with a Location",
        &spec::POST_202,
        || {
            let ex = c.post_upload(&repo, &[], b"")?;
            ex.expect_status(&[202])?;
            c.location(&ex)?;
            Ok(ex)
        },
    );
    ctx.check(
        "push.post.uuid",
        "the upload Location contains a UUID",
        &spec::LOCATION_UUID,
        || {
            let ex = need(&post)?;
            let loc = ex.require_header("location")?;
            ex.ensure(oci::contains_uuid(loc), || {
                format!("a UUID (8-4-4-4-12 hex) in Location {loc:?}")
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "push.post.docker-headers",
        "POST answers with Docker-Upload-UUID and Range: 0-0",
        &spec::X_UPLOAD_UUID,
        || {
            let ex = need(&post)?;
            ex.expect_header("docker-upload-uuid")?;
            let range = ex.require_header("range")?;
            ex.ensure(range.trim_start_matches("bytes=") == "0-0", || {
                format!("Range 0-0 for an empty session, got {range:?}")
            })
            .map(|_| ())
        },
    );

    let data = oci::random_bytes(12, 64 * 1024);
    let digest = oci::sha256(&data);
    let put = ctx.step(
        "push.post-put",
        "POST then PUT ?digest= answers 201 with a Location that serves the blob",
        &spec::PUT_201,
        || {
            let loc = prep("upload session", c.start_upload(&repo))?;
            let ex = c.put_upload(&loc, &digest, &data)?;
            ex.expect_status(&[201])?;
            follow_blob_location(c, &ex, &data)?;
            Ok(ex)
        },
    );
    ctx.check(
        "push.post-put.readback",
        "the uploaded blob reads back byte for byte by its digest",
        &spec::BLOB_GET,
        || {
            need(&put)?;
            verify_blob(c, &repo, &data, &digest)
        },
    );
    ctx.check(
        "push.put.dcd",
        "the closing PUT carries Docker-Content-Digest of the blob",
        &spec::X_PUT_DCD,
        || need(&put)?.expect_header_eq(DCD, &digest).map(|_| ()),
    );
}

fn single_post(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("single-post");
    let data = oci::random_bytes(11, 3000);
    let digest = oci::sha256(&data);

    let sent: Res<Exchange> = c.post_upload(&repo, &[("digest", &digest)], &data);
    let sent = prep("single POST request", sent);
    ctx.check(
        "push.single-post",
        "a single POST ?digest= with the blob completes the upload (201)",
        &spec::SINGLE_POST_MAY,
        || {
            let ex = need(&sent)?;
            ex.ensure(ex.status == 201, || {
                format!(
                    "answered {} instead of 201: no single-POST uploads{}",
                    ex.status,
                    if ex.status == 202 {
                        " (a session was opened; the client PUTs to its Location)"
                    } else {
                        ""
                    }
                )
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "push.single-post.201",
        "a single POST answered 201 has a Location that serves the blob",
        &spec::SINGLE_POST_201,
        || {
            let ex = need(&sent)?;
            if ex.status != 201 {
                return Err(Failure::not_offered(
                    Feature::SinglePost,
                    format!(
                        "the registry answered {}, not 201: single POST not supported",
                        ex.status
                    ),
                ));
            }
            follow_blob_location(c, ex, &data)?;
            verify_blob(c, &repo, &data, &digest)
        },
    );
    ctx.check(
        "push.single-post.fallback",
        "without single-POST support: 202 with a Location the client can PUT to",
        &spec::SINGLE_POST_202,
        || {
            let ex = need(&sent)?;
            if ex.status == 201 {
                return Err(Failure::not_applicable("single POST is supported (201)"));
            }
            ex.expect_status(&[202])?;
            let loc = c.location(ex)?;
            c.put_upload(&loc, &digest, &data)?
                .expect_status(&[201])
                .map_err(|f| Failure {
                    message: format!("the fallback session to complete with a PUT: {}", f.message),
                    ..f
                })?;
            verify_blob(c, &repo, &data, &digest)
        },
    );
}

fn wrong_digest(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("wrong-digest");
    // The data must not become readable under a digest it doesn't hash to.
    let data = oci::random_bytes(13, 5000);
    let actual = oci::sha256(&data);
    let claimed = oci::sha256(&oci::random_bytes(14, 5000));
    let put = ctx.step(
        "push.wrong-digest",
        "a PUT whose ?digest= does not match the data is refused and nothing is served under it",
        &spec::DIGEST_MISMATCH,
        || {
            let loc = prep("upload session", c.start_upload(&repo))?;
            let ex = c.put_upload(&loc, &claimed, &data)?;
            ex.ensure(!(200..300).contains(&ex.status), || {
                format!("the PUT to be refused (4xx), got {}", ex.status)
            })?;
            c.head_blob(&repo, &claimed)?.expect_status(&[404])?;
            Ok(ex)
        },
    );
    ctx.check(
        "push.wrong-digest.code",
        "the refusal is 400 DIGEST_INVALID and the data is not kept under its real digest",
        &spec::X_ERROR_CODE,
        || {
            need(&put)?.expect_error(&[400], &["DIGEST_INVALID"])?;
            c.head_blob(&repo, &actual)?
                .expect_status(&[404])
                .map(|_| ())
        },
    );
}

fn mounts(ctx: &Ctx) {
    let c = &ctx.client;
    let (from, to) = (ctx.repo("mount-src"), ctx.repo("mount-dst"));
    let data = oci::random_bytes(41, 8 * 1024);
    let d = oci::sha256(&data);

    let mount: Res<Exchange> = (|| {
        prep(
            "blob push to the source repository",
            c.push_blob(&from, &data, &d),
        )?;
        prep(
            "mount request",
            c.post_upload(&to, &[("mount", &d), ("from", &from)], b""),
        )
    })();
    // The MUST half applies only when the registry did mount.
    let mounted = || -> Res<&Exchange> {
        let ex = need(&mount)?;
        if ex.status == 201 {
            Ok(ex)
        } else {
            Err(Failure::not_offered(
                Feature::Mount,
                format!(
                    "the registry answered {}, not 201: it did not mount (see push.mount)",
                    ex.status
                ),
            ))
        }
    };
    ctx.check(
        "push.mount",
        "POST ?mount=<digest>&from=<repo> mounts the blob (201)",
        &spec::MOUNT_MAY,
        || {
            let ex = need(&mount)?;
            ex.ensure(ex.status == 201, || {
                format!(
                    "answered {} instead of 201: the blob was not mounted",
                    ex.status
                )
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "push.mount.201",
        "a 201 mount has a Location serving the blob, readable in the target repository",
        &spec::MOUNT_201,
        || {
            follow_blob_location(c, mounted()?, &data)?;
            verify_blob(c, &to, &data, &d)
        },
    );
    ctx.check(
        "push.mount.dcd",
        "a 201 mount carries Docker-Content-Digest of the blob",
        &spec::X_PUT_DCD,
        || mounted()?.expect_header_eq(DCD, &d).map(|_| ()),
    );

    ctx.check(
        "push.mount.auto",
        "POST ?mount=<digest> without from mounts a blob the caller may read elsewhere (201)",
        &spec::X_MOUNT_AUTO,
        || {
            // The same blob, into a third repository, naming no source.
            let auto = ctx.repo("mount-auto");
            let ex = prep("mount request", c.post_upload(&auto, &[("mount", &d)], b""))?;
            ex.ensure(ex.status == 201, || {
                format!("answered {} instead of 201: no automatic mount", ex.status)
            })?;
            verify_blob(c, &auto, &data, &d)
        },
    );

    let missing = oci::sha256(&oci::random_bytes(42, 100));
    let fallback = c.post_upload(&to, &[("mount", &missing), ("from", &from)], b"");
    let fallback = prep("mount request", fallback);
    ctx.check(
        "push.mount.missing",
        "a mount of a blob the source lacks falls back to an upload session (202)",
        &spec::MOUNT_202,
        || {
            let ex = need(&fallback)?;
            ex.ensure(ex.status == 202, || {
                format!("answered {} instead of 202", ex.status)
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "push.mount.missing.session",
        "that 202 has a Location of an active upload (status 204)",
        &spec::POST_202,
        || {
            let ex = need(&fallback)?;
            if ex.status != 202 {
                return Err(Failure::not_offered(
                    Feature::Mount,
                    format!("the fallback answered {}, not 202", ex.status),
                ));
            }
            let loc = c.location(ex)?;
            c.get(loc)?.expect_status(&[204]).map(|_| ())
        },
    );
}

fn isolation(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "pull.blob.isolation",
        "a blob is not served from a repository that never received it (404)",
        &spec::BLOB_NOT_FOUND,
        || {
            let (a, b) = (ctx.repo("isolated-a"), ctx.repo("isolated-b"));
            // The other repository exists, so the 404 is about the blob.
            let own = oci::random_bytes(43, 100);
            prep(
                "blob push to the other repository",
                c.push_blob(&b, &own, &oci::sha256(&own)),
            )?;
            let data = oci::random_bytes(44, 2048);
            let d = oci::sha256(&data);
            prep(
                "blob push to the source repository",
                c.push_blob(&a, &data, &d),
            )?;
            c.head_blob(&b, &d)?.expect_status(&[404])?;
            c.get_blob(&b, &d)?.expect_status(&[404]).map(|_| ())
        },
    );
}
