//! Repository name and tag validation, per the OCI distribution spec regexes.

use crate::error::{Error, ErrorCode, Result};
use regex::Regex;
use std::sync::LazyLock;

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

/// Names longer than this cannot round-trip through Docker clients
/// (`host/name` must stay within 255 characters).
const MAX_NAME_LEN: usize = 255;

pub fn validate_name(name: &str) -> Result<()> {
    if name.len() <= MAX_NAME_LEN && NAME.is_match(name) {
        Ok(())
    } else {
        Err(
            Error::new(ErrorCode::NameInvalid, "invalid repository name")
                .with_detail(serde_json::json!({ "name": name })),
        )
    }
}

pub fn validate_tag(tag: &str) -> Result<()> {
    if TAG.is_match(tag) {
        Ok(())
    } else {
        Err(Error::new(ErrorCode::TagInvalid, "invalid tag")
            .with_detail(serde_json::json!({ "tag": tag })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e",
            "my-app",
            "a__b",
            "a.b_c--d",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "-a", "a-", "a/", "/a", "a___b", "a:b", "a/../b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("_x.Y-1").is_ok());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("").is_err());
    }
}

/// What follows `/manifests/` in a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(crate::Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if crate::Digest::looks_like(s) {
            Ok(Reference::Digest(s.parse()?))
        } else {
            validate_tag(s)?;
            Ok(Reference::Tag(s.to_owned()))
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}
