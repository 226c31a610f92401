//! The referrers API and `OCI-Subject`. A registry without the API (its
//! endpoint answers 404 and it sends no `OCI-Subject`) is allowed: clients
//! fall back to the tag schema. That is one SHOULD warning, and the checks
//! of the API are then not applicable.

use std::collections::HashSet;

use serde_json::Value;

use super::fixtures::Referrer;
use super::{need, prep, Ctx};
use crate::api::{next_link, Res};
use crate::exchange::Exchange;
use crate::oci::{self, Blob};
use crate::report::{ensure, Failure, Feature};
use crate::spec;

/// Entries of a referrers response, after checking it is an OCI index.
pub fn referrer_entries(ex: &Exchange) -> Res<Vec<Value>> {
    ex.expect_status(&[200])?
        .expect_content_type(oci::OCI_INDEX)?;
    let v = ex.json()?;
    v.get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ex.fail("an image index with a \"manifests\" array"))
}

pub fn find_digest<'a>(entries: &'a [Value], digest: &str) -> Option<&'a Value> {
    entries.iter().find(|e| e["digest"] == digest)
}

/// Every entry across the `Link` pages starting at `first`.
fn all_pages(ctx: &Ctx, first: &Exchange) -> Res<Vec<Value>> {
    let c = &ctx.client;
    let mut ex = first.clone();
    let mut all = Vec::new();
    for _ in 0..super::tags::MAX_PAGES {
        all.extend(referrer_entries(&ex)?);
        let Some(link) = next_link(&ex) else {
            return Ok(all);
        };
        let url = c
            .resolve(&ex, &link)
            .ok_or_else(|| ex.fail(format!("Link target {link:?} to be a resolvable URL")))?;
        ex = c.get(url)?;
    }
    Err(ex.fail("pagination to end"))
}

/// Whether the registry offers the referrers API: its endpoint does not
/// 404, or it acknowledged a `subject` with `OCI-Subject`.
fn supported(probe: &Exchange, puts: &[&Exchange]) -> bool {
    probe.status != 404 || puts.iter().any(|p| p.header("oci-subject").is_some())
}

