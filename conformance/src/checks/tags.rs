//! Tag listing: content and order, `n`, `Link` pagination, `last`, `n=0`,
//! and an unknown repository.

use serde_json::Value;

use super::{need, Ctx};
use crate::api::{next_link, Res};
use crate::client::Client;
use crate::exchange::Exchange;
use crate::report::{ensure, Failure, Feature};
use crate::spec;

/// Upper bound on pages followed, so a looping Link can't hang the run.
pub const MAX_PAGES: usize = 500;

/// The strings of a required JSON array field.
pub fn string_list(ex: &Exchange, field: &str) -> Res<Vec<String>> {
    let v = ex.json()?;
    let Some(items) = v.get(field).and_then(Value::as_array) else {
        return Err(ex.fail(format!(
            "a \"{field}\" array in the body, got {}",
            v.get(field).map_or("nothing".to_owned(), Value::to_string)
        )));
    };
    items
        .iter()
        .map(|t| {
            t.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ex.fail(format!("\"{field}\" to contain only strings")))
        })
        .collect()
}

/// Follows `Link: <..>; rel="next"` from a first page, concatenating
/// `field`; each `Link` must parse as RFC 5988 with rel="next".
pub fn walk(c: &Client, first: Exchange, field: &str) -> Res<Vec<String>> {
    let mut ex = first;
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        ex.expect_status(&[200])?;
        all.extend(string_list(&ex, field)?);
        let link = match (ex.header("link"), next_link(&ex)) {
            (None, _) => return Ok(all),
            (Some(raw), None) => {
                return Err(ex.fail(format!("Link {raw:?} to be `<url>; rel=\"next\"`")))
            }
            (Some(_), Some(l)) => l,
        };
        let url = c
            .resolve(&ex, &link)
            .ok_or_else(|| ex.fail(format!("Link target {link:?} to be a resolvable URL")))?;
        ex = c.get(url)?;
    }
    Err(ex.fail(format!("pagination to end within {MAX_PAGES} pages")))
}

/// Lexical order as the spec defines it: case-insensitive.
pub fn is_sorted(items: &[String]) -> bool {
    items
        .windows(2)
        .all(|w| w[0].to_lowercase() <= w[1].to_lowercase())
}

