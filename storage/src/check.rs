//! `registry check`: an fsck of the registry. Every blob is re-hashed
//! (in parallel, a few MiB in memory per job), every stored manifest too,
//! and the database and the blob store are checked against each other both
//! ways. `--repair` moves corrupt blobs to the quarantine, forgets blobs
//! whose bytes are gone (their links go, so clients push them again) and
//! moves stray files aside; what only a client can fix is reported.

use crate::blobstore::{BlobRef, BlobStore, Listed};
use crate::digest::{Digest, Hasher};
use crate::error::Result;
use crate::service::Registry;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub repair: bool,
    /// Blobs hashed at once.
    pub jobs: usize,
    /// Prefixes of pull-through caches (`hub`): their manifests name
    /// blobs that are fetched on first pull, so those are not missing.
    pub cached_prefixes: Vec<String>,
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum CheckProgress {
    /// Hashing starts: this many blobs and bytes.
    Start { blobs: u64, bytes: u64 },
    /// One more blob of this many bytes is hashed.
    Hashed { bytes: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something is wrong: `check` exits non-zero.
    Problem,
    /// Worth knowing, harmless (garbage that collection or the upload purge
    /// reclaims).
    Note,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    /// What `--repair` did about it.
    pub repaired: Option<String>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub blobs: u64,
    pub bytes: u64,
    pub manifests: u64,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    pub fn problems(&self) -> usize {
        self.count(Severity::Problem)
    }

    pub fn notes(&self) -> usize {
        self.count(Severity::Note)
    }

    pub fn repaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.repaired.is_some())
            .count()
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    fn problem(&mut self, what: String, repaired: Option<String>) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            what,
            repaired,
        });
    }

    fn note(&mut self, what: String) {
        self.findings.push(Finding {
            severity: Severity::Note,
            what,
            repaired: None,
        });
    }
}

/// Hash a committed blob's bytes.
async fn hash_blob(store: &dyn BlobStore, blob: BlobRef<'_>) -> Result<Digest> {
    let mut hasher = Hasher::new(blob.digest.algorithm());
    let mut stream = store.get(blob, None).await?;
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
    }
    Ok(hasher.finish())
}

/// A blob to re-hash: what the database says of it, if anything.
struct ToHash {
    digest: Digest,
    location: Option<String>,
    size: u64,
    recorded: Option<u64>,
}

impl Registry {
    pub async fn check(
        &self,
        opts: CheckOptions,
        progress: &(dyn Fn(CheckProgress) + Send + Sync),
    ) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let store = self.store();
        let meta = self.meta();
        let listing = store.list().await?;
        // Every object by the store's name for it.
        let mut listed: HashMap<String, &Listed> =
            listing.blobs.iter().map(|l| (l.key.clone(), l)).collect();
        let mut work = Vec::new();
        let mut missing = Vec::new();
        for (name, size, location) in meta.blob_rows().await? {
            let Ok(digest) = name.parse::<Digest>() else {
                report.problem(
                    format!("the database holds an invalid digest {name:?}"),
                    None,
                );
                continue;
            };
            let key = store.key_of(BlobRef {
                digest: &digest,
                location: location.as_deref(),
            });
            match listed.remove(&key) {
                Some(l) => work.push(ToHash {
                    digest,
                    location,
                    size: l.size,
                    recorded: Some(size),
                }),
                None => missing.push((name, location)),
            }
        }
        // Objects no row names: hash those named by their digest (a note if
        // whole, a problem if corrupt); others are just unreferenced.
        let mut unreferenced: Vec<&Listed> = listed.into_values().collect();
        unreferenced.sort_by(|a, b| a.key.cmp(&b.key));
        for l in unreferenced {
            match &l.digest {
                Some(d) => work.push(ToHash {
                    digest: d.clone(),
                    location: None,
                    size: l.size,
                    recorded: None,
                }),
                None => report.note(format!(
                    "object {} ({} bytes) has no database row: unreferenced (an interrupted \
                     push or a delete); garbage collection reclaims it",
                    l.key, l.size
                )),
            }
        }

