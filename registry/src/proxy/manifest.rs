//! One upstream round for a manifest of a cached repository: a cached tag
//! checked with `HEAD`, or what is missing or has moved fetched, checked
//! against the blob size limit, stored as served, and given the rule's
//! eviction policy.

use super::limits::Limits;
use super::upstream::{Failure, Target, Upstream, MANIFEST_ACCEPT};
use super::{count, count_fetch, is_current, served_digest, ManifestOutcome};
use reqwest::Method;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use storage::metadata::StoredManifest;
use storage::names::Reference;
use storage::{Digest, Error, ErrorCode, Registry};

pub(super) struct Revalidate {
    pub reg: Registry,
    pub up: Arc<Upstream>,
    pub limits: Arc<Limits>,
    pub repo: String,
    /// Validated before any of this is built: only it reaches a URL.
    pub reference: Reference,
    pub local: Option<Arc<StoredManifest>>,
    pub checked: Arc<Mutex<HashMap<String, Instant>>>,
    pub policied: Arc<Mutex<HashSet<String>>>,
}

impl Revalidate {
    pub async fn run(self) -> ManifestOutcome {
        self.round()
            .await
            .map_err(|e| (e.code, Arc::from(e.message.as_str())))
    }

    async fn round(&self) -> Result<Arc<StoredManifest>, Error> {
        let name = self
            .up
            .rule()
            .upstream_name(&self.repo)
            .expect("a repository of this rule")
            .into_owned();
        let reference = self.reference.to_string();
        let target = Target::Manifest(&self.reference);
        // A round that ended just before this one began may have done it.
        match self.reg.manifest_shared(&self.repo, &reference).await {
            Ok(m) if is_current(&self.checked, &self.up, &self.repo, &reference) => return Ok(m),
            _ => {}
        }
        if let Some(m) = &self.local {
            match self
                .up
                .send(Method::HEAD, &name, target, Some(MANIFEST_ACCEPT))
                .await
            {
                Ok(resp) => {
                    count_fetch("head");
                    if served_digest(resp.headers()).as_ref() == Some(&m.digest) {
                        self.mark_checked();
                        count("manifest", "revalidated");
                        return Ok(m.clone());
                    }
                    // Moved (or no digest said): fetched below.
                }
                Err(f) => return Ok(self.stale(m, &f)),
            }
        }
        // A fetch of its own: one of this node's `max_fetches`.
        let _slot = match (self.limits.slot(), &self.local) {
            (Ok(slot), _) => slot,
            (Err(e), Some(m)) => return Ok(self.stale(m, &Failure::Refused(e.code, e.message))),
            (Err(e), None) => return Err(e),
        };
        let resp = match self
            .up
            .send(Method::GET, &name, target, Some(MANIFEST_ACCEPT))
            .await
        {
            Ok(r) => r,
            Err(f) => {
                return match &self.local {
                    Some(m) => Ok(self.stale(m, &f)),
                    None => Err(f.to_error(self.up.base(), || Error::manifest_unknown(&reference))),
                }
            }
        };
        count_fetch("manifest");
        let limit = self.reg.policy().max_manifest_bytes;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let served = served_digest(resp.headers());
        let body = read_limited(resp, limit)
            .await
            .map_err(|f| f.to_error(self.up.base(), || Error::manifest_unknown(&reference)))?;
        check_blob_sizes(&body, super::blob_limit(&self.reg, &self.up), &self.up)?;
        let digest = self
            .reg
            .put_cached_manifest(
                &self.repo,
                &reference,
                content_type.as_deref(),
                &body,
                served.as_ref(),
            )
            .await?;
        count("manifest", "miss");
        if matches!(self.reference, Reference::Tag(_)) {
            self.mark_checked();
        }
        if let Some(old) = self.local.as_ref().filter(|m| m.digest != digest) {
            tracing::info!(repository = %self.repo, tag = %reference, from = %old.digest, to = %digest, upstream = %self.up.base(), "pull-through: tag moved upstream; cached the new manifest");
        }
        self.give_policy().await;
        self.reg
            .manifest_shared(&self.repo, &digest.to_string())
            .await
    }

    /// The upstream failed: serve what is cached, and say so.
    fn stale(&self, m: &Arc<StoredManifest>, f: &Failure) -> Arc<StoredManifest> {
        tracing::warn!(repository = %self.repo, reference = %self.reference, digest = %m.digest, upstream = %self.up.base(), error = %f, "pull-through: the upstream could not confirm the tag; serving the cached manifest (stale)");
        count("manifest", "stale");
        // Not asked again on every pull while it is down: after the TTL.
        self.mark_checked();
        m.clone()
    }

