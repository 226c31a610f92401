//! Lifecycle policies (ECR's, see `crate::lifecycle`) on the registry:
//! setting, previewing and applying them, and the pull times
//! `sinceImagePulled` needs, kept in memory and written in batches (never a
//! database write per pull).

use super::Registry;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::lifecycle::{evaluate, Expiry, Policy};
use crate::names::validate_name;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Pulls since the last flush: digest → repository → unix seconds. Keyed
/// by digest first so that noting a pull allocates nothing when the pair
/// is already there (the hot path of a fleet pulling one image).
#[derive(Default, Clone)]
pub(crate) struct PullLog(Arc<Mutex<HashMap<Digest, HashMap<String, i64>>>>);

impl PullLog {
    fn note(&self, repo: &str, digest: &Digest, at: i64) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let repos = match log.get_mut(digest) {
            Some(r) => r,
            None => log.entry(digest.clone()).or_default(),
        };
        match repos.get_mut(repo) {
            Some(t) => *t = (*t).max(at),
            None => {
                repos.insert(repo.to_owned(), at);
            }
        }
    }

    fn take(&self) -> Vec<(String, String, i64)> {
        let log = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = Vec::new();
        for (digest, repos) in log {
            for (repo, at) in repos {
                out.push((repo, digest.to_string(), at));
            }
        }
        out
    }
}

/// What applying a policy did to one repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Expired {
    pub repository: String,
    pub images: Vec<Expiry>,
}

