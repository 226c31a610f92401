//! `[[cache]]` rules: which repositories are pull-through caches of which
//! upstream registry, and how their names map to the upstream's.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One pull-through cache rule (ECR's idea): repositories under `prefix`
/// are read-only copies of `upstream`'s, fetched on their first pull.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    /// The first name component (`hub` for `hub/library/busybox`).
    pub prefix: String,
    /// The upstream registry's base URL (`https://registry-1.docker.io`).
    pub upstream: String,
    /// Credentials for the upstream (Basic, or for its token server).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding `username:password` (read at each sign-in, so it
    /// may be rotated), instead of `username` and `password`.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// A cached tag is served this long before it is checked upstream
    /// again (with a `HEAD`, which Docker Hub does not count as a pull).
    #[serde(default = "default_tag_ttl")]
    pub tag_ttl_secs: u64,
    /// Give each repository the cache creates a lifecycle policy that
    /// expires images not pulled for this many days (GC then frees them).
    #[serde(default)]
    pub evict_unpulled_days: Option<u32>,
    /// Seconds to wait for the upstream's answer (its headers; a blob's
    /// body may take longer, as long as bytes keep coming).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The largest blob fetched through this rule: one the upstream says
    /// is larger (its `Content-Length`, or a manifest's descriptor) is
    /// refused before its bytes are read, and a body that runs past it
    /// (or past what it declared) is cut off and discarded. The registry's
    /// own `max_blob_bytes`, when lower, applies too.
    #[serde(default = "default_max_blob_bytes")]
    pub max_blob_bytes: u64,
    /// Send the rule's credentials to a token realm on plain `http://`
    /// (refused by default: they would cross the network in clear).
    #[serde(default)]
    pub allow_insecure_realm: bool,
}

fn default_tag_ttl() -> u64 {
    300
}

/// 10 GiB: above the largest layers of common images, and a bound.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 10 << 30;

fn default_max_blob_bytes() -> u64 {
    DEFAULT_MAX_BLOB_BYTES
}

fn default_timeout() -> u64 {
    30
}

impl CacheRule {
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("invalid [[cache]] entry {:?}", self.prefix);
        if self.prefix.contains('/') || storage::names::validate_name(&self.prefix).is_err() {
            return Err(format!(
                "{at}: prefix must be one repository name component (\"hub\" for hub/library/busybox)"
            ));
        }
        let url = url::Url::parse(&self.upstream)
            .map_err(|e| format!("{at}: upstream {:?} is not a URL: {e}", self.upstream))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "{at}: upstream must be an http:// or https:// URL, like https://registry-1.docker.io"
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(format!("{at}: password without username"));
        }
        if self.credentials_file.is_some() && self.username.is_some() {
            return Err(format!(
                "{at}: give username and password, or credentials_file, not both"
            ));
        }
        if let Some(f) = &self.credentials_file {
            read_credentials(f).map_err(|e| format!("{at}: {e}"))?;
        }
        if self.timeout_secs == 0 {
            return Err(format!("{at}: timeout_secs must be at least 1"));
        }
        if self.max_blob_bytes == 0 {
            return Err(format!("{at}: max_blob_bytes must be at least 1"));
        }
        Ok(())
    }

    /// The upstream's name for `repo` (one of this rule's), if it is one.
    /// Docker Hub's official images live under `library/`: `hub/busybox`
    /// means `library/busybox` there, as `docker pull busybox` does.
    pub fn upstream_name<'a>(&self, repo: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        let rest = repo.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if !rest.contains('/') && self.is_docker_hub() {
            return Some(format!("library/{rest}").into());
        }
        Some(rest.into())
    }

    fn is_docker_hub(&self) -> bool {
        url::Url::parse(&self.upstream)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|h| h == "registry-1.docker.io" || h == "index.docker.io")
    }

    /// The credentials to present, if any.
    pub fn credentials(&self) -> Result<Option<(String, String)>, String> {
        if let Some(f) = &self.credentials_file {
            return read_credentials(f).map(Some);
        }
        Ok(self
            .username
            .clone()
            .map(|u| (u, self.password.clone().unwrap_or_default())))
    }
}

fn read_credentials(path: &std::path::Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read credentials_file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    match line.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_owned(), p.to_owned())),
        _ => Err(format!(
            "credentials_file {} must hold one line, username:password",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, upstream: &str) -> CacheRule {
        toml::from_str(&format!("prefix = {prefix:?}\nupstream = {upstream:?}")).unwrap()
    }

    #[test]
    fn names_map_to_the_upstream() {
        let hub = rule("hub", "https://registry-1.docker.io");
        assert_eq!(hub.upstream_name("hub/busybox").unwrap(), "library/busybox");
        assert_eq!(
            hub.upstream_name("hub/library/busybox").unwrap(),
            "library/busybox"
        );
        assert_eq!(hub.upstream_name("hubx/busybox"), None);
        assert_eq!(hub.upstream_name("hub"), None);
        let other = rule("q", "http://127.0.0.1:5000");
        assert_eq!(other.upstream_name("q/busybox").unwrap(), "busybox");
        assert_eq!(other.upstream_name("q/a/b").unwrap(), "a/b");
        assert_eq!(other.tag_ttl_secs, 300);
        assert_eq!(other.max_blob_bytes, DEFAULT_MAX_BLOB_BYTES);
        assert!(!other.allow_insecure_realm);
    }

    #[test]
    fn bad_rules_are_refused_with_reasons() {
        assert!(rule("a/b", "http://x")
            .validate()
            .unwrap_err()
            .contains("one repository name component"));
        assert!(rule("hub", "ftp://x")
            .validate()
            .unwrap_err()
            .contains("http://"));
        assert!(rule("hub", "nonsense")
            .validate()
            .unwrap_err()
            .contains("not a URL"));
        let mut r = rule("hub", "http://127.0.0.1:1");
        r.credentials_file = Some("/nonexistent/creds".into());
        assert!(r
            .validate()
            .unwrap_err()
            .contains("cannot read credentials_file"));
        assert!(rule("hub", "https://registry-1.docker.io")
            .validate()
            .is_ok());
    }

    #[test]
    fn credentials_file_holds_user_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, "robot:s3cr:et\n").unwrap();
        let mut r = rule("hub", "http://127.0.0.1:1");
        r.credentials_file = Some(f.clone());
        assert_eq!(
            r.credentials().unwrap(),
            Some(("robot".into(), "s3cr:et".into()))
        );
        std::fs::write(&f, "no-colon\n").unwrap();
        assert!(r.credentials().unwrap_err().contains("username:password"));
    }
}