    fn mark_checked(&self) {
        let mut checked = self.checked.lock().expect("checked tags");
        checked.insert(format!("{}:{}", self.repo, self.reference), Instant::now());
    }

    /// A repository the cache creates gets the rule's eviction policy
    /// (once; one set by hand stays).
    async fn give_policy(&self) {
        let Some(days) = self.up.rule().evict_unpulled_days else {
            return;
        };
        if !self
            .policied
            .lock()
            .expect("policied")
            .insert(self.repo.clone())
        {
            return;
        }
        match self.reg.lifecycle_policy(&self.repo).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let policy = eviction_policy(days);
                if let Err(e) = self.reg.set_lifecycle_policy(&self.repo, &policy).await {
                    tracing::warn!(repository = %self.repo, error = %e.message, "pull-through: the eviction policy could not be set");
                }
            }
            Err(e) => {
                self.policied.lock().expect("policied").remove(&self.repo);
                tracing::warn!(repository = %self.repo, error = %e.message, "pull-through: the eviction policy could not be read");
            }
        }
    }
}

/// A manifest naming a blob larger than the cache fetches is refused
/// before any of its blobs is: a pull fails at once, saying why, rather
/// than after its small layers. (An index names manifests, whose size
/// `max_manifest_bytes` bounds when they are fetched.)
fn check_blob_sizes(body: &[u8], limit: u64, up: &Upstream) -> Result<(), Error> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Not JSON: storing it refuses it with the reason.
        return Ok(());
    };
    let layers = doc["layers"].as_array().into_iter().flatten();
    for d in std::iter::once(&doc["config"]).chain(layers) {
        let Some(size) = d["size"].as_u64() else {
            continue;
        };
        if size > limit {
            super::refused("too_large");
            let digest = d["digest"]
                .as_str()
                .and_then(|s| s.parse::<Digest>().ok())
                .map_or_else(|| "a blob".to_owned(), |d| d.to_string());
            return Err(Error::new(
                ErrorCode::Denied,
                format!(
                    "the manifest names {digest} of {size} bytes, over the limit of {limit} bytes \
                     for blobs of the pull-through cache {}/ (max_blob_bytes); not cached",
                    up.rule().prefix
                ),
            ));
        }
    }
    Ok(())
}

/// An ECR lifecycle policy expiring images not pulled for `days`.
pub fn eviction_policy(days: u32) -> String {
    serde_json::json!({"rules": [{
        "rulePriority": 1,
        "description": format!("pull-through cache: evict images not pulled for {days} days"),
        "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": days},
        "action": {"type": "expire"}
    }]})
    .to_string()
}

/// A manifest body of at most `limit` bytes.
async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, Failure> {
    use futures::StreamExt;
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Failure::Status(
            502,
            format!("the manifest is over the limit of {limit} bytes"),
        ));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Unreachable(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(Failure::Status(
                502,
                format!("the manifest is over the limit of {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eviction_policy_is_a_valid_lifecycle_policy() {
        let p = eviction_policy(30);
        let parsed = storage::lifecycle::Policy::parse(&p).expect("valid");
        assert_eq!(parsed.rules.len(), 1);
    }

    #[test]
    fn manifests_naming_blobs_over_the_limit_are_refused() {
        let rule: super::super::CacheRule =
            toml::from_str("prefix = \"hub\"\nupstream = \"http://127.0.0.1:1\"").unwrap();
        let up = Upstream::new(rule).unwrap();
        let d = Digest::sha256_of(b"x").to_string();
        let m = |size: u64| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "config": {"digest": d, "size": 2},
                "layers": [{"digest": d, "size": 10}, {"digest": d, "size": size}],
            }))
            .unwrap()
        };
        assert!(check_blob_sizes(&m(100), 100, &up).is_ok());
        let e = check_blob_sizes(&m(101), 100, &up).unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied);
        assert!(e.message.contains(&d) && e.message.contains("max_blob_bytes"));
        // An index: its entries are manifests, not checked here.
        let index = serde_json::json!({"manifests": [{"digest": d, "size": 1u64 << 40}]});
        assert!(check_blob_sizes(index.to_string().as_bytes(), 100, &up).is_ok());
        assert!(check_blob_sizes(b"not json", 100, &up).is_ok());
    }
}
