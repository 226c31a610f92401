//! Repository globs, for access rules, public repositories and robot scopes.
//!
//! Semantics, path-segment based like `.gitignore`/doublestar globs:
//! - segments are separated by `/`; a literal segment matches itself;
//! - `*` inside a segment matches any run of characters *within* that segment
//!   (`team/*` matches `team/app` but not `team/app/x`; `team/app-*` matches
//!   `team/app-1`);
//! - `**` as a whole segment matches any number of segments, **zero
//!   included**: `team/**` matches `team`, `team/app` and `team/a/b/c`; `**`
//!   alone matches every repository.
//!
//! Everything else is refused when the config is loaded: `?`, `[...]`, `{..}`,
//! upper case, empty segments, `.`/`..`, `**` glued to other characters. A
//! pattern that cannot match any valid OCI repository name is almost
//! certainly a typo, and a typo in an access rule must not go unnoticed.

use std::fmt;

/// A compiled repository glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    segments: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`: zero or more whole segments.
    Any,
    /// A segment, possibly with `*` wildcards (kept as the raw text).
    One(String),
}

/// Patterns are short; this bounds matching work on a hostile config.
const MAX_GLOB_LEN: usize = 512;

impl Glob {
    pub fn parse(pattern: &str) -> Result<Glob, GlobError> {
        let err = |why: &'static str| GlobError {
            pattern: pattern.chars().take(MAX_GLOB_LEN).collect(),
            why,
        };
        if pattern.is_empty() {
            return Err(err("empty pattern"));
        }
        if pattern.len() > MAX_GLOB_LEN {
            return Err(err("longer than 512 characters"));
        }
        let mut segments = Vec::new();
        for seg in pattern.split('/') {
            if seg.is_empty() {
                return Err(err("empty path segment (leading, trailing or doubled '/')"));
            }
            if seg == "." || seg == ".." {
                return Err(err("'.' and '..' segments are not allowed"));
            }
            if seg == "**" {
                // `**/**` means the same as `**`; collapse to keep matching linear.
                if segments.last() != Some(&Seg::Any) {
                    segments.push(Seg::Any);
                }
                continue;
            }
            if seg.contains("**") {
                return Err(err("'**' must be a whole path segment"));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '*'))
            {
                return Err(if matches!(c, '?' | '[' | ']' | '{' | '}' | '!') {
                    err("only '*' and '**' wildcards are supported")
                } else if c.is_ascii_uppercase() {
                    err("repository names are lower case")
                } else {
                    err("character not allowed in a repository name")
                });
            }
            segments.push(Seg::One(seg.to_string()));
        }
        Ok(Glob {
            source: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no wildcard (it names one repository).
    pub fn is_literal(&self) -> bool {
        !self.source.contains('*')
    }

    /// Whether `name` (a repository name, not validated here) matches.
    pub fn matches(&self, name: &str) -> bool {
        let parts: Vec<&str> = name.split('/').collect();
        let (m, n) = (self.segments.len(), parts.len());
        // reach[j]: the first i pattern segments can match the first j name
        // segments. Dynamic programming keeps `**` linear, no backtracking.
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for seg in &self.segments[..m] {
            let mut next = vec![false; n + 1];
            match seg {
                Seg::Any => {
                    let mut any = false;
                    for j in 0..=n {
                        any |= reach[j];
                        next[j] = any;
                    }
                }
                Seg::One(p) => {
                    for j in 0..n {
                        if reach[j] && segment_matches(p, parts[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reach = next;
        }
        reach[n]
    }
}

impl Glob {
    /// Whether the pattern matches every name in the subtree of `prefix`
    /// (`prefix` itself and anything below it): after the prefix's
    /// segments, only `**` may remain. `team/**` and `**` cover `team`;
    /// `team/*` does not (`team/a/b` escapes it), nor does `team/app`.
    pub fn covers_subtree(&self, prefix: &str) -> bool {
        let parts: Vec<&str> = prefix.split('/').collect();
        // Positions in the pattern reachable after each prefix segment, as
        // in `matches`; the subtree is covered when, after the whole
        // prefix, the rest of the pattern is a single `**`.
        let m = self.segments.len();
        let mut reach = vec![false; m + 1];
        reach[0] = true;
        // `**` may match zero segments: a position before one reaches past it.
        let close = |reach: &mut Vec<bool>, segs: &[Seg]| {
            for i in 0..m {
                if reach[i] && segs[i] == Seg::Any {
                    reach[i + 1] = true;
                }
            }
        };
        close(&mut reach, &self.segments);
        for part in &parts {
            let mut next = vec![false; m + 1];
            for i in 0..m {
                if !reach[i] {
                    continue;
                }
                match &self.segments[i] {
                    Seg::Any => next[i] = true,
                    Seg::One(p) if segment_matches(p, part) => next[i + 1] = true,
                    Seg::One(_) => {}
                }
            }
            reach = next;
            close(&mut reach, &self.segments);
        }
        (0..m).any(|i| reach[i] && self.segments[i] == Seg::Any && i + 1 == m)
    }
}

/// `*` matches any run (possibly empty) of characters within one segment.
/// Greedy with one backtrack point: linear in practice, O(len²) worst.
fn segment_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad repository glob {pattern:?}: {why}")]
pub struct GlobError {
    pub pattern: String,
    pub why: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtrees_are_covered_only_by_a_trailing_double_star() {
        let covers = |p: &str, ns: &str| Glob::parse(p).unwrap().covers_subtree(ns);
        assert!(covers("team/**", "team"));
        assert!(covers("**", "team"));
        assert!(covers("**", "team/a/b"));
        assert!(covers("team/**", "team/sub"));
        assert!(covers("*/**", "team"));
        assert!(covers("te*/**", "team"));
        assert!(covers("**/**", "x"));
        assert!(!covers("team/*", "team"));
        assert!(!covers("team/app", "team"));
        assert!(!covers("team", "team"));
        assert!(!covers("other/**", "team"));
        assert!(!covers("team/**/x", "team"));
        assert!(!covers("**/x", "team"));
        assert!(!covers("team/app/**", "team"));
        assert!(covers("team/app/**", "team/app"));
    }

    fn g(s: &str) -> Glob {
        Glob::parse(s).unwrap()
    }

    #[test]
    fn literal_matches_itself_only() {
        let x = g("team/app");
        assert!(x.is_literal());
        assert!(x.matches("team/app"));
        assert!(!x.matches("team/app2"));
        assert!(!x.matches("team"));
        assert!(!x.matches("team/app/x"));
        assert!(!x.matches("other/team/app"));
    }

    #[test]
    fn star_is_one_segment() {
        let x = g("team/*");
        assert!(!x.is_literal());
        assert!(x.matches("team/app"));
        assert!(x.matches("team/a.b-c"));
        assert!(!x.matches("team"));
        assert!(!x.matches("team/app/x"));
        assert!(!x.matches("teams/app"));
        let y = g("*/base");
        assert!(y.matches("a/base"));
        assert!(!y.matches("a/b/base"));
        assert!(!y.matches("base"));
    }

    #[test]
    fn star_within_a_segment() {
        let x = g("team/app-*");
        assert!(x.matches("team/app-1"));
        assert!(x.matches("team/app-"));
        assert!(!x.matches("team/app"));
        assert!(!x.matches("team/app-1/x"));
        let y = g("*-prod/*");
        assert!(y.matches("web-prod/api"));
        assert!(!y.matches("web-dev/api"));
        let z = g("a*b*c");
        assert!(z.matches("abc"));
        assert!(z.matches("axxbyyc"));
        assert!(z.matches("abcbc"));
        assert!(!z.matches("acb"));
    }

    #[test]
    fn double_star_is_any_depth_zero_included() {
        let x = g("team-a/**");
        assert!(x.matches("team-a"));
        assert!(x.matches("team-a/x"));
        assert!(x.matches("team-a/x/y/z"));
        assert!(!x.matches("team-ab"));
        assert!(!x.matches("team-ab/x"));
        assert!(!x.matches("other/team-a"));
        let all = g("**");
        assert!(all.matches("a"));
        assert!(all.matches("a/b/c"));
        let mid = g("a/**/z");
        assert!(mid.matches("a/z"));
        assert!(mid.matches("a/b/z"));
        assert!(mid.matches("a/b/c/z"));
        assert!(!mid.matches("a/b/c"));
        assert!(!mid.matches("z"));
        let lead = g("**/cache");
        assert!(lead.matches("cache"));
        assert!(lead.matches("x/y/cache"));
        assert!(!lead.matches("x/cache/y"));
    }

    #[test]
    fn many_double_stars_stay_fast() {
        // Would be exponential with naive backtracking.
        let x = g("**/a/**/a/**/a/**/a/**/a/**/b");
        let name = vec!["a"; 120].join("/");
        assert!(!x.matches(&name));
        assert!(x.matches(&format!("{name}/b")));
        assert_eq!(g("a/**/**/**").segments.len(), 2);
    }

    #[test]
    fn refuses_bad_patterns() {
        for (bad, why) in [
            ("", "empty"),
            ("/team", "empty path segment"),
            ("team/", "empty path segment"),
            ("team//app", "empty path segment"),
            ("team/../x", "'..'"),
            ("./x", "'.'"),
            ("team/a**", "whole path segment"),
            ("***", "whole path segment"),
            ("team/ap?", "only '*' and '**'"),
            ("team/[ab]", "only '*' and '**'"),
            ("team/{a,b}", "only '*' and '**'"),
            ("Team/**", "lower case"),
            ("team app", "not allowed"),
            ("host:5000/x", "not allowed"),
            ("team\\x", "not allowed"),
        ] {
            let e = Glob::parse(bad).unwrap_err();
            assert!(e.why.contains(why), "{bad}: {e}");
            assert!(e.to_string().contains("bad repository glob"));
        }
        assert!(Glob::parse(&"a".repeat(513)).is_err());
    }

    #[test]
    fn display_is_the_source() {
        assert_eq!(g("a/**/b").to_string(), "a/**/b");
        assert_eq!(format!("{:?}", g("x/*")), "Glob(\"x/*\")");
    }
}
