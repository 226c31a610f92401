//! Bad input: names and tags outside the grammar, a malformed digest,
//! manifests that reference unknown content, malformed manifests, a digest
//! that does not match the body. The requests go out first, all into one
//! repository holding a good image; the checks then judge the answers, and
//! the last one that the good image is intact. Also the format of every 4xx
//! body of the run.

use serde_json::{json, Map, Value};

use super::fixtures::{push_small, Image};
use super::{need, Ctx};
use crate::api::Res;
use crate::client::Request;
use crate::exchange::Exchange;
use crate::oci::{self, Blob};
use crate::report::{Failure, Feature};
use crate::spec;

/// Outside the name grammar: uppercase, an empty component, a leading
/// separator.
const INVALID_NAMES: [&str; 3] = ["Upper/Case", "a//b", "-lead"];

/// The answers to the bad requests, and what was sent.
struct Sent {
    good: Image,
    names: Vec<Exchange>,
    tags: Vec<Exchange>,
    digest: Exchange,
    unknown_blob: Refused,
    unknown_child: Refused,
    malformed: Refused,
    schema1: Refused,
    mismatch: Refused,
    tags_after: Exchange,
}

/// A manifest PUT expected to be refused: the bytes and the answer.
struct Refused {
    bytes: Vec<u8>,
    ex: Exchange,
}

impl Refused {
    fn accepted(&self) -> bool {
        (200..300).contains(&self.ex.status)
    }
}

fn not_accepted(ex: &Exchange, what: &str) -> Res<()> {
    ex.ensure(!(200..300).contains(&ex.status) && ex.status < 500, || {
        format!(
            "{what} to be refused with a 4xx (or redirected), got {}",
            ex.status
        )
    })
    .map(|_| ())
}

fn send(ctx: &Ctx) -> Res<Sent> {
    let c = &ctx.client;
    let repo = ctx.repo("errors");
    let good = push_small(c, &repo, "v1", 5_000)?;
    let put = |reference: &str, media_type: &str, bytes: Vec<u8>| -> Res<Refused> {
        let ex = c.put_manifest(&repo, reference, media_type, &bytes)?;
        Ok(Refused { bytes, ex })
    };

    let mut names = Vec::new();
    for name in INVALID_NAMES {
        names.push(c.get_manifest(name, "latest")?);
        names.push(c.post_upload(name, &[], b"")?);
    }
    let long_tag = "a".repeat(200);
    let mut tags = Vec::new();
    for tag in ["-bad", long_tag.as_str()] {
        tags.push(c.put_manifest(&repo, tag, &good.media_type, &good.manifest)?);
    }
    let digest = c.get_blob(&repo, "sha256:xyz")?;

    let ghost = Blob::new(oci::OCI_LAYER, oci::random_bytes(61, 1000));
    let bytes = oci::image_manifest(oci::OCI_MANIFEST, &good.config, &[&ghost], Map::new());
    let unknown_blob = put("ghost-layer", oci::OCI_MANIFEST, bytes)?;

    let ghost = oci::manifest_descriptor(oci::OCI_MANIFEST, b"{\"never\":\"pushed\"}");
    let entries = [
        (good.descriptor(), oci::platform("amd64")),
        (ghost, oci::platform("arm64")),
    ];
    let unknown_child = put(
        "ghost-index",
        oci::OCI_INDEX,
        oci::index(oci::OCI_INDEX, &entries),
    )?;

    let truncated = good.manifest[..good.manifest.len() / 2].to_vec();
    let malformed = put("malformed", oci::OCI_MANIFEST, truncated)?;

    let body = json!({
        "schemaVersion": 1,
        "name": repo,
        "tag": "schema1",
        "architecture": "amd64",
        "fsLayers": [{ "blobSum": good.layers[0].digest }],
        "history": [{ "v1Compatibility": "{\"id\":\"conformance\"}" }],
    });
    let schema1 = put(
        "schema1",
        oci::DOCKER_SCHEMA1,
        serde_json::to_vec(&body).expect("json"),
    )?;

    let claimed = oci::sha256(b"some other manifest");
    let mut extra = Map::new();
    extra.insert("annotations".into(), json!({ "conformance": "mismatch" }));
    let refs: Vec<&Blob> = good.layers.iter().collect();
    let bytes = oci::image_manifest(oci::OCI_MANIFEST, &good.config, &refs, extra);
    let mismatch = put(&claimed, oci::OCI_MANIFEST, bytes)?;

    let tags_after = c.tags_list(&repo, &[])?;
    Ok(Sent {
        good,
        names,
        tags,
        digest,
        unknown_blob,
        unknown_child,
        malformed,
        schema1,
        mismatch,
        tags_after,
    })
}