pub fn run(ctx: &Ctx) {
    let c = &ctx.client;
    let list = |params: &[(&str, &str)]| -> Res<Exchange> {
        let t = ctx.tags_repo()?;
        c.tags_list(&t.repo, params)
    };

    let full = list(&[]);
    ctx.check(
        "tags.list",
        "tags/list answers 200 with {\"name\": <repository>, \"tags\": [every tag]}",
        &spec::TAGS_200,
        || {
            let t = ctx.tags_repo()?;
            let ex = need(&full)?;
            ex.expect_status(&[200])?;
            let name = ex.json()?.get("name").cloned().unwrap_or(Value::Null);
            ex.ensure(name == t.repo.as_str(), || {
                format!("\"name\": {:?}, got {name}", t.repo)
            })?;
            let mut got = string_list(ex, "tags")?;
            got.sort();
            ex.ensure(got == t.tags, || format!("tags {:?}, got {got:?}", t.tags))
                .map(|_| ())
        },
    );
    ctx.check(
        "tags.order",
        "the tags are in lexical order",
        &spec::TAGS_ORDER,
        || {
            let ex = need(&full)?;
            ex.expect_status(&[200])?;
            let got = string_list(ex, "tags")?;
            ex.ensure(is_sorted(&got), || {
                format!("tags in lexical order, got {got:?}")
            })
            .map(|_| ())
        },
    );

    let page = list(&[("n", "2")]);
    ctx.check(
        "tags.n",
        "tags/list?n=2 of five tags answers the first 2 (fewer only with a Link)",
        &spec::TAGS_N,
        || {
            let t = ctx.tags_repo()?;
            let ex = need(&page)?;
            ex.expect_status(&[200])?;
            let got = string_list(ex, "tags")?;
            let linked = ex.header("link").is_some();
            let count_ok = got.len() == 2 || (got.len() < 2 && linked);
            ex.ensure(count_ok, || {
                format!(
                    "2 tags (or fewer with a Link header), got {} {got:?}{}",
                    got.len(),
                    if linked {
                        " with a Link"
                    } else {
                        " and no Link"
                    }
                )
            })?;
            ex.ensure(got == t.tags[..got.len()], || {
                format!("the start of {:?}, got {got:?}", t.tags)
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "tags.link",
        "that page has a Link to the rest",
        &spec::TAGS_LINK_MAY,
        || {
            let t = ctx.tags_repo()?;
            let ex = need(&page)?;
            ex.expect_status(&[200])?;
            if string_list(ex, "tags")?.len() >= t.tags.len() {
                return Err(Failure::not_applicable(
                    "the page held every tag: no more were available",
                ));
            }
            ex.ensure(ex.header("link").is_some(), || {
                "no Link header although more tags remain (clients page with last=)".into()
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "tags.link.walk",
        "a Link, when given, is RFC 5988 rel=\"next\", and following it yields every tag once, in order",
        &spec::TAGS_LINK,
        || {
            let t = ctx.tags_repo()?;
            let ex = need(&page)?;
            if ex.header("link").is_none() {
                return Err(Failure::not_offered(
                    Feature::TagsLink,
                    "no Link header (see tags.link)",
                ));
            }
            let all = walk(c, ex.clone(), "tags")?;
            ensure(all == t.tags, || {
                format!("pages to concatenate to {:?}, got {all:?}", t.tags)
            })
        },
    );
    ctx.check(
        "tags.n0",
        "tags/list?n=0 answers an empty list and no Link",
        &spec::TAGS_N0,
        || {
            let ex = list(&[("n", "0")])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "tags")?;
            ex.ensure(got.is_empty(), || format!("an empty list, got {got:?}"))?;
            ex.ensure(ex.header("link").is_none(), || "no Link header".into())
                .map(|_| ())
        },
    );
    ctx.check(
        "tags.last",
        "tags/list?n=2&last=<2nd tag> answers the next two tags",
        &spec::TAGS_LAST,
        || {
            let t = ctx.tags_repo()?;
            let ex = list(&[("n", "2"), ("last", &t.tags[1])])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "tags")?;
            let want = &t.tags[2..4];
            // Fewer than n only with a Link, as for tags.n.
            let ok = got == want
                || (got.len() < 2 && ex.header("link").is_some() && got == want[..got.len()]);
            ex.ensure(ok, || {
                format!("the tags after {:?}: {want:?}, got {got:?}", t.tags[1])
            })
            .map(|_| ())
        },
    );
    ctx.check(
        "tags.last-without-n",
        "tags/list?last=<2nd tag> (no n) answers every later tag",
        &spec::TAGS_LAST,
        || {
            let t = ctx.tags_repo()?;
            let ex = list(&[("last", &t.tags[1])])?;
            let got = walk(c, ex, "tags")?;
            let want = &t.tags[2..];
            ensure(got == want, || {
                format!("the tags after {:?}: {want:?}, got {got:?}", t.tags[1])
            })
        },
    );
    ctx.check(
        "tags.last-at-end",
        "tags/list?last=<last tag> answers an empty list",
        &spec::TAGS_LAST,
        || {
            let t = ctx.tags_repo()?;
            let last = t.tags.last().map(String::as_str).unwrap_or_default();
            let ex = list(&[("n", "5"), ("last", last)])?;
            ex.expect_status(&[200])?;
            let got = string_list(&ex, "tags")?;
            ex.ensure(got.is_empty(), || {
                format!("no tags after {last:?}, got {got:?}")
            })
            .map(|_| ())
        },
    );

    let unknown = c.tags_list(&ctx.repo("never-pushed"), &[]);
    ctx.check(
        "tags.unknown-repository",
        "tags/list of a repository that does not exist answers 404",
        &spec::TAGS_UNKNOWN_REPO,
        || need(&unknown)?.expect_status(&[404]).map(|_| ()),
    );
    ctx.check(
        "tags.unknown-repository.code",
        "that 404 carries NAME_UNKNOWN",
        &spec::X_ERROR_CODE,
        || {
            need(&unknown)?
                .expect_error(&[404], &["NAME_UNKNOWN"])
                .map(|_| ())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_need_an_array_of_strings() {
        let ok = Exchange::answered(200, &[], br#"{"name":"a","tags":["b","c"]}"#);
        assert_eq!(string_list(&ok, "tags").unwrap(), ["b", "c"]);
        for body in [
            &br#"{"name":"a","tags":null}"#[..],
            br#"{"name":"a"}"#,
            br#"{"name":"a","tags":[1]}"#,
            br#"{"name":"a","tags":"b"}"#,
        ] {
            assert!(string_list(&Exchange::answered(200, &[], body), "tags").is_err());
        }
    }

    #[test]
    fn lexical_order_ignores_case() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(is_sorted(&s(&["alpha", "Beta", "gamma"])));
        assert!(!is_sorted(&s(&["beta", "v1", "alpha"])));
        assert!(is_sorted(&[]));
    }
}
