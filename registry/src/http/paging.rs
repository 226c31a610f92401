//! Query strings and page cursors, one way for `/v2`, `/api/v1` and the web
//! view: `n` (page size) and `last` (the cursor), parsed and bounded here so
//! no caller does arithmetic on a client's number.

use crate::http::error::ApiError;
use axum::http::Uri;
use std::collections::HashMap;
use storage::ErrorCode;

/// Decoded query parameters (`+` and `%XX` decoded; the last value of a
/// repeated key wins).
pub type Query = HashMap<String, String>;

pub fn parse_query(uri: &Uri) -> Query {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// How a listing treats `n`.
#[derive(Debug, Clone, Copy)]
pub struct PageRules {
    /// Page size without `n`; `None`: everything.
    pub default: Option<u64>,
    /// Larger `n` are lowered to this.
    pub max: u64,
    /// Whether `n=0` is a valid (empty) page rather than an error.
    pub allow_zero: bool,
}

/// `/v2/<name>/tags/list`: everything unless asked; `n=0` is an empty page.
pub const TAGS: PageRules = PageRules {
    default: None,
    // Leaves room for the one extra row that tells whether a next page exists.
    max: i64::MAX as u64 - 1,
    allow_zero: true,
};

/// `/v2/_catalog`: capped so one request cannot dump every name at once.
pub const CATALOG: PageRules = PageRules {
    default: Some(1000),
    max: 1000,
    allow_zero: true,
};

/// `/api/v1` and the web view.
pub const BROWSE: PageRules = PageRules {
    default: Some(100),
    max: 1000,
    allow_zero: false,
};

/// A requested page: at most `n` items after `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub n: Option<u64>,
    pub last: Option<String>,
}

impl Page {
    pub fn parse(query: &Query, rules: PageRules) -> Result<Page, ApiError> {
        let n = match query.get("n") {
            None => rules.default,
            Some(raw) => Some(
                raw.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0 || rules.allow_zero)
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::PaginationInvalid,
                            format!("n={raw:?} is not a valid page size"),
                        )
                    })?
                    .min(rules.max),
            ),
        };
        let last = query.get("last").filter(|l| !l.is_empty()).cloned();
        Ok(Page { n, last })
    }

    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Rows to fetch: one more than the page, to learn whether another page
    /// follows; `None` for all.
    pub fn fetch(&self) -> Option<i64> {
        self.n
            .map(|n| i64::try_from(n.saturating_add(1)).unwrap_or(i64::MAX))
    }

    /// Cut `items` (fetched with [`Page::fetch`]) to the page; the cursor of
    /// the next page, if there is one.
    pub fn split<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        match self.n {
            Some(n) if items.len() as u64 > n => {
                items.truncate(n as usize);
                let next = items.last().map(key);
                (items, next)
            }
            _ => (items, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hostile_numbers_are_bounded_or_refused() {
        let p = Page::parse(&q(&[("n", "9223372036854775807")]), TAGS).unwrap();
        assert_eq!(p.fetch(), Some(i64::MAX));
        let p = Page::parse(&q(&[("n", "18446744073709551615")]), CATALOG).unwrap();
        assert_eq!(p.n, Some(1000));
        assert_eq!(p.fetch(), Some(1001));
        for bad in ["-1", "x", "", "1e3", "18446744073709551616"] {
            let e = Page::parse(&q(&[("n", bad)]), TAGS).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::PaginationInvalid, "{bad}");
        }
        assert!(Page::parse(&q(&[("n", "0")]), BROWSE).is_err());
        assert_eq!(Page::parse(&q(&[("n", "0")]), TAGS).unwrap().n, Some(0));
    }

    #[test]
    fn defaults_and_split() {
        let p = Page::parse(&q(&[("last", "b")]), TAGS).unwrap();
        assert_eq!((p.n, p.last()), (None, Some("b")));
        assert_eq!(p.fetch(), None);
        let p = Page::parse(&q(&[]), BROWSE).unwrap();
        assert_eq!(p.fetch(), Some(101));
        let p = Page::parse(&q(&[("n", "2")]), TAGS).unwrap();
        let (items, next) = p.split(vec!["a", "b", "c"], |s| s.to_string());
        assert_eq!((items, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (items, next) = p.split(vec!["a", "b"], |s| s.to_string());
        assert_eq!((items.len(), next), (2, None));
        let p = Page::parse(&q(&[("n", "0")]), TAGS).unwrap();
        let (items, next) = p.split(vec!["a"], |s| s.to_string());
        assert_eq!((items.len(), next.as_deref()), (0, None::<&str>));
    }
}