pub fn run(ctx: &Ctx) {
    let sent = send(ctx);
    let s = || need(&sent);
    names_tags_digest(ctx, &s);
    unknown_references(ctx, &s);
    bad_manifests(ctx, &s);
    intact(ctx, &s);
}

type Get<'a> = dyn Fn() -> Res<&'a Sent> + 'a;

fn names_tags_digest(ctx: &Ctx, s: &Get<'_>) {
    ctx.check(
        "errors.name",
        "manifest GET and upload POST for names outside the grammar are not accepted",
        &spec::NAME_GRAMMAR,
        || {
            for ex in &s()?.names {
                not_accepted(ex, "a request for an invalid repository name")?;
            }
            Ok(())
        },
    );
    ctx.check(
        "errors.name.code",
        "they answer 400 NAME_INVALID",
        &spec::X_ERROR_CODE,
        || {
            for ex in &s()?.names {
                ex.expect_error(&[400], &["NAME_INVALID"])?;
            }
            Ok(())
        },
    );
    ctx.check(
        "errors.tag",
        "manifest PUTs to tags outside the grammar (\"-bad\", 200 characters) are refused and create no tag",
        &spec::TAG_GRAMMAR,
        || {
            let sent = s()?;
            for ex in &sent.tags {
                not_accepted(ex, "a PUT to an invalid tag")?;
            }
            let ex = &sent.tags_after;
            let listed = super::tags::string_list(ex.expect_status(&[200])?, "tags")?;
            let bad: Vec<&String> = listed
                .iter()
                .filter(|t| t.as_str() == "-bad" || t.len() > 128)
                .collect();
            ex.ensure(bad.is_empty(), || format!("no invalid tags listed, got {bad:?}"))
                .map(|_| ())
        },
    );
    ctx.check(
        "errors.tag.code",
        "they answer 400 TAG_INVALID or MANIFEST_INVALID",
        &spec::X_ERROR_CODE,
        || {
            for ex in &s()?.tags {
                ex.expect_error(&[400], &["TAG_INVALID", "MANIFEST_INVALID"])?;
            }
            Ok(())
        },
    );
    ctx.check(
        "errors.digest",
        "a blob GET of sha256:xyz (not a digest) answers 400 or 404",
        &spec::DIGEST_SYNTAX,
        || s()?.digest.expect_status(&[400, 404]).map(|_| ()),
    );
    ctx.check(
        "errors.digest.code",
        "it answers 400 DIGEST_INVALID",
        &spec::X_ERROR_CODE,
        || {
            s()?.digest
                .expect_error(&[400], &["DIGEST_INVALID"])
                .map(|_| ())
        },
    );
}

fn tags_are_only_v1(ex: &Exchange) -> Res<()> {
    let got = super::tags::string_list(ex.expect_status(&[200])?, "tags")?;
    ex.ensure(got == ["v1"], || {
        format!("only the tag v1 in the repository, got {got:?}")
    })
    .map(|_| ())
}

fn unknown_references(ctx: &Ctx, s: &Get<'_>) {
    for (id, what, pick) in [
        (
            "push.manifest.unknown-blob",
            "a manifest whose layer was never pushed",
            (|x: &Sent| &x.unknown_blob) as fn(&Sent) -> &Refused,
        ),
        (
            "push.index.unknown-child",
            "an index listing a manifest that was never pushed",
            |x: &Sent| &x.unknown_child,
        ),
    ] {
        ctx.check(
            id,
            &format!("{what} is refused"),
            &spec::UNKNOWN_REF_MAY,
            || {
                let r = pick(s()?);
                r.ex.ensure(!r.accepted(), || format!("accepted it ({})", r.ex.status))
                    .map(|_| ())
            },
        );
        ctx.check(
            &format!("{id}.code"),
            "when refused, the answer carries MANIFEST_BLOB_UNKNOWN",
            &spec::UNKNOWN_REF_CODE,
            || {
                let r = pick(s()?);
                if r.accepted() {
                    return Err(Failure::not_offered(
                        Feature::UnknownRefRefusal,
                        "the registry accepted it",
                    ));
                }
                let ex = &r.ex;
                ex.ensure((400..500).contains(&ex.status), || {
                    format!("a 4xx refusal, got {}", ex.status)
                })?;
                let codes = ex.error_codes()?;
                ex.ensure(codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN"), || {
                    format!("a MANIFEST_BLOB_UNKNOWN error, got {}", codes.join(", "))
                })
                .map(|_| ())
            },
        );
    }
}