impl Registry {
    /// Events after `after` (for webhooks), oldest first.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<crate::metadata::Event>> {
        self.meta.events_after(after, limit).await
    }

    /// An endpoint's delivery cursor; a new endpoint starts at the newest
    /// event (it is told of what happens from now on, not of the past).
    pub async fn event_cursor(&self, endpoint: &str) -> Result<i64> {
        match self.meta.event_cursor(endpoint).await? {
            Some(id) => Ok(id),
            None => {
                let last = self.meta.last_event().await?;
                self.meta.set_event_cursor(endpoint, last).await?;
                Ok(last)
            }
        }
    }

    pub async fn set_event_cursor(&self, endpoint: &str, id: i64) -> Result<()> {
        self.meta.set_event_cursor(endpoint, id).await
    }

    /// Forget events every endpoint has, and any older than `max_age_ms`
    /// (the bound of the queue); how many.
    pub async fn trim_events(&self, endpoints: &[String], max_age_ms: i64) -> Result<u64> {
        let mut upto = self.meta.last_event().await?;
        for e in endpoints {
            upto = upto.min(self.meta.event_cursor(e).await?.unwrap_or(0));
        }
        self.meta
            .trim_events(upto, crate::metadata::now_ms() - max_age_ms)
            .await
    }

    /// The right to deliver to `endpoint` (one node at a time).
    pub async fn try_notify_lease(
        &self,
        endpoint: &str,
    ) -> Result<Option<crate::blobstore::SessionLock>> {
        self.meta
            .try_lock_upload(&format!("\0notify:{endpoint}"))
            .await
    }

    /// A manifest was pulled (a `GET`): remembered, written by
    /// [`Registry::flush_pulls`].
    pub fn note_pull(&self, repo: &str, digest: &Digest) {
        self.pulls.note(repo, digest, self.now());
    }

    /// Write the pulls noted so far; how many. Put back on failure.
    pub async fn flush_pulls(&self) -> Result<usize> {
        let pulls = self.pulls.take();
        if pulls.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.meta.record_pulls(&pulls).await {
            for (repo, digest, at) in &pulls {
                if let Ok(d) = digest.parse() {
                    self.pulls.note(repo, &d, *at);
                }
            }
            return Err(e);
        }
        Ok(pulls.len())
    }

    /// The policy of `repo`, if it has one (`NAME_UNKNOWN`: no repository).
    pub async fn lifecycle_policy(&self, repo: &str) -> Result<Option<Policy>> {
        validate_name(repo)?;
        match self.meta.lifecycle_policy(repo).await? {
            None => Err(Error::name_unknown(repo)),
            Some(None) => Ok(None),
            Some(Some(text)) => Policy::parse(&text).map(Some),
        }
    }

    /// Validate and set `repo`'s policy (the repository is created if need
    /// be, so a policy can be in place before the first push).
    pub async fn set_lifecycle_policy(&self, repo: &str, text: &str) -> Result<Policy> {
        validate_name(repo)?;
        let policy = Policy::parse(text)?;
        let canonical = serde_json::to_string(&policy).map_err(Error::internal)?;
        // The repository is created if need be, within its quota.
        let created = self.admit_new_repo(repo).await?;
        self.meta
            .set_lifecycle_policy(repo, Some(&canonical))
            .await?;
        self.note_usage(repo, i64::from(created), 0);
        Ok(policy)
    }

    pub async fn delete_lifecycle_policy(&self, repo: &str) -> Result<()> {
        validate_name(repo)?;
        if self.meta.lifecycle_policy(repo).await?.is_none() {
            return Err(Error::name_unknown(repo));
        }
        self.meta.set_lifecycle_policy(repo, None).await
    }

    /// What `policy` (or the repository's own) would expire now.
    pub async fn lifecycle_preview(
        &self,
        repo: &str,
        policy: Option<&Policy>,
    ) -> Result<Vec<Expiry>> {
        let stored;
        let policy = match policy {
            Some(p) => {
                validate_name(repo)?;
                p
            }
            None => {
                stored = self.lifecycle_policy(repo).await?.ok_or_else(|| {
                    Error::new(
                        ErrorCode::NotFound,
                        format!("{repo} has no lifecycle policy"),
                    )
                })?;
                &stored
            }
        };
        // Pull times noted in memory count too.
        self.flush_pulls().await?;
        let images = self.meta.lifecycle_images(repo).await?;
        Ok(evaluate(policy, &images, self.now()))
    }

    /// Apply `repo`'s policy now: the images it selects are deleted (their
    /// tags with them, recorded in the tag history); garbage collection
    /// frees their blobs.
    pub async fn lifecycle_run(&self, repo: &str) -> Result<Vec<Expiry>> {
        let expired = self.lifecycle_preview(repo, None).await?;
        for e in &expired {
            let d: Digest = e.digest.parse()?;
            // Recorded as the policy's doing (or the user who ran it).
            let who = self.actor().unwrap_or("lifecycle");
            let deleted = self.meta.delete_manifest(repo, &d, Some(who)).await;
            self.cache.drop_manifest(repo, &d);
            for tag in &e.tags {
                self.cache.drop_tag(repo, tag);
            }
            deleted?;
        }
        if !expired.is_empty() {
            tracing::info!(
                repository = repo,
                images = expired.len(),
                "lifecycle policy expired images"
            );
        }
        Ok(expired)
    }

    /// Apply every repository's policy (the periodic run).
    pub async fn lifecycle_run_all(&self) -> Result<Vec<Expired>> {
        let mut out = Vec::new();
        for (repo, _) in self.meta.lifecycle_repos().await? {
            match self.lifecycle_run(&repo).await {
                Ok(images) if images.is_empty() => {}
                Ok(images) => out.push(Expired {
                    repository: repo,
                    images,
                }),
                // One bad repository does not stop the others.
                Err(e) => {
                    tracing::warn!(repository = %repo, error = %e, "lifecycle policy run failed")
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_log_keeps_the_latest_time_per_image_and_empties_on_take() {
        let log = PullLog::default();
        let d = Digest::sha256_of(b"m");
        log.note("a", &d, 5);
        log.note("a", &d, 3);
        log.note("b", &d, 4);
        let mut taken = log.take();
        taken.sort();
        assert_eq!(
            taken,
            vec![
                ("a".into(), d.to_string(), 5),
                ("b".into(), d.to_string(), 4)
            ]
        );
        assert!(log.take().is_empty());
    }
}