pub fn run(ctx: &Ctx) {
    let c = &ctx.client;
    let probe: Res<Exchange> = (|| {
        let r = ctx.referrers()?;
        c.referrers(&r.repo, &r.subject.digest, &[])
    })();
    let offered: Res<bool> = (|| {
        let r = ctx.referrers()?;
        let puts: Vec<&Exchange> = r.referrers.iter().map(|x| &x.put).collect();
        Ok(supported(need(&probe)?, &puts))
    })();
    // Gate for the checks of the API itself.
    let api = || -> Res<()> {
        if *need(&offered)? {
            Ok(())
        } else {
            Err(Failure::not_offered(
                Feature::Referrers,
                "the registry does not offer the referrers API (see referrers.supported)",
            ))
        }
    };

    ctx.check(
        "referrers.supported",
        "the referrers API is offered (GET /v2/<name>/referrers/<digest> does not 404)",
        &spec::REFERRERS_SUPPORT,
        || {
            let ex = need(&probe)?;
            ex.ensure(*need(&offered)?, || {
                "no referrers API: 404 and no OCI-Subject (clients fall back to the \
                 referrers tag schema)"
                    .into()
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "referrers.no-404",
        "a registry that sends OCI-Subject does not answer 404 on the referrers API",
        &spec::REFERRERS_NO_404,
        || {
            api()?;
            need(&probe)?.expect_status(&[200]).map(|_| ())
        },
    );
    ctx.check(
        "referrers.oci-subject",
        "image manifests with a subject get OCI-Subject: <subject digest>",
        &spec::OCI_SUBJECT,
        || {
            api()?;
            let r = ctx.referrers()?;
            for x in r
                .referrers
                .iter()
                .filter(|x| x.media_type == oci::OCI_MANIFEST)
            {
                x.put.expect_header_eq("oci-subject", &r.subject.digest)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "referrers.oci-subject.index",
        "indexes with a subject get OCI-Subject too",
        &spec::X_OCI_SUBJECT_INDEX,
        || {
            api()?;
            let r = ctx.referrers()?;
            for x in r
                .referrers
                .iter()
                .filter(|x| x.media_type == oci::OCI_INDEX)
            {
                x.put.expect_header_eq("oci-subject", &r.subject.digest)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "referrers.index",
        "the referrers of a manifest: 200, Content-Type OCI image index, a manifests array",
        &spec::REFERRERS_200,
        || {
            api()?;
            referrer_entries(need(&probe)?).map(|_| ())
        },
    );
    let listed: Res<Vec<Value>> = api().and_then(|_| all_pages(ctx, need(&probe)?));
    ctx.check(
        "referrers.list",
        "the listing holds each referrer (manifests and indexes) once, and nothing else",
        &spec::REFERRERS_LIST,
        || {
            let r = ctx.referrers()?;
            let entries = need(&listed)?;
            let want: HashSet<&str> = r.referrers.iter().map(|x| x.digest.as_str()).collect();
            let got: Vec<&str> = entries
                .iter()
                .filter_map(|e| e["digest"].as_str())
                .collect();
            let unique: HashSet<&str> = got.iter().copied().collect();
            ensure(got.len() == unique.len() && unique == want, || {
                format!("exactly {want:?}, got {got:?}")
            })
        },
    );
    let entry = |name: &str| -> Res<(Value, &Referrer)> {
        let r = ctx.referrers()?;
        let x = r.get(name);
        let entries = need(&listed)?;
        let e = find_digest(entries, &x.digest).cloned().ok_or_else(|| {
            Failure::new(format!("an entry for the {name} referrer {}", x.digest))
        })?;
        Ok((e, x))
    };
    ctx.check(
        "referrers.descriptor",
        "each entry has the referrer's mediaType, size, artifactType and annotations",
        &spec::REFERRERS_ARTIFACT_TYPE,
        || {
            for name in ["sbom", "signature", "index-typed"] {
                let (e, x) = entry(name)?;
                descriptor_matches(&e, x)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "referrers.artifact-type-from-config",
        "a manifest without artifactType is listed with its config's media type",
        &spec::REFERRERS_FALLBACK,
        || {
            let (e, x) = entry("config-typed")?;
            descriptor_matches(&e, x)
        },
    );
    ctx.check(
        "referrers.index-without-type",
        "an index without artifactType is listed without one",
        &spec::REFERRERS_INDEX_NO_TYPE,
        || {
            let (e, x) = entry("index-untyped")?;
            descriptor_matches(&e, x)
        },
    );
    ctx.check(
        "referrers.link",
        "asked for pages of 2 (?n=2), the Link pages together hold every referrer once",
        &spec::REFERRERS_LINK,
        || {
            api()?;
            let r = ctx.referrers()?;
            let first = c.referrers(&r.repo, &r.subject.digest, &[("n", "2")])?;
            let got = all_pages(ctx, &first)?;
            let digests: Vec<&str> = got.iter().filter_map(|e| e["digest"].as_str()).collect();
            let unique: HashSet<&str> = digests.iter().copied().collect();
            let want: HashSet<&str> = r.referrers.iter().map(|x| x.digest.as_str()).collect();
            ensure(digests.len() == unique.len() && unique == want, || {
                format!("every referrer once across the pages, got {digests:?}")
            })
        },
    );
    filters(ctx, &api);
    unknown_and_invalid(ctx, &api);
    missing_subject(ctx, &api);
}

/// The entry carries what the referrers API must copy from the manifest.
fn descriptor_matches(e: &Value, x: &Referrer) -> Res<()> {
    let mut wrong = Vec::new();
    if e["mediaType"] != x.media_type {
        wrong.push(format!(
            "mediaType {} (want {})",
            e["mediaType"], x.media_type
        ));
    }
    if e["size"] != x.bytes.len() {
        wrong.push(format!("size {} (want {})", e["size"], x.bytes.len()));
    }
    match x.artifact_type {
        Some(t) if e["artifactType"] != t => {
            wrong.push(format!("artifactType {} (want {t})", e["artifactType"]))
        }
        None if e.get("artifactType").is_some() => {
            wrong.push(format!("artifactType {} (want none)", e["artifactType"]))
        }
        _ => {}
    }
    let empty = Value::Object(Default::default());
    let got_ann = e.get("annotations").unwrap_or(&empty);
    let want_ann = x.annotations.as_ref().unwrap_or(&empty);
    if got_ann != want_ann {
        wrong.push(format!("annotations {got_ann} (want {want_ann})"));
    }
    ensure(wrong.is_empty(), || {
        format!("the {} referrer's entry: {}", x.name, wrong.join("; "))
    })
}

fn filters(ctx: &Ctx, api: &dyn Fn() -> Res<()>) {
    let c = &ctx.client;
    let ask = |t: &str| -> Res<Exchange> {
        api()?;
        let r = ctx.referrers()?;
        c.referrers(&r.repo, &r.subject.digest, &[("artifactType", t)])
    };
    let sig = ask(oci::ARTIFACT_SIG);
    let sbom = ask(oci::ARTIFACT_SBOM);
    ctx.check(
        "referrers.filter",
        "?artifactType= filters the listing and says so with OCI-Filters-Applied",
        &spec::REFERRERS_FILTER,
        || {
            let ex = need(&sig)?;
            referrer_entries(ex)?;
            ex.ensure(ex.header("oci-filters-applied").is_some(), || {
                "no OCI-Filters-Applied: the filter is not applied".into()
            })
            .map(|_| ())
        },
    );
    for (id, t, asked) in [
        ("referrers.filter.result", oci::ARTIFACT_SIG, &sig),
        ("referrers.filter.plus", oci::ARTIFACT_SBOM, &sbom),
    ] {
        ctx.check(
            id,
            &format!("?artifactType={t} (percent-encoded) answers exactly its referrers with OCI-Filters-Applied: artifactType, or all of them without the header"),
            &spec::REFERRERS_FILTER_HEADER,
            || {
                let r = ctx.referrers()?;
                let ex = need(asked)?;
                let entries = referrer_entries(ex)?;
                let mut got: Vec<&str> =
                    entries.iter().filter_map(|e| e["digest"].as_str()).collect();
                got.sort();
                let applied = ex.header("oci-filters-applied");
                let pick = |all: bool| {
                    let mut v: Vec<&str> = r
                        .referrers
                        .iter()
                        .filter(|x| all || x.artifact_type == Some(t))
                        .map(|x| x.digest.as_str())
                        .collect();
                    v.sort();
                    v
                };
                match applied {
                    Some(h) => {
                        ex.ensure(h.split(',').any(|f| f.trim() == "artifactType"), || {
                            format!("OCI-Filters-Applied to name artifactType, got {h:?}")
                        })?;
                        let want = pick(false);
                        ex.ensure(got == want, || {
                            format!("only the {t} referrers {want:?}, got {got:?}")
                        })
                        .map(|_| ())
                    }
                    None => {
                        let want = pick(true);
                        ex.ensure(got == want, || {
                            format!(
                                "without OCI-Filters-Applied, the unfiltered list {want:?}; got {got:?} (filtered without saying so?)"
                            )
                        })
                        .map(|_| ())
                    }
                }
            },
        );
    }
}

fn unknown_and_invalid(ctx: &Ctx, api: &dyn Fn() -> Res<()>) {
    let c = &ctx.client;
    ctx.check(
        "referrers.unknown-digest",
        "the referrers of a digest nothing refers to: 200 and an empty index, not 404",
        &spec::REFERRERS_EMPTY,
        || {
            api()?;
            let r = ctx.referrers()?;
            let unknown = oci::sha256(b"conformance: nothing refers to this");
            let ex = c.referrers(&r.repo, &unknown, &[])?;
            let entries = referrer_entries(&ex)?;
            ex.ensure(entries.is_empty(), || {
                format!("no entries, got {}", entries.len())
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "referrers.bad-digest",
        "the referrers of sha256:xyz (not a digest) answer 400",
        &spec::REFERRERS_BAD_DIGEST,
        || {
            api()?;
            let r = ctx.referrers()?;
            c.referrers(&r.repo, "sha256:xyz", &[])?
                .expect_status(&[400])
                .map(|_| ())
        },
    );
}

fn missing_subject(ctx: &Ctx, api: &dyn Fn() -> Res<()>) {
    let c = &ctx.client;
    let repo = ctx.repo("referrers-orphan");
    let missing = oci::manifest_descriptor(
        oci::OCI_MANIFEST,
        format!(
            "{{\"conformance\":\"never pushed\",\"run\":\"{}\"}}",
            ctx.root
        )
        .as_bytes(),
    );
    let missing_digest = missing["digest"].as_str().unwrap_or_default().to_owned();
    let pushed = ctx.step(
        "push.manifest.subject-missing",
        "a manifest whose subject does not exist (yet) is accepted (201)",
        &spec::SUBJECT_ACCEPT,
        || {
            let empty = Blob::empty_config();
            let layer = Blob::new("text/plain", oci::random_bytes(2_100, 512));
            for b in [&empty, &layer] {
                prep("blob push", c.push_blob(&repo, &b.data, &b.digest))?;
            }
            let bytes = oci::artifact_manifest(oci::ARTIFACT_SIG, &layer, Some(missing), None);
            let digest = oci::sha256(&bytes);
            c.put_manifest(&repo, &digest, oci::OCI_MANIFEST, &bytes)?
                .expect_status(&[201])?;
            Ok(digest)
        },
    );
    ctx.check(
        "referrers.subject-missing",
        "that manifest is listed among the referrers of the missing subject",
        &spec::REFERRERS_LIST,
        || {
            let digest = need(&pushed)?;
            api()?;
            let ex = c.referrers(&repo, &missing_digest, &[])?;
            let entries = referrer_entries(&ex)?;
            ex.ensure(
                entries.len() == 1 && find_digest(&entries, digest).is_some(),
                || format!("exactly {digest}, got {entries:?}"),
            )
            .map(|_| ())
        },
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn referrer(artifact_type: Option<&'static str>, annotations: Option<Value>) -> Referrer {
        Referrer {
            name: "r",
            media_type: oci::OCI_INDEX,
            bytes: b"{}".to_vec(),
            digest: oci::sha256(b"{}"),
            artifact_type,
            annotations,
            put: Exchange::answered(201, &[], b""),
        }
    }

    #[test]
    fn descriptors_must_copy_type_and_annotations() {
        let ann = json!({"k": "v"});
        let typed = referrer(Some("application/x"), Some(ann.clone()));
        let entry = json!({"mediaType": oci::OCI_INDEX, "size": 2, "artifactType": "application/x", "annotations": ann});
        assert!(descriptor_matches(&entry, &typed).is_ok());
        let mut wrong = entry.clone();
        wrong["artifactType"] = json!("application/y");
        assert!(descriptor_matches(&wrong, &typed).is_err());
        let mut bare = entry.clone();
        bare.as_object_mut().unwrap().remove("annotations");
        assert!(descriptor_matches(&bare, &typed).is_err());

        // An index without artifactType must be listed without one.
        let untyped = referrer(None, None);
        let omitted = json!({"mediaType": oci::OCI_INDEX, "size": 2});
        assert!(descriptor_matches(&omitted, &untyped).is_ok());
        let invented = json!({"mediaType": oci::OCI_INDEX, "size": 2, "artifactType": ""});
        assert!(descriptor_matches(&invented, &untyped).is_err());
    }

    #[test]
    fn support_is_the_endpoint_or_oci_subject() {
        let missing = Exchange::answered(404, &[], b"404 page not found");
        let plain = Exchange::answered(201, &[], b"");
        let acked = Exchange::answered(201, &[("OCI-Subject", "sha256:00")], b"");
        assert!(!supported(&missing, &[&plain]));
        assert!(supported(&missing, &[&plain, &acked]));
        assert!(supported(&Exchange::answered(200, &[], b"{}"), &[]));
    }
}
