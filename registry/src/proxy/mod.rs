//! Pull-through caching (`[[cache]]` rules): repositories under a rule's
//! prefix are filled from an upstream registry on a miss and then served
//! from our own store. Each missing manifest or blob is fetched once
//! however many clients ask at the same moment; tags are checked upstream
//! again once their TTL has passed, with a `HEAD`; while the upstream is
//! down or throttling, what is cached is served (stale tags included).

mod flight;
mod limits;
mod manifest;
pub mod rules;
mod spool;
pub mod upstream;

pub use limits::PullThroughConfig;
pub use manifest::eviction_policy;
pub use rules::CacheRule;

use limits::Limits;
use manifest::Revalidate;
use reqwest::Method;
use spool::{Fetches, Job, Phase};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storage::blobstore::ByteStream;
use storage::metadata::StoredManifest;
use storage::names::Reference;
use storage::{BlobInfo, Digest, Error, ErrorCode, Registry};
use upstream::{Target, Upstream};

/// What a pull of a manifest turned into (cloneable, for the waiters of
/// one flight).
type ManifestOutcome = Result<Arc<StoredManifest>, (ErrorCode, Arc<str>)>;

/// The pull-through caches of one registry node.
pub struct Proxy {
    /// The `[[cache]]` rules of the configuration, then those made through
    /// the ECR API (kept in the database: [`Proxy::set_api_rules`]).
    upstreams: std::sync::RwLock<Arc<Vec<Arc<Upstream>>>>,
    configured: Vec<Arc<Upstream>>,
    /// With the limits they share; made with the first rule.
    fetches: std::sync::OnceLock<Fetches>,
    /// Where the spool goes, for a node whose first rule comes later.
    spool: Option<(PullThroughConfig, std::path::PathBuf)>,
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
            upstreams: Default::default(),
            configured: Vec::new(),
            fetches: Default::default(),
            spool: None,
            manifests: Default::default(),
            checked: Default::default(),
            policied: Default::default(),
        }
    }

    pub fn new(
        rules: &[CacheRule],
        config: &PullThroughConfig,
        data_dir: &Path,
    ) -> Result<Proxy, String> {
        let configured: Vec<Arc<Upstream>> = rules
            .iter()
            .map(|r| Upstream::new(r.clone()).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let proxy = Proxy {
            upstreams: std::sync::RwLock::new(Arc::new(configured.clone())),
            configured,
            spool: Some((config.clone(), data_dir.to_owned())),
            ..Proxy::off()
        };
        if !rules.is_empty() {
            proxy.prepare_spool()?;
        }
        Ok(proxy)
    }

    /// The spool and its limits, made once, with the first rule.
    fn prepare_spool(&self) -> Result<(), String> {
        if self.fetches.get().is_some() {
            return Ok(());
        }
        let Some((config, data_dir)) = &self.spool else {
            return Err("this node has no spool for pull-through fetches".into());
        };
        let dir = config.spool_in(data_dir);
        let limits = Arc::new(Limits::new(dir.clone(), config, limits::statvfs));
        let fetches = Fetches::new(limits).map_err(|e| {
            format!(
                "cannot prepare the spool directory {} for pull-through fetches: {e}",
                dir.display()
            )
        })?;
        let _ = self.fetches.set(fetches);
        Ok(())
    }

    /// Replace the rules made through the ECR API (the configuration's
    /// come first and keep their prefixes); a rule whose prefix the
    /// configuration has is left out.
    pub fn set_api_rules(&self, rules: &[CacheRule]) -> Result<(), String> {
        let mut all = self.configured.clone();
        for r in rules {
            if all.iter().any(|u| u.rule().prefix == r.prefix) {
                continue;
            }
            all.push(Arc::new(Upstream::new(r.clone())?));
        }
        if all.len() > self.configured.len() {
            self.prepare_spool()?;
        }
        *self.upstreams.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(all);
        Ok(())
    }

    /// The configuration's rules.
    pub fn configured_rules(&self) -> Vec<CacheRule> {
        self.configured.iter().map(|u| u.rule().clone()).collect()
    }

    /// Whether `prefix` is a rule of the configuration (not the API's).
    pub fn configured(&self, prefix: &str) -> bool {
        self.configured.iter().any(|u| u.rule().prefix == prefix)
    }

    /// The upstream `repo` is a cache of, if it is one.
    pub fn upstream_of(&self, repo: &str) -> Option<Arc<Upstream>> {
        let all = self
            .upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.iter()
            .find(|u| u.rule().upstream_name(repo).is_some())
            .cloned()
    }

    /// The rule's upstream for the web view's marking.
    pub fn cached_from(&self, repo: &str) -> Option<String> {
        self.upstream_of(repo).map(|u| u.base().to_owned())
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
        // Before anything: only a tag or a digest may go upstream. One
        // that can name nothing is unknown, as in any repository.
        let parsed = Reference::parse(reference).map_err(|_| Error::manifest_unknown(reference))?;
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
            limits: self.fetches().limits().clone(),
            repo: repo.to_owned(),
            reference: parsed,
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
            up.send(Method::HEAD, &name, Target::Blob(digest), None)
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
                .send(Method::HEAD, &name, Target::Blob(digest), None)
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
        let (fetch, led) = self.fetches().join(Job {
            limit: blob_limit(reg, up),
            upstream: up.clone(),
            registry: reg.clone(),
            repo: repo.to_owned(),
            upstream_name: name,
            digest: digest.clone(),
        })?;
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

impl Proxy {
    fn fetches(&self) -> &Fetches {
        self.fetches.get().expect("rules have a spool")
    }
}

/// The largest blob `up` may fetch into `reg`: the rule's limit, or the
/// registry's own when lower (a larger one could not be stored anyway).
fn blob_limit(reg: &Registry, up: &Upstream) -> u64 {
    let own = reg.policy().max_blob_bytes.unwrap_or(u64::MAX);
    up.rule().max_blob_bytes.min(own)
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

fn served_digest(headers: &reqwest::header::HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
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

/// Fetches refused or cut off by a limit, by reason (`busy`, `low_disk`,
/// `too_large`, `bad_bytes`).
pub fn refused(reason: &'static str) {
    metrics::counter!("registry_pullthrough_refusals_total", "reason" => reason).increment(1);
}
