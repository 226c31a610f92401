//! Content management: deleting tags, manifests and blobs. Deletion is
//! optional (400 or 405 when disabled): the choice is a MAY warning and the
//! checks of what a deletion leaves behind are then not applicable. Each
//! kind of deletion works in a repository of its own.

use super::fixtures::{push_artifact, push_image, push_small, Flavor, SEED_IMAGE, SMALL_LAYERS};
use super::referrers::{find_digest, referrer_entries};
use super::tags::string_list;
use super::{need, prep, Ctx};
use crate::api::Res;
use crate::exchange::Exchange;
use crate::oci;
use crate::report::{Failure, Feature};
use crate::spec::{self, Rule};

const SEED: u64 = SEED_IMAGE + 700;

pub fn run(ctx: &Ctx) {
    tags(ctx);
    manifests(ctx);
    index_child(ctx);
    referrer(ctx);
    blobs(ctx);
}

/// The MUST half of a DELETE (202, or 400/405 when disabled) as a step, and
/// the MAY half (enabled) as a check. The step's value is whether the
/// deletion happened; later checks use [`deleted`].
fn delete_step(
    ctx: &Ctx,
    id: &str,
    title: &str,
    rule: &Rule,
    send: impl FnOnce() -> Res<Exchange>,
) -> Res<Exchange> {
    let done = ctx.step(id, title, rule, || {
        let ex = send()?;
        ex.expect_status(&[202, 400, 405])?;
        Ok(ex)
    });
    ctx.check(
        &format!("{id}.enabled"),
        "deletion of this kind is enabled (202)",
        &spec::DELETE_MAY,
        || {
            let ex = need(&done)?;
            ex.ensure(ex.status == 202, || {
                format!("disabled: answered {}", ex.status)
            })
            .map(|_| ())
        },
    );
    done
}

/// Gate for checks of what a deletion leaves: it must have happened (or
/// deletion of this kind, `feature`, is off).
fn deleted(done: &Res<Exchange>, feature: Feature) -> Res<()> {
    let ex = need(done)?;
    if ex.status == 202 {
        Ok(())
    } else {
        Err(Failure::not_offered(
            feature,
            format!("deletion disabled (answered {})", ex.status),
        ))
    }
}

fn listed_tags(ctx: &Ctx, repo: &str) -> Res<Vec<String>> {
    let ex = ctx.client.tags_list(repo, &[])?;
    string_list(ex.expect_status(&[200])?, "tags")
}

fn tags(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("delete-tag");
    let setup = prep(
        "push of an image under two tags",
        (|| {
            let img = push_small(c, &repo, "keep", SEED)?;
            c.put_manifest(&repo, "untag-me", &img.media_type, &img.manifest)?
                .expect_status(&[201])?;
            Ok(img)
        })(),
    );
    let done = delete_step(
        ctx,
        "delete.tag",
        "DELETE of a tag answers 202 (or 400/405 when tag deletion is disabled)",
        &spec::TAG_DELETE,
        || {
            need(&setup)?;
            c.delete(c.manifest_url(&repo, "untag-me"))
        },
    );
    ctx.check(
        "delete.tag.gone",
        "the deleted tag answers 404 and leaves tags/list",
        &spec::TAG_DELETED,
        || {
            deleted(&done, Feature::TagDelete)?;
            c.get_manifest(&repo, "untag-me")?.expect_status(&[404])?;
            let tags = listed_tags(ctx, &repo)?;
            (tags == ["keep"])
                .then_some(())
                .ok_or_else(|| Failure::new(format!("tags [\"keep\"], got {tags:?}")))
        },
    );
    ctx.check(
        "delete.tag.keeps-manifest",
        "the manifest it pointed at is still there, by digest and by its other tag",
        &spec::TAG_DELETE_KEEPS_MANIFEST,
        || {
            deleted(&done, Feature::TagDelete)?;
            let img = need(&setup)?;
            c.get_manifest(&repo, &img.digest)?
                .expect_status(&[200])?
                .expect_body_eq(&img.manifest)?;
            c.get_manifest(&repo, "keep")?
                .expect_status(&[200])
                .map(|_| ())
        },
    );
}

fn manifests(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("delete-manifest");
    let setup = prep(
        "push of two images",
        (|| {
            push_small(c, &repo, "keep", SEED + 10)?;
            let doomed = push_small(c, &repo, "doomed-a", SEED + 20)?;
            c.put_manifest(&repo, "doomed-b", &doomed.media_type, &doomed.manifest)?
                .expect_status(&[201])?;
            Ok(doomed)
        })(),
    );
    let done = delete_step(
        ctx,
        "delete.manifest",
        "DELETE of a manifest by digest answers 202 (or 400/405 when disabled)",
        &spec::MANIFEST_DELETE,
        || {
            let img = need(&setup)?;
            c.delete(c.manifest_url(&repo, &img.digest))
        },
    );
    ctx.check(
        "delete.manifest.gone",
        "the deleted manifest and both its tags answer 404; the tags leave tags/list",
        &spec::MANIFEST_DELETED,
        || {
            deleted(&done, Feature::ManifestDelete)?;
            let img = need(&setup)?;
            for reference in [img.digest.as_str(), "doomed-a", "doomed-b"] {
                c.get_manifest(&repo, reference)?.expect_status(&[404])?;
            }
            let tags = listed_tags(ctx, &repo)?;
            (tags == ["keep"])
                .then_some(())
                .ok_or_else(|| Failure::new(format!("tags [\"keep\"], got {tags:?}")))
        },
    );
    ctx.check(
        "delete.manifest.unknown-repository",
        "DELETE of a manifest in a repository that does not exist answers 404",
        &spec::MANIFEST_DELETE_NO_REPO,
        || {
            let unknown = oci::sha256(b"conformance: no such manifest");
            let ex = c.delete(c.manifest_url(&ctx.repo("never-pushed"), &unknown))?;
            // Disabled deletion may answer first.
            let disabled = done.as_ref().is_ok_and(|d| d.status != 202);
            let allowed: &[u16] = if disabled { &[404, 400, 405] } else { &[404] };
            ex.expect_status(allowed).map(|_| ())
        },
    );
}