        // Re-hash every blob.
        report.blobs = work.len() as u64;
        report.bytes = work.iter().map(|w| w.size).sum();
        progress(CheckProgress::Start {
            blobs: report.blobs,
            bytes: report.bytes,
        });
        let hashed: Vec<(&ToHash, Result<Digest>)> = futures::stream::iter(&work)
            .map(|w| async move {
                let blob = BlobRef {
                    digest: &w.digest,
                    location: w.location.as_deref(),
                };
                let actual = hash_blob(store, blob).await;
                progress(CheckProgress::Hashed { bytes: w.size });
                (w, actual)
            })
            .buffer_unordered(opts.jobs.max(1))
            .collect()
            .await;
        let mut lost = Vec::new();
        for (w, actual) in hashed {
            let name = w.digest.to_string();
            let size = w.size;
            let blob = BlobRef {
                digest: &w.digest,
                location: w.location.as_deref(),
            };
            match actual {
                Ok(actual) if actual != w.digest => {
                    let repaired = if opts.repair {
                        store.quarantine(blob).await?;
                        let repos = meta.drop_blob(&name).await?;
                        Some(format!(
                            "moved to the quarantine; unlinked from {} repositor{} ({}): clients push it again",
                            repos.len(),
                            if repos.len() == 1 { "y" } else { "ies" },
                            repos.join(", ")
                        ))
                    } else {
                        None
                    };
                    report.problem(
                        format!("blob {name} is corrupt: its bytes hash to {actual}"),
                        repaired,
                    );
                    lost.push(name);
                }
                Ok(_) => match w.recorded {
                    None => report.note(format!(
                        "blob {name} ({size} bytes) has no database row: unreferenced \
                         (an interrupted push or a delete); garbage collection reclaims it"
                    )),
                    Some(recorded) if recorded != size => report.problem(
                        format!("blob {name} has {size} bytes, the database records {recorded}"),
                        None,
                    ),
                    Some(_) => {}
                },
                Err(e) => report.problem(format!("blob {name} cannot be read: {e}"), None),
            }
        }

        // Database -> store.
        missing.sort();
        for (name, _) in missing {
            let repaired = if opts.repair {
                let repos = meta.drop_blob(&name).await?;
                Some(format!(
                    "forgotten; unlinked from {}: clients push it again",
                    repos.join(", ")
                ))
            } else {
                None
            };
            report.problem(
                format!("blob {name} is in the database but its bytes are missing"),
                repaired,
            );
        }

        for stray in &listing.strays {
            report.problem(
                format!("{stray} is not a blob of this registry (unexpected name or type)"),
                None,
            );
        }

        // Manifests: their bytes against their digest, and what they name.
        let mut bad_manifests = Vec::new();
        report.manifests = meta
            .each_manifest(&mut |repo: String, digest: String, content: Vec<u8>| {
                let ok = digest
                    .parse::<Digest>()
                    .map(|d| Digest::of(d.algorithm(), &content) == d)
                    .unwrap_or(false);
                if !ok {
                    bad_manifests.push(format!(
                        "manifest {repo}@{digest}: its stored bytes do not match its digest (push it again)"
                    ));
                }
            })
            .await?;
        for m in bad_manifests {
            report.problem(m, None);
        }
        let cached = |repo: &str| {
            opts.cached_prefixes.iter().any(|p| {
                repo.strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            })
        };
        for r in meta.dangling_refs().await? {
            if cached(&r.repo) {
                continue;
            }
            let fix = if lost.contains(&r.digest) || opts.repair {
                "push the image again"
            } else {
                "push the image again, or run check --repair first"
            };
            report.problem(
                format!(
                    "manifest {}@{} references {} {} that is not in the repository ({fix})",
                    r.repo, r.manifest, r.kind, r.digest
                ),
                None,
            );
        }

        // Upload staging: debris is the purge's to remove.
        let sessions: std::collections::HashSet<String> = meta
            .uploads(None)
            .await?
            .into_iter()
            .map(|(id, repo)| crate::service::session_key(&repo, &id))
            .collect();
        for (key, _) in store.upload_list().await? {
            if !sessions.contains(&key) {
                report.note(format!(
                    "upload staging file {key} belongs to no session; the upload purge removes it"
                ));
            }
        }
        Ok(report)
    }
}
