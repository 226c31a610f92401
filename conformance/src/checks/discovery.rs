//! The API version check and content discovery: tag listing with
//! pagination, the Docker catalog, and the referrers API.

use serde_json::Value;

use super::{need, Ctx};
use crate::api::next_link;
use crate::client::{Client, Request};
use crate::exchange::Exchange;
use crate::oci;
use crate::report::{ensure, Failure};

const SEC_BASE: &str = "Determining support / GET /v2/";
const SEC_TAGS: &str = "Content discovery / Listing tags";
const SEC_CATALOG: &str = "Docker Registry v2 / Listing repositories";
const SEC_REFERRERS: &str = "Content discovery / Listing referrers";

/// Upper bound on pages followed, so a looping Link can't hang the run.
const MAX_PAGES: usize = 500;

pub fn run_base(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "base: GET /v2/ returns 200 (after auth if challenged)",
        SEC_BASE,
        || {
            let anon = c.send(Request::new("GET", c.url("/v2/")).anonymous())?;
            if anon.status == 401 {
                anon.expect_header("www-authenticate")?;
            } else {
                anon.expect_status(&[200])?;
            }
            c.get(c.url("/v2/"))?.expect_status(&[200]).map(|_| ())
        },
    );
    ctx.check(
        "base: GET /v2/ has Docker-Distribution-API-Version: registry/2.0",
        "Docker Registry v2 / API version check",
        || {
            c.get(c.url("/v2/"))?
                .expect_header_eq("docker-distribution-api-version", "registry/2.0")
                .map(|_| ())
        },
    );
}

pub fn run(ctx: &Ctx) {
    tags(ctx);
    catalog(ctx);
    referrers(ctx);
}

/// Strings of a JSON array field, failing with the exchange if absent.
fn string_list(ex: &Exchange, field: &str) -> Result<Vec<String>, Failure> {
    let v = ex.json()?;
    // A null or missing list is how some registries say "empty".
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ex.fail(format!("\"{field}\" to contain only strings")))
            })
            .collect(),
        Some(_) => Err(ex.fail(format!("\"{field}\" to be an array"))),
    }
}

/// Follows `Link: rel="next"` from a first page, concatenating `field`.
fn walk(c: &Client, first: Exchange, field: &str) -> Result<Vec<String>, Failure> {
    let mut ex = first;
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        ex.expect_status(&[200])?;
        all.extend(string_list(&ex, field)?);
        let Some(link) = next_link(&ex) else {
            return Ok(all);
        };
        let url = c
            .resolve(&link)
            .ok_or_else(|| ex.fail(format!("Link target {link:?} to be a resolvable URL")))?;
        ex = c.get(url)?;
    }
    Err(ex.fail(format!("pagination to end within {MAX_PAGES} pages")))
}

fn is_sorted(items: &[String]) -> bool {
    items.windows(2).all(|w| w[0] <= w[1])
}

fn tags(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "discovery: tags/list returns 200 with name and all tags",
        SEC_TAGS,
        || {
            let t = ctx.tags_repo()?;
            let ex = c.tags_list(&t.repo, &[])?;
            ex.expect_status(&[200])?;
            let name = ex.json()?.get("name").cloned().unwrap_or(Value::Null);
            ex.ensure(name == t.repo.as_str(), || {
                format!("\"name\": {:?}, got {name}", t.repo)
            })
            .map(|_| ())?;
            let mut got = string_list(&ex, "tags")?;
            got.sort();
            ex.ensure(got == t.tags, || format!("tags {:?}, got {got:?}", t.tags))
                .map(|_| ())
        },
    );
    ctx.check("discovery: tags/list is sorted lexically", SEC_TAGS, || {
        let t = ctx.tags_repo()?;
        let ex = c.tags_list(&t.repo, &[])?;
        ex.expect_status(&[200])?;
        let got = string_list(&ex, "tags")?;
        ex.ensure(is_sorted(&got), || format!("sorted tags, got {got:?}"))
            .map(|_| ())
    });
    ctx.check(
        "discovery: tags/list?n=2 returns at most 2 tags and a Link rel=\"next\" header",
        SEC_TAGS,
        || {
            let t = ctx.tags_repo()?;
            let ex = c.tags_list(&t.repo, &[("n", "2")])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "tags")?;
            let prefix = !got.is_empty() && got.len() <= 2 && got == t.tags[..got.len()];
            ex.ensure(prefix, || {
                format!("1-2 tags from the start of {:?}, got {got:?}", t.tags)
            })
            .map(|_| ())?;
            next_link(&ex)
                .map(|_| ())
                .ok_or_else(|| ex.fail("a Link header with rel=\"next\""))
        },
    );
    ctx.check(
        "discovery: following tags/list Link headers yields the full list",
        SEC_TAGS,
        || {
            let t = ctx.tags_repo()?;
            let all = walk(c, c.tags_list(&t.repo, &[("n", "2")])?, "tags")?;
            ensure(all == t.tags, || {
                format!("pages to concatenate to {:?}, got {all:?}", t.tags)
            })
        },
    );
    ctx.check(
        "discovery: tags/list?last= returns only later tags",
        SEC_TAGS,
        || {
            let t = ctx.tags_repo()?;
            let ex = c.tags_list(&t.repo, &[("n", "10"), ("last", &t.tags[1])])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "tags")?;
            let want = &t.tags[2..];
            ex.ensure(got == want, || {
                format!("tags after {:?}: {want:?}, got {got:?}", t.tags[1])
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "discovery: tags/list of an unknown repository returns 404 NAME_UNKNOWN",
        SEC_TAGS,
        || {
            c.tags_list(&ctx.repo("never-pushed"), &[])?
                .expect_error(&[404], &["NAME_UNKNOWN"])
                .map(|_| ())
        },
    );
}

fn catalog(ctx: &Ctx) {
    let c = &ctx.client;

    let listed = ctx.step(
        "discovery: _catalog returns 200 with repositories",
        SEC_CATALOG,
        || {
            ctx.tags_repo()?; // make sure at least two repositories exist
            ctx.image()?;
            walk(c, c.catalog(&[])?, "repositories")
        },
    );
    ctx.check(
        "discovery: _catalog contains this run's repositories",
        SEC_CATALOG,
        || {
            let all = need(&listed)?;
            for r in [ctx.repo("app"), ctx.repo("tags")] {
                ensure(all.contains(&r), || format!("catalog to contain {r}"))?;
            }
            Ok(())
        },
    );
    ctx.check("discovery: _catalog is sorted", SEC_CATALOG, || {
        let all = need(&listed)?;
        ensure(is_sorted(all), || {
            "repositories in lexical order across pages".into()
        })
    });
    ctx.check(
        "discovery: _catalog?n=1 returns one repository and a Link header",
        SEC_CATALOG,
        || {
            ctx.tags_repo()?;
            let ex = c.catalog(&[("n", "1")])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "repositories")?;
            ex.ensure(got.len() == 1, || {
                format!("exactly 1 repository, got {got:?}")
            })
            .map(|_| ())?;
            next_link(&ex)
                .map(|_| ())
                .ok_or_else(|| ex.fail("a Link header with rel=\"next\""))
        },
    );
    ctx.check(
        "discovery: _catalog walk starting at last=<run prefix> finds this run's repository",
        SEC_CATALOG,
        || {
            ctx.image()?;
            // Our repositories sort right after the bare run root.
            let first = c.catalog(&[("n", "2"), ("last", &ctx.root)])?;
            let all = walk(c, first, "repositories")?;
            let app = ctx.repo("app");
            ensure(all.contains(&app), || {
                format!("{app} in the listing after {}", ctx.root)
            })?;
            ensure(all.iter().all(|r| r.as_str() > ctx.root.as_str()), || {
                format!("only repositories after {}", ctx.root)
            })
        },
    );
}

