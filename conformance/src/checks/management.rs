//! Content management: deleting tags, manifests and blobs, and checking the
//! deletions are visible everywhere (pulls, tag lists, referrers).

use super::discovery::{find_digest, referrer_entries};
use super::fixtures::{push_artifact, push_image, Flavor, Image, SEED_IMAGE};
use super::{need, prep, Ctx};
use crate::api::Res;
use crate::oci;

const SEC_TAGS: &str = "Content management / Deleting tags";
const SEC_MANIFESTS: &str = "Content management / Deleting manifests";
const SEC_BLOBS: &str = "Content management / Deleting blobs";

/// Content in a repository of its own, so deleting it can't affect the
/// other groups' checks.
struct Setup {
    repo: String,
    kept: Image,
    doomed: Image,
    referrer: String,
}

fn setup(ctx: &Ctx) -> Res<Setup> {
    let c = &ctx.client;
    let repo = ctx.repo("mgmt");
    let kept = push_image(c, &repo, "keep", Flavor::Oci, SEED_IMAGE + 400)?;
    c.put_manifest(&repo, "untag-me", &kept.media_type, &kept.manifest)?
        .expect_status(&[201])?;
    let doomed = push_image(c, &repo, "doomed-a", Flavor::Oci, SEED_IMAGE + 500)?;
    c.put_manifest(&repo, "doomed-b", &doomed.media_type, &doomed.manifest)?
        .expect_status(&[201])?;
    let (bytes, _) = push_artifact(
        c,
        &repo,
        None,
        oci::ARTIFACT_SIG,
        Some(kept.descriptor()),
        None,
        SEED_IMAGE + 600,
    )?;
    Ok(Setup {
        repo,
        kept,
        doomed,
        referrer: oci::sha256(&bytes),
    })
}

pub fn run(ctx: &Ctx) {
    let c = &ctx.client;
    let setup = prep("push of content to delete", setup(ctx));

    let untagged = ctx.step(
        "management: DELETE manifest by tag returns 202",
        SEC_TAGS,
        || {
            let s = need(&setup)?;
            c.delete(c.manifest_url(&s.repo, "untag-me"))?
                .expect_status(&[202])
                .map(|_| ())
        },
    );
    ctx.check(
        "management: deleted tag no longer resolves",
        SEC_TAGS,
        || {
            need(&untagged)?;
            let s = need(&setup)?;
            c.get_manifest(&s.repo, "untag-me")?
                .expect_status(&[404])
                .map(|_| ())
        },
    );

    let deleted = ctx.step(
        "management: DELETE manifest by digest returns 202",
        SEC_MANIFESTS,
        || {
            let s = need(&setup)?;
            c.delete(c.manifest_url(&s.repo, &s.doomed.digest))?
                .expect_status(&[202])
                .map(|_| ())
        },
    );
    ctx.check(
        "management: deleted manifest returns 404 by digest",
        SEC_MANIFESTS,
        || {
            need(&deleted)?;
            let s = need(&setup)?;
            c.get_manifest(&s.repo, &s.doomed.digest)?
                .expect_status(&[404])
                .map(|_| ())
        },
    );
    ctx.check(
        "management: tags of a deleted manifest disappear from tags/list",
        SEC_MANIFESTS,
        || {
            need(&deleted)?;
            let s = need(&setup)?;
            let ex = c.tags_list(&s.repo, &[])?;
            ex.expect_status(&[200])?;
            let tags = ex.json()?["tags"].clone();
            let gone = ["doomed-a", "doomed-b"]
                .iter()
                .all(|t| !tags.as_array().is_some_and(|a| a.iter().any(|v| v == t)));
            ex.ensure(gone, || format!("no doomed-a / doomed-b tags, got {tags}"))
                .map(|_| ())
        },
    );

    ctx.check(
        "management: referrers index no longer lists a deleted referrer",
        SEC_MANIFESTS,
        || {
            let s = need(&setup)?;
            let before = c.referrers(&s.repo, &s.kept.digest, &[])?;
            let entries = prep("referrers listing before delete", referrer_entries(&before))?;
            if find_digest(&entries, &s.referrer).is_none() {
                let msg = "prerequisite failed: referrer not listed before its deletion";
                return Err(before.fail(msg));
            }
            c.delete(c.manifest_url(&s.repo, &s.referrer))?
                .expect_status(&[202])?;
            let after = c.referrers(&s.repo, &s.kept.digest, &[])?;
            let entries = referrer_entries(&after)?;
            after
                .ensure(find_digest(&entries, &s.referrer).is_none(), || {
                    format!("{} to be gone from the referrers index", s.referrer)
                })
                .map(|_| ())
        },
    );

    let blob_deleted = ctx.step("management: DELETE blob returns 202", SEC_BLOBS, || {
        let s = need(&setup)?;
        c.delete(c.blob_url(&s.repo, &s.doomed.layers[0].digest))?
            .expect_status(&[202])
            .map(|_| ())
    });
    ctx.check(
        "management: deleted blob HEAD returns 404",
        SEC_BLOBS,
        || {
            need(&blob_deleted)?;
            let s = need(&setup)?;
            c.head_blob(&s.repo, &s.doomed.layers[0].digest)?
                .expect_status(&[404])
                .map(|_| ())
        },
    );
    ctx.check(
        "management: DELETE of an unknown blob returns 404 BLOB_UNKNOWN",
        SEC_BLOBS,
        || {
            let s = need(&setup)?;
            let unknown = oci::sha256(b"conformance: never pushed, never deleted");
            c.delete(c.blob_url(&s.repo, &unknown))?
                .expect_error(&[404], &["BLOB_UNKNOWN"])
                .map(|_| ())
        },
    );
}
