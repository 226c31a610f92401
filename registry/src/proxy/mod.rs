//! Pull-through caching (`[[cache]]` rules): repositories under a rule's
//! prefix are filled from an upstream registry on a miss and then served
//! from our own store. Each missing manifest or blob is fetched once
//! however many clients ask at the same moment; tags are checked upstream
//! again once their TTL has passed, with a `HEAD`; while the upstream is
//! down or throttling, what is cached is served (stale tags included).

mod flight;
pub mod rules;
mod spool;
pub mod upstream;

pub use rules::CacheRule;

use reqwest::Method;
use spool::{Fetches, Job, Phase};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storage::blobstore::ByteStream;
use storage::metadata::StoredManifest;
use storage::{BlobInfo, Digest, Error, ErrorCode, Registry};
use upstream::{Failure, Upstream, MANIFEST_ACCEPT};

/// What a pull of a manifest turned into (cloneable, for the waiters of
/// one flight).
type ManifestOutcome = Result<Arc<StoredManifest>, (ErrorCode, Arc<str>)>;

/// The pull-through caches of one registry node.
pub struct Proxy {
    upstreams: Vec<Arc<Upstream>>,
    fetches: Option<Fetches>,
    manifests: flight::Flights<ManifestOutcome>,
    /// When each cached tag (`repo:tag`) was last known to match upstream.
    checked: Arc<Mutex<HashMap<String, Instant>>>,
    /// Repositories given their eviction policy (or found with one).
    policied: Arc<Mutex<HashSet<String>>>,
}

/// How a blob of a cached repository is answered.
pub enum BlobAnswer {
    /// Stored: served like any blob.
    Stored(BlobInfo),
    /// Arriving from the upstream now: these bytes as they come.
    Arriving { size: Option<u64>, body: ByteStream },
    /// For a `HEAD`: its size, known from the upstream's answer.
    Size(u64),
}

impl Proxy {
    /// No rules: no repository is a cache.
    pub fn off() -> Proxy {
        Proxy {
            upstreams: Vec::new(),
            fetches: None,
            manifests: Default::default(),
            checked: Default::default(),
            policied: Default::default(),
        }
    }

    pub fn new(rules: &[CacheRule], data_dir: &Path) -> Result<Proxy, String> {
        if rules.is_empty() {
            return Ok(Proxy::off());
        }
        let dir = spool::dir_in(data_dir);
        let fetches = Fetches::new(dir.clone()).map_err(|e| {
            format!(
                "cannot prepare {} for pull-through fetches: {e}",
                dir.display()
            )
        })?;
        Ok(Proxy {
            upstreams: rules
                .iter()
                .map(|r| Upstream::new(r.clone()).map(Arc::new))
                .collect::<Result<_, _>>()?,
            fetches: Some(fetches),
            ..Proxy::off()
        })
    }

    /// The upstream `repo` is a cache of, if it is one.
    pub fn upstream_of(&self, repo: &str) -> Option<&Arc<Upstream>> {
        self.upstreams
            .iter()
            .find(|u| u.rule().upstream_name(repo).is_some())
    }

    /// The rule's upstream for the web view's marking.
    pub fn cached_from(&self, repo: &str) -> Option<&str> {
        self.upstream_of(repo).map(|u| u.base())
    }

    /// Pushes to a cached repository are refused: it holds what its
    /// upstream has, nothing else.
    pub fn check_writable(&self, repo: &str) -> Result<(), Error> {
        match self.upstream_of(repo) {
            Some(up) => Err(Error::new(
                ErrorCode::Denied,
                format!(
                    "{repo} is a pull-through cache of {} and read-only: push to the upstream, or to a repository outside {}/",
                    up.base(),
                    up.rule().prefix
                ),
            )),
            None => Ok(()),
        }
    }

    // ---- manifests ---------------------------------------------------------