/// Entries of a referrers response, after checking it's an OCI index.
pub(super) fn referrer_entries(ex: &Exchange) -> Result<Vec<Value>, Failure> {
    ex.expect_status(&[200])?
        .expect_content_type(oci::OCI_INDEX)?;
    let v = ex.json()?;
    v.get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ex.fail("an image index with a \"manifests\" array"))
}

pub(super) fn find_digest<'a>(entries: &'a [Value], digest: &str) -> Option<&'a Value> {
    entries.iter().find(|e| e["digest"] == digest)
}

fn referrers(ctx: &Ctx) {
    let c = &ctx.client;

    ctx.check(
        "discovery: referrers returns 200 with Content-Type OCI image index",
        SEC_REFERRERS,
        || {
            let r = ctx.referrers()?;
            let ex = c.referrers(&ctx.repo("app"), &r.subject, &[])?;
            referrer_entries(&ex).map(|_| ())
        },
    );
    ctx.check(
        "discovery: referrers index lists the pushed referrers",
        SEC_REFERRERS,
        || {
            let r = ctx.referrers()?;
            let ex = c.referrers(&ctx.repo("app"), &r.subject, &[])?;
            let entries = referrer_entries(&ex)?;
            for bytes in [&r.sbom, &r.sig] {
                let d = oci::sha256(bytes);
                find_digest(&entries, &d).ok_or_else(|| ex.fail(format!("an entry for {d}")))?;
            }
            Ok(())
        },
    );
    ctx.check(
        "discovery: referrer descriptor has mediaType, size, artifactType and annotations",
        SEC_REFERRERS,
        || {
            let r = ctx.referrers()?;
            let ex = c.referrers(&ctx.repo("app"), &r.subject, &[])?;
            let entries = referrer_entries(&ex)?;
            let d = oci::sha256(&r.sbom);
            let e =
                find_digest(&entries, &d).ok_or_else(|| ex.fail(format!("an entry for {d}")))?;
            let checks = [
                ("mediaType", Value::from(oci::OCI_MANIFEST)),
                ("size", Value::from(r.sbom.len())),
                ("artifactType", Value::from(oci::ARTIFACT_SBOM)),
                ("annotations", r.sbom_annotations.clone()),
            ];
            for (field, want) in checks {
                ex.ensure(e[field] == want, || {
                    format!("{field} = {want}, got {}", e[field])
                })
                .map(|_| ())?;
            }
            Ok(())
        },
    );
    ctx.check(
        "discovery: referrers ?artifactType= filters and sets OCI-Filters-Applied",
        SEC_REFERRERS,
        || {
            let r = ctx.referrers()?;
            let params = [("artifactType", oci::ARTIFACT_SIG)];
            let ex = c.referrers(&ctx.repo("app"), &r.subject, &params)?;
            let entries = referrer_entries(&ex)?;
            ex.expect_header_eq("oci-filters-applied", "artifactType")?;
            let sig = oci::sha256(&r.sig);
            let only_sig = entries.len() == 1 && entries[0]["digest"] == sig.as_str();
            ex.ensure(only_sig, || {
                format!("exactly the {sig} referrer, got {} entries", entries.len())
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "discovery: referrers of a manifest without referrers returns an empty index",
        SEC_REFERRERS,
        || {
            let t = ctx.tags_repo()?;
            let ex = c.referrers(&t.repo, &t.manifest_digest, &[])?;
            let entries = referrer_entries(&ex)?;
            ex.ensure(entries.is_empty(), || {
                format!("no entries, got {}", entries.len())
            })
            .map(|_| ())
        },
    );
}