fn index_child(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("delete-index-child");
    let setup = prep(
        "push of two images and an index of them",
        (|| {
            let a = push_image(c, &repo, "", Flavor::Oci, SEED + 30, &SMALL_LAYERS)?;
            let b = push_image(c, &repo, "", Flavor::Oci, SEED + 40, &SMALL_LAYERS)?;
            let bytes = oci::index(
                oci::OCI_INDEX,
                &[
                    (a.descriptor(), oci::platform("amd64")),
                    (b.descriptor(), oci::platform("arm64")),
                ],
            );
            c.put_manifest(&repo, "index", oci::OCI_INDEX, &bytes)?
                .expect_status(&[201])?;
            Ok((a, bytes))
        })(),
    );
    let sent = need(&setup).and_then(|(a, _)| c.delete(c.manifest_url(&repo, &a.digest)));
    ctx.check(
        "delete.index-child",
        "DELETE of a manifest an index references answers 202, 400 or 405; after a 202 it answers 404",
        &spec::MANIFEST_DELETE,
        || {
            let ex = need(&sent)?;
            ex.expect_status(&[202, 400, 405])?;
            if ex.status == 202 {
                let (a, _) = need(&setup)?;
                c.get_manifest(&repo, &a.digest)?.expect_status(&[404])?;
            }
            Ok(())
        },
    );
    ctx.check(
        "delete.index-child.choice",
        "the child is deleted (202) and the index is still served as pushed",
        &spec::X_INDEX_CHILD_DELETE,
        || {
            let ex = need(&sent)?;
            ex.ensure(ex.status == 202, || {
                format!(
                    "refused to delete a manifest an index references ({})",
                    ex.status
                )
            })?;
            let (_, bytes) = need(&setup)?;
            c.get_manifest(&repo, "index")?
                .expect_status(&[200])?
                .expect_body_eq(bytes)
                .map(|_| ())
        },
    );
}

fn referrer(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("delete-referrer");
    ctx.check(
        "delete.referrer",
        "a deleted referrer leaves the referrers listing",
        &spec::REFERRERS_LIST,
        || {
            let subject = prep("subject push", push_small(c, &repo, "subject", SEED + 50))?;
            let (bytes, put) = prep(
                "referrer push",
                push_artifact(
                    c,
                    &repo,
                    None,
                    oci::ARTIFACT_SIG,
                    Some(subject.descriptor()),
                    None,
                    SEED + 51,
                ),
            )?;
            let digest = oci::sha256(&bytes);
            let before = c.referrers(&repo, &subject.digest, &[])?;
            if before.status == 404 && put.header("oci-subject").is_none() {
                return Err(Failure::not_offered(
                    Feature::Referrers,
                    "the registry does not offer the referrers API",
                ));
            }
            let entries = referrer_entries(&before)?;
            before.ensure(find_digest(&entries, &digest).is_some(), || {
                format!("{digest} listed before its deletion")
            })?;
            let del = c.delete(c.manifest_url(&repo, &digest))?;
            del.expect_status(&[202, 400, 405])?;
            if del.status != 202 {
                return Err(Failure::not_offered(
                    Feature::ManifestDelete,
                    format!("manifest deletion disabled ({})", del.status),
                ));
            }
            let after = c.referrers(&repo, &subject.digest, &[])?;
            let entries = referrer_entries(&after)?;
            after
                .ensure(find_digest(&entries, &digest).is_none(), || {
                    format!("{digest} gone from the referrers listing")
                })
                .map(|_| ())
        },
    );
}

fn blobs(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("delete-blob");
    let setup = prep("image push", push_small(c, &repo, "v1", SEED + 60));
    let done = delete_step(
        ctx,
        "delete.blob",
        "DELETE of a blob answers 202 (or 400/405 when disabled)",
        &spec::BLOB_DELETE,
        || {
            let img = need(&setup)?;
            c.delete(c.blob_url(&repo, &img.layers[0].digest))
        },
    );
    ctx.check(
        "delete.blob.gone",
        "the deleted blob answers 404 to HEAD and GET",
        &spec::BLOB_NOT_FOUND,
        || {
            deleted(&done, Feature::BlobDelete)?;
            let img = need(&setup)?;
            let d = &img.layers[0].digest;
            c.head_blob(&repo, d)?.expect_status(&[404])?;
            c.get_blob(&repo, d)?.expect_status(&[404]).map(|_| ())
        },
    );
    let unknown = need(&setup).and_then(|_| {
        c.delete(c.blob_url(
            &repo,
            &oci::sha256(b"conformance: never pushed, never deleted"),
        ))
    });
    ctx.check(
        "delete.blob.unknown",
        "DELETE of an unknown blob answers 404 (400/405 when disabled)",
        &spec::BLOB_DELETE_UNKNOWN,
        || {
            let ex = need(&unknown)?;
            let disabled = done.as_ref().is_ok_and(|d| d.status != 202);
            let allowed: &[u16] = if disabled { &[400, 405] } else { &[404] };
            ex.expect_status(allowed).map(|_| ())
        },
    );
    ctx.check(
        "delete.blob.unknown.code",
        "that 404 carries BLOB_UNKNOWN",
        &spec::X_ERROR_CODE,
        || {
            need(&unknown)?
                .expect_error(&[404], &["BLOB_UNKNOWN"])
                .map(|_| ())
        },
    );
}