    /// The manifest `reference` of cached `repo`: ours while it is fresh
    /// (a digest always is), else the upstream's, fetched once for all
    /// who ask at the same moment.
    pub async fn manifest(
        &self,
        reg: &Registry,
        up: &Arc<Upstream>,
        repo: &str,
        reference: &str,
    ) -> Result<Arc<StoredManifest>, Error> {
        let local = match reg.manifest_shared(repo, reference).await {
            Ok(m) => Some(m),
            Err(e) if e.code == ErrorCode::ManifestUnknown => None,
            Err(e) => return Err(e),
        };
        if let Some(m) = &local {
            if is_current(&self.checked, up, repo, reference) {
                count("manifest", "hit");
                return Ok(m.clone());
            }
        }
        let key = format!("{repo}:{reference}");
        let work = Revalidate {
            reg: reg.clone(),
            up: up.clone(),
            repo: repo.to_owned(),
            reference: reference.to_owned(),
            local,
            checked: self.checked.clone(),
            policied: self.policied.clone(),
        };
        let panicked = Err((ErrorCode::Internal, Arc::from("the upstream fetch failed")));
        self.manifests
            .run(key, move || work.run(), panicked)
            .await
            .map_err(|(code, message)| Error::new(code, message.to_string()))
    }

    // ---- blobs -------------------------------------------------------------

    /// A blob `repo` does not have yet: linked if it is stored for another
    /// repository (and the upstream has it for this one), else fetched,
    /// once for all who ask, and streamed as it arrives. `whole`: the
    /// caller needs it stored first (a ranged read).
    pub async fn blob(
        &self,
        reg: &Registry,
        up: &Arc<Upstream>,
        repo: &str,
        digest: &Digest,
        head: bool,
        whole: bool,
    ) -> Result<BlobAnswer, Error> {
        let name = up
            .rule()
            .upstream_name(repo)
            .expect("a repository of this rule")
            .into_owned();
        if reg.blob_stored(digest).await? {
            // Stored for another repository: the upstream's HEAD says
            // this one has it too, and no byte is fetched again.
            up.send(Method::HEAD, &name, &format!("blobs/{digest}"), None)
                .await
                .map_err(|f| f.to_error(up.base(), || Error::blob_unknown(digest)))?;
            count_fetch("head");
            if reg.adopt_blob(repo, digest).await? {
                count("blob", "linked");
                return Ok(BlobAnswer::Stored(reg.blob(repo, digest).await?));
            }
        }
        if head && !whole {
            // A HEAD needs the size, not the bytes: the upstream's HEAD.
            let resp = up
                .send(Method::HEAD, &name, &format!("blobs/{digest}"), None)
                .await
                .map_err(|f| f.to_error(up.base(), || Error::blob_unknown(digest)))?;
            count_fetch("head");
            let size = resp
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            if let Some(size) = size {
                return Ok(BlobAnswer::Size(size));
            }
        }
        let fetches = self.fetches.as_ref().expect("rules have a spool");
        let (fetch, led) = fetches.join(Job {
            upstream: up.clone(),
            registry: reg.clone(),
            repo: repo.to_owned(),
            upstream_name: name,
            digest: digest.clone(),
        });
        count("blob", if led { "miss" } else { "joined" });
        let mut rx = fetch.watch();
        loop {
            let p = rx.borrow_and_update().clone();
            match p.phase {
                Phase::Failed(code, message) => return Err(Error::new(code, message.to_string())),
                Phase::Stored => return Ok(BlobAnswer::Stored(stored(reg, repo, digest).await?)),
                Phase::Receiving | Phase::Received if !whole => {
                    if head {
                        if let Some(size) = p.size {
                            return Ok(BlobAnswer::Size(size));
                        }
                    } else if let Some(body) = spool::follow(&fetch)? {
                        return Ok(BlobAnswer::Arriving { size: p.size, body });
                    }
                }
                _ => {}
            }
            if rx.changed().await.is_err() {
                // The fetch is over; its last word is in the channel.
                let last = rx.borrow().phase.clone();
                return match last {
                    Phase::Failed(code, message) => Err(Error::new(code, message.to_string())),
                    _ => Ok(BlobAnswer::Stored(stored(reg, repo, digest).await?)),
                };
            }
        }
    }
}

