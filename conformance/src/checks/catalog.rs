//! The Docker catalog (`/v2/_catalog`), an extra: the OCI spec does not
//! define it. Only this run's repositories are read: pages start at `last=`
//! just before them and the walk stops once past them, so the checks do not
//! depend on (or read all of) what else the registry holds.

use super::fixtures::push_artifact;
use super::tags::{is_sorted, string_list, MAX_PAGES};
use super::{need, prep, Ctx};
use crate::api::{next_link, Res};
use crate::oci;
use crate::report::ensure;
use crate::spec;

const SEED_CATALOG: u64 = 4_000;

pub fn run(ctx: &Ctx) {
    let c = &ctx.client;
    // `<root>/catalog` is not a repository; its children are. Nothing else
    // of this run sorts between them ("catalog-x" would: no group uses it).
    let parent = ctx.repo("catalog");
    let repos: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|l| format!("{parent}/{l}"))
        .collect();
    let pushed = prep(
        "push of three repositories",
        (|| -> Res<()> {
            for (i, r) in repos.iter().enumerate() {
                push_artifact(
                    c,
                    r,
                    Some("v1"),
                    oci::ARTIFACT_SIG,
                    None,
                    None,
                    SEED_CATALOG + i as u64,
                )?;
            }
            Ok(())
        })(),
    );

    let first = need(&pushed).and_then(|_| c.catalog(&[("n", "2"), ("last", &parent)]));
    ctx.check(
        "catalog.page",
        "_catalog?n=2&last=<before this run's repositories> answers the next two and a Link",
        &spec::X_CATALOG,
        || {
            let ex = need(&first)?;
            ex.expect_status(&[200])?;
            let got = string_list(ex, "repositories")?;
            ex.ensure(got == repos[..2], || {
                format!("{:?}, got {got:?}", &repos[..2])
            })?;
            next_link(ex)
                .map(|_| ())
                .ok_or_else(|| ex.fail("a Link header with rel=\"next\""))
        },
    );
    ctx.check(
        "catalog.walk",
        "following the Links continues in lexical order with the third repository",
        &spec::X_CATALOG,
        || {
            let mut ex = need(&first)?.clone();
            let mut seen = Vec::new();
            // Stop once past this run's repositories.
            for _ in 0..MAX_PAGES {
                ex.expect_status(&[200])?;
                let page = string_list(&ex, "repositories")?;
                let past = page.iter().any(|r| !r.starts_with(&format!("{parent}/")));
                seen.extend(
                    page.into_iter()
                        .filter(|r| r.starts_with(&format!("{parent}/"))),
                );
                let next = next_link(&ex);
                match next {
                    Some(link) if !past => {
                        let url = c.resolve(&ex, &link).ok_or_else(|| {
                            ex.fail(format!("Link target {link:?} to be a resolvable URL"))
                        })?;
                        ex = c.get(url)?;
                    }
                    _ => break,
                }
            }
            ensure(seen == repos, || {
                format!("{repos:?} across the pages, got {seen:?}")
            })?;
            ensure(is_sorted(&seen), || "lexical order".into())
        },
    );
    ctx.check(
        "catalog.past-end",
        "_catalog?last=<a name after every possible name> answers an empty list and no Link",
        &spec::X_CATALOG,
        || {
            // Names are [a-z0-9._/-], at most 255 characters: none sorts
            // after 255 z's.
            let ex = c.catalog(&[("n", "10"), ("last", &"z".repeat(255))])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "repositories")?;
            ex.ensure(got.is_empty(), || format!("an empty list, got {got:?}"))?;
            ex.ensure(ex.header("link").is_none(), || "no Link header".into())
                .map(|_| ())
        },
    );
}
