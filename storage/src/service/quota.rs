//! Quotas per repository namespace (a repository's first name component:
//! `team` for `team/app` and `team/app/worker`): the bytes of the distinct
//! blobs linked in the namespace and its number of repositories, from the
//! configuration. A push that would go over fails with `DENIED`, naming the
//! quota, before its bytes are kept: at the start of an upload, when the
//! size of a blob is known (its last chunk), at a mount.
//!
//! Usage is summed from the database and cached for a few seconds per
//! namespace, plus what this node committed since: several nodes (or
//! pushes racing each other) can overshoot by what they commit within that
//! window. It is a guard rail for storage, not a billing meter.

use super::Registry;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a summed usage is trusted.
const FRESH: Duration = Duration::from_secs(5);

/// A namespace's limits (either may be absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub namespace: String,
    /// Bytes of the distinct blobs linked in the namespace.
    pub bytes: Option<u64>,
    pub repositories: Option<u64>,
}

/// A namespace's usage, with its quota if it has one.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceUsage {
    pub namespace: String,
    pub repositories: i64,
    pub bytes: i64,
    pub quota: Option<Quota>,
}

pub fn namespace_of(repo: &str) -> &str {
    repo.split('/').next().unwrap_or(repo)
}

/// When a namespace's usage was summed, its repositories and bytes.
type Summed = (Instant, i64, i64);

#[derive(Default, Clone)]
pub(crate) struct UsageCache(Arc<Mutex<HashMap<String, Summed>>>);

impl UsageCache {
    fn get(&self, ns: &str) -> Option<(i64, i64)> {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.get(ns)
            .filter(|(at, ..)| at.elapsed() < FRESH)
            .map(|(_, r, b)| (*r, *b))
    }

    fn put(&self, ns: &str, repos: i64, bytes: i64) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(ns.to_owned(), (Instant::now(), repos, bytes));
    }

    fn add(&self, ns: &str, repos: i64, bytes: i64) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, r, b)) = c.get_mut(ns) {
            *r += repos;
            *b += bytes;
        }
    }
}

fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn denied(msg: String) -> Error {
    Error::new(ErrorCode::Denied, msg)
}

impl Registry {
    pub(crate) fn quota_of(&self, repo: &str) -> Option<&Quota> {
        let ns = namespace_of(repo);
        self.policy.quotas.iter().find(|q| q.namespace == ns)
    }

    async fn usage(&self, ns: &str) -> Result<(i64, i64)> {
        if let Some(u) = self.usage.get(ns) {
            return Ok(u);
        }
        let (repos, bytes) = self.meta.namespace_usage(ns).await?;
        self.usage.put(ns, repos, bytes);
        Ok((repos, bytes))
    }

    /// Refuse a push that would create `repo` beyond its namespace's
    /// repository quota.
    pub(crate) async fn check_new_repo(&self, repo: &str) -> Result<()> {
        let Some(q) = self.quota_of(repo) else {
            return Ok(());
        };
        let Some(max) = q.repositories else {
            return Ok(());
        };
        if self.meta.repo_exists(repo).await? {
            return Ok(());
        }
        let (repos, _) = self.usage(&q.namespace).await?;
        if repos as u64 >= max {
            let noun = if max == 1 {
                "repository"
            } else {
                "repositories"
            };
            return Err(denied(format!(
                "quota exceeded: namespace {} may hold {max} {noun} and holds {repos}; {repo} would be one more",
                q.namespace
            )));
        }
        Ok(())
    }

    /// Refuse `more` bytes of blob `digest` (None: not known yet) in
    /// `repo` beyond its namespace's byte quota; a blob the namespace
    /// already has costs nothing. Returns the bytes it will add.
    pub(crate) async fn check_bytes(
        &self,
        repo: &str,
        digest: Option<&Digest>,
        more: u64,
    ) -> Result<u64> {
        let Some(q) = self.quota_of(repo) else {
            return Ok(0);
        };
        let Some(max) = q.bytes else {
            return Ok(0);
        };
        if let Some(d) = digest {
            if self
                .meta
                .namespace_has_blob(&q.namespace, &d.to_string())
                .await?
            {
                return Ok(0);
            }
        }
        let (_, bytes) = self.usage(&q.namespace).await?;
        let over = match digest {
            // The start of an upload: refused once the namespace is full.
            None => bytes as u64 >= max,
            Some(_) => bytes as u64 + more > max,
        };
        if over {
            let needs = if digest.is_some() {
                format!(" and this blob needs {} more", size(more as i64))
            } else {
                String::new()
            };
            return Err(denied(format!(
                "quota exceeded: namespace {} may hold {} ({max} bytes); it holds {}{needs}",
                q.namespace,
                size(max as i64),
                size(bytes)
            )));
        }
        Ok(more)
    }

    /// Count what a push just added (a blob new to the namespace, a new
    /// repository) until the next sum.
    /// Before a write that creates `repo` if it does not exist: refused
    /// when its namespace is full; `true` when it will be new (and counted:
    /// pass that to [`Registry::note_usage`] once it is).
    pub(crate) async fn admit_new_repo(&self, repo: &str) -> Result<bool> {
        self.check_new_repo(repo).await?;
        Ok(self.quota_of(repo).is_some() && !self.meta.repo_exists(repo).await?)
    }

    pub(crate) fn note_usage(&self, repo: &str, repos: i64, bytes: u64) {
        if self.quota_of(repo).is_some() {
            self.usage.add(namespace_of(repo), repos, bytes as i64);
        }
    }

    /// Usage of every namespace with a quota (fresh from the database).
    pub async fn quota_usage(&self) -> Result<Vec<NamespaceUsage>> {
        let mut out = Vec::new();
        for q in &self.policy.quotas {
            let (repositories, bytes) = self.meta.namespace_usage(&q.namespace).await?;
            self.usage.put(&q.namespace, repositories, bytes);
            out.push(NamespaceUsage {
                namespace: q.namespace.clone(),
                repositories,
                bytes,
                quota: Some(q.clone()),
            });
        }
        Ok(out)
    }

    /// One namespace's usage and quota.
    pub async fn namespace_usage(&self, ns: &str) -> Result<NamespaceUsage> {
        crate::names::validate_name(ns)?;
        let (repositories, bytes) = self.meta.namespace_usage(ns).await?;
        Ok(NamespaceUsage {
            namespace: ns.to_owned(),
            repositories,
            bytes,
            quota: self
                .policy
                .quotas
                .iter()
                .find(|q| q.namespace == ns)
                .cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_first_components_and_sizes_read_well() {
        assert_eq!(namespace_of("team/app/worker"), "team");
        assert_eq!(namespace_of("app"), "app");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(10 << 20), "10.0 MiB");
    }
}