/// Whether a cached `reference` may be served without asking upstream: a
/// digest always, a tag within its TTL of its last check.
fn is_current(
    checked: &Mutex<HashMap<String, Instant>>,
    up: &Upstream,
    repo: &str,
    reference: &str,
) -> bool {
    if Digest::looks_like(reference) {
        return true;
    }
    let ttl = Duration::from_secs(up.rule().tag_ttl_secs);
    let checked = checked.lock().expect("checked tags");
    checked
        .get(&format!("{repo}:{reference}"))
        .is_some_and(|at| at.elapsed() < ttl)
}

/// A fetched blob as `repo` sees it (linked into it if the fetch was for
/// another of our names for the same upstream repository).
async fn stored(reg: &Registry, repo: &str, digest: &Digest) -> Result<BlobInfo, Error> {
    match reg.blob(repo, digest).await {
        Err(e) if e.code == ErrorCode::BlobUnknown && reg.adopt_blob(repo, digest).await? => {
            reg.blob(repo, digest).await
        }
        other => other,
    }
}

/// One upstream round for a manifest: check a cached tag with `HEAD`, or
/// fetch what is missing or has moved.
struct Revalidate {
    reg: Registry,
    up: Arc<Upstream>,
    repo: String,
    reference: String,
    local: Option<Arc<StoredManifest>>,
    checked: Arc<Mutex<HashMap<String, Instant>>>,
    policied: Arc<Mutex<HashSet<String>>>,
}

impl Revalidate {
    async fn run(self) -> ManifestOutcome {
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
        let path = format!("manifests/{}", self.reference);
        // A round that ended just before this one began may have done it.
        match self.reg.manifest_shared(&self.repo, &self.reference).await {
            Ok(m) if is_current(&self.checked, &self.up, &self.repo, &self.reference) => {
                return Ok(m)
            }
            _ => {}
        }
        if let Some(m) = &self.local {
            match self
                .up
                .send(Method::HEAD, &name, &path, Some(MANIFEST_ACCEPT))
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
        let resp = match self
            .up
            .send(Method::GET, &name, &path, Some(MANIFEST_ACCEPT))
            .await
        {
            Ok(r) => r,
            Err(f) => {
                return match &self.local {
                    Some(m) => Ok(self.stale(m, &f)),
                    None => {
                        Err(f.to_error(self.up.base(), || Error::manifest_unknown(&self.reference)))
                    }
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
            .map_err(|f| f.to_error(self.up.base(), || Error::manifest_unknown(&self.reference)))?;
        let digest = self
            .reg
            .put_cached_manifest(
                &self.repo,
                &self.reference,
                content_type.as_deref(),
                &body,
                served.as_ref(),
            )
            .await?;
        count("manifest", "miss");
        if !Digest::looks_like(&self.reference) {
            self.mark_checked();
        }
        if let Some(old) = self.local.as_ref().filter(|m| m.digest != digest) {
            tracing::info!(repository = %self.repo, tag = %self.reference, from = %old.digest, to = %digest, upstream = %self.up.base(), "pull-through: tag moved upstream; cached the new manifest");
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

fn served_digest(headers: &reqwest::header::HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
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

/// Pull-through lookups, by kind (`manifest`, `blob`) and result.
pub fn count(kind: &'static str, result: &'static str) {
    metrics::counter!("registry_pullthrough_requests_total", "kind" => kind, "result" => result)
        .increment(1);
}

/// Requests made to upstreams, by kind (`manifest`, `blob`, `head`).
pub fn count_fetch(kind: &'static str) {
    metrics::counter!("registry_upstream_fetches_total", "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_eviction_policy_is_a_valid_lifecycle_policy() {
        let p = super::eviction_policy(30);
        let parsed = storage::lifecycle::Policy::parse(&p).expect("valid");
        assert_eq!(parsed.rules.len(), 1);
    }
}