fn bad_manifests(ctx: &Ctx, s: &Get<'_>) {
    ctx.check(
        "errors.manifest.malformed",
        "truncated manifest JSON is refused",
        &spec::MANIFEST_IS_JSON,
        || not_accepted(&s()?.malformed.ex, "truncated JSON"),
    );
    ctx.check(
        "errors.manifest.malformed.code",
        "it answers 400 MANIFEST_INVALID",
        &spec::X_ERROR_CODE,
        || {
            s()?.malformed
                .ex
                .expect_error(&[400], &["MANIFEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors.manifest.schema1",
        "a Docker schema 1 manifest is refused with 400 MANIFEST_INVALID",
        &spec::X_SCHEMA1,
        || {
            s()?.schema1
                .ex
                .expect_error(&[400], &["MANIFEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors.manifest.digest-mismatch",
        "a manifest PUT to a digest its bytes do not hash to is refused",
        &spec::MANIFEST_DIGEST_REF,
        || not_accepted(&s()?.mismatch.ex, "a PUT to a digest of other bytes"),
    );
    ctx.check(
        "errors.manifest.digest-mismatch.code",
        "it answers 400 DIGEST_INVALID",
        &spec::X_ERROR_CODE,
        || {
            s()?.mismatch
                .ex
                .expect_error(&[400], &["DIGEST_INVALID"])
                .map(|_| ())
        },
    );
    ctx.check(
        "errors.manifest.not-stored",
        "refused manifests are not stored: their digests answer 404 and no tag was made",
        &spec::REJECTED_NOT_STORED,
        || {
            let sent = s()?;
            let img = &sent.good;
            for r in [
                &sent.unknown_blob,
                &sent.unknown_child,
                &sent.malformed,
                &sent.schema1,
                &sent.mismatch,
            ] {
                if r.accepted() {
                    continue;
                }
                ctx.client
                    .get_manifest(&img.repo, &oci::sha256(&r.bytes))?
                    .expect_status(&[404])?;
            }
            let refused = [
                &sent.unknown_blob,
                &sent.unknown_child,
                &sent.malformed,
                &sent.schema1,
            ];
            if refused.iter().all(|r| !r.accepted()) {
                tags_are_only_v1(&sent.tags_after)?;
            }
            Ok(())
        },
    );
}

fn intact(ctx: &Ctx, s: &Get<'_>) {
    let c = &ctx.client;
    ctx.check(
        "errors.intact",
        "after all of it, the good image in the same repository still pulls byte for byte",
        &spec::MANIFEST_GET,
        || {
            let img = &s()?.good;
            c.get_manifest(&img.repo, "v1")?
                .expect_status(&[200])?
                .expect_body_eq(&img.manifest)?;
            for b in img.blobs() {
                c.get_blob(&img.repo, &b.digest)?
                    .expect_status(&[200])?
                    .expect_body_eq(&b.data)?;
            }
            Ok(())
        },
    );
}

/// Judges every 4xx answer of the run, after drawing a set of its own: a
/// JSON body must be the spec's error format with the spec's codes.
pub fn error_bodies(ctx: &Ctx) {
    ctx.check(
        "errors.body-format",
        "every 4xx answer with a JSON body has the spec's error format and codes",
        &spec::ERROR_FORMAT,
        || {
            provoke_errors(ctx);
            let seen = ctx.client.client_errors();
            if seen.is_empty() {
                // Nothing judged is no pass: provoke_errors asks for 4xx.
                return Err(Failure::new("no 4xx answer in this run to judge"));
            }
            let mut bad: Vec<(&Exchange, String)> = Vec::new();
            // HEAD answers and empty bodies carry no body to judge.
            for ex in seen
                .iter()
                .filter(|ex| ex.method != "HEAD" && !ex.body.is_empty() && ex.is_json())
            {
                if let Err(why) = error_body(ex) {
                    bad.push((ex, why));
                }
            }
            let Some((first, _)) = bad.first() else {
                return Ok(());
            };
            let list: Vec<String> = bad
                .iter()
                .map(|(ex, why)| format!("{} {} -> {}: {why}", ex.method, ex.url, ex.status))
                .collect();
            Err(first.fail(format!(
                "the spec's error body on every 4xx; {} answer(s) differ:\n{}",
                bad.len(),
                list.join("\n")
            )))
        },
    );
}

/// Requests that draw 4xx answers of every kind, so the format check
/// judges them whichever checks ran before it. Their statuses are judged
/// elsewhere; transport errors only mean fewer bodies to look at.
fn provoke_errors(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("error-bodies");
    let unknown = oci::sha256(b"conformance: error bodies");
    let data = oci::random_bytes(6_000, 1024);
    let digest = oci::sha256(&data);
    let _ = c.push_blob(&repo, &data, &digest);
    let _ = c.get_blob(&repo, &unknown);
    let _ = c.get_blob(&repo, "sha256:xyz");
    let _ = c.get_manifest(&repo, "no-such-tag");
    let _ = c.get_manifest("Upper/Case", "latest");
    let _ = c.tags_list(&ctx.repo("never-pushed"), &[]);
    // `n` must be an integer; and a path under /v2/ that is no endpoint.
    let _ = c.tags_list(&repo, &[("n", "abc")]);
    let _ = c.get(c.url(&format!("/v2/{repo}/no-such-endpoint")));
    let _ = c.put_manifest(&repo, "bad", oci::OCI_MANIFEST, b"{\"schemaVersion\": 2,");
    let _ =
        c.send(Request::new("GET", c.blob_url(&repo, &digest)).header("Range", "bytes=5000-6000"));
    if let Ok(loc) = c.start_upload(&repo) {
        let _ = c.patch_chunk(&loc, 10, &data[..10]);
        let _ = c.put_upload(&loc, &unknown, b"");
    }
    if !ctx.no_delete {
        let _ = c.delete(c.blob_url(&repo, &unknown));
    }
}

/// What is wrong with one JSON 4xx body, if anything.
fn error_body(ex: &Exchange) -> Result<(), String> {
    let v: Value = serde_json::from_slice(&ex.body).map_err(|e| format!("not JSON ({e})"))?;
    let errors = v
        .get("errors")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("no non-empty \"errors\" array")?;
    for e in errors {
        match e.get("code").and_then(Value::as_str) {
            Some(code) if spec::ERROR_CODES.contains(&code) => {}
            Some(code) => return Err(format!("code {code:?} is not in the spec's table")),
            None => return Err("an error without a string \"code\"".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_must_use_the_spec_codes() {
        let ok = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"x","detail":{}}]}"#;
        assert_eq!(error_body(&Exchange::answered(404, &[], ok)), Ok(()));
        let legacy = br#"{"errors":[{"code":"TAG_INVALID"}]}"#;
        assert_eq!(error_body(&Exchange::answered(400, &[], legacy)), Ok(()));
        let other = br#"{"errors":[{"code":"RANGE_INVALID"}]}"#;
        assert!(error_body(&Exchange::answered(416, &[], other))
            .unwrap_err()
            .contains("RANGE_INVALID"));
        assert!(error_body(&Exchange::answered(400, &[], br#"{"errors":[]}"#)).is_err());
        assert!(error_body(&Exchange::answered(400, &[], br#"{"error":"x"}"#)).is_err());
        assert!(error_body(&Exchange::answered(400, &[], br#"{"errors":[{"code":5}]}"#)).is_err());
    }

    #[test]
    fn refusals_are_4xx_or_redirects() {
        for status in [301, 400, 404, 405] {
            assert!(not_accepted(&Exchange::answered(status, &[], b""), "x").is_ok());
        }
        for status in [200, 201, 202, 500] {
            assert!(not_accepted(&Exchange::answered(status, &[], b""), "x").is_err());
        }
    }
}
