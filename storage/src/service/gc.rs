//! Online garbage collection: while pushes and pulls go on, on one node or
//! many. The review queues say what may have become garbage and since when
//! (see `metadata::gc` for the rules and README, "Garbage collection", for
//! the safety argument); a run reviews what is due, in batches, removes
//! unreferenced manifests, then blob links, then blobs, and last deletes the
//! blobs' bytes in batches while holding their fences.

use super::Registry;
use crate::blobstore::BlobRef;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{self, GcBlob, GcClock, GcManifest, GcStep};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Rows reviewed per transaction: small enough that a push waits at most
/// a few milliseconds for the single SQLite writer, large enough to amortize
/// the commit.
const BATCH: i64 = 250;
/// While pushes are writing, a collection pauses after each transaction
/// this many times as long as the transaction took: it takes at most a
/// fifth of the database's write time from them (measured: without the
/// pause, pushes during a collection ran at a tenth of their rate).
const YIELD: u32 = 4;
/// Objects deleted at once (S3 deletes up to 1000 per request).
const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Unreferenced at least this long before anything is removed.
    pub grace: Duration,
    /// Manifests a tag left stay at least this long.
    pub retention: Duration,
    pub dry_run: bool,
    /// The time the run takes as now (unix seconds); tests move it forward.
    pub now: Option<i64>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 86_400),
            dry_run: false,
            now: None,
        }
    }
}

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Queue rows reviewed.
    pub reviewed: u64,
    pub manifests_removed: u64,
    pub links_removed: u64,
    pub blobs_removed: u64,
    /// Bytes of the blobs removed.
    pub bytes_freed: u64,
    /// Objects whose deletion failed (left in the store: `registry check`
    /// lists them; their rows are gone, so nothing refers to them).
    pub delete_failures: u64,
    pub seconds: f64,
    /// The manifests and blobs removed (the first 1000 of each).
    pub manifests: Vec<GcManifest>,
    pub blobs: Vec<GcBlob>,
}

const LISTED: usize = 1000;

/// What collections on this node have done since it started (for
/// operators, `GET /api/v1/gc`, and the metrics endpoint).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcTotals {
    pub runs: u64,
    pub manifests_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub seconds: f64,
    /// The last run's report (without its lists).
    pub last: Option<GcReport>,
    /// Unix seconds the last run finished.
    pub last_finished: Option<i64>,
}

impl GcReport {
    fn add(&mut self, step: &GcStep) {
        self.reviewed += step.reviewed;
        self.manifests_removed += step.manifests.len() as u64;
        self.links_removed += step.links.len() as u64;
        self.blobs_removed += step.blobs.len() as u64;
        self.bytes_freed += step.blobs.iter().map(|b| b.size).sum::<u64>();
        let room = LISTED.saturating_sub(self.manifests.len());
        self.manifests
            .extend(step.manifests.iter().take(room).cloned());
        let room = LISTED.saturating_sub(self.blobs.len());
        self.blobs.extend(step.blobs.iter().take(room).cloned());
    }
}

impl Registry {
    /// Collect garbage now. `progress` is told after every batch. Refused
    /// (`UNAVAILABLE`, retry later) while another collection runs, on this
    /// node or another.
    pub async fn gc(
        &self,
        opts: GcOptions,
        progress: &(dyn Fn(&GcReport) + Send + Sync),
    ) -> Result<GcReport> {
        let started = Instant::now();
        // Read again for every batch: what this run's own deletes queue
        // (the layers of a manifest it removed) is due within the run once
        // the grace period allows.
        let clock = || {
            let real = metadata::now();
            let now = opts.now.unwrap_or(real);
            GcClock {
                now,
                grace_ms: opts.grace.as_millis() as i64,
                retention: opts.retention.as_secs() as i64,
                shift_ms: (now - real) * 1000,
            }
        };
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        if opts.dry_run {
            let all = self.meta.gc_dry_run(clock()).await?;
            report.add(&all);
            report.seconds = started.elapsed().as_secs_f64();
            progress(&report);
            return Ok(report);
        }
        let Some(lease) = self.meta.try_gc_lease().await? else {
            return Err(Error::new(
                ErrorCode::Unavailable,
                "a garbage collection is already running; try again when it has finished",
            ));
        };
        let outcome = self.collect(&clock, progress, &mut report, started).await;
        lease.release().await;
        outcome?;
        report.seconds = started.elapsed().as_secs_f64();
        {
            let mut t = self.gc_totals.lock().unwrap_or_else(|e| e.into_inner());
            t.runs += 1;
            t.manifests_removed += report.manifests_removed;
            t.blobs_removed += report.blobs_removed;
            t.bytes_freed += report.bytes_freed;
            t.seconds += report.seconds;
            t.last = Some(GcReport {
                manifests: Vec::new(),
                blobs: Vec::new(),
                ..report.clone()
            });
            t.last_finished = Some(metadata::now());
        }
        metrics::counter!("registry_gc_runs_total").increment(1);
        for (kind, n) in [
            ("manifest", report.manifests_removed),
            ("link", report.links_removed),
            ("blob", report.blobs_removed),
        ] {
            metrics::counter!("registry_gc_removed_total", "kind" => kind).increment(n);
        }
        metrics::counter!("registry_gc_freed_bytes_total").increment(report.bytes_freed);
        metrics::histogram!("registry_gc_duration_seconds").record(report.seconds);
        tracing::info!(
            manifests = report.manifests_removed,
            links = report.links_removed,
            blobs = report.blobs_removed,
            bytes = report.bytes_freed,
            seconds = report.seconds,
            "garbage collection finished"
        );
        Ok(report)
    }

    /// The batches of a run, under the lease.
    async fn collect(
        &self,
        clock: &(dyn Fn() -> GcClock + Send + Sync),
        progress: &(dyn Fn(&GcReport) + Send + Sync),
        report: &mut GcReport,
        started: Instant,
    ) -> Result<()> {
        let mut orphaned: Vec<String> = Vec::new();
        loop {
            let clock = clock();
            let m = self.yielding(self.meta.gc_manifests(clock, BATCH)).await?;
            for gone in &m.manifests {
                if let Ok(d) = gone.digest.parse::<Digest>() {
                    self.cache.drop_manifest(&gone.repo, &d);
                }
            }
            let l = self.yielding(self.meta.gc_links(clock, BATCH)).await?;
            for (repo, digest) in &l.links {
                if let Ok(d) = digest.parse::<Digest>() {
                    self.cache.drop_link(repo, &d);
                }
            }
            orphaned.extend(l.orphaned.iter().cloned());
            let mut due = self.meta.gc_due_blobs(clock, BATCH).await?;
            let forced: Vec<String> = std::mem::take(&mut orphaned);
            due.extend(forced.iter().cloned());
            due.sort();
            due.dedup();
            let b = self.collect_blobs(clock, &due, &forced, report).await?;
            let reviewed = m.reviewed + l.reviewed + b.reviewed;
            // Another round while a step was cut short, or while this one
            // removed something (what that queued may be due already).
            let removed = m.manifests.len() + l.links.len() + b.blobs.len();
            let more = m.more || l.more || due.len() as i64 >= BATCH || removed > 0;
            report.add(&m);
            report.add(&l);
            report.add(&b);
            report.seconds = started.elapsed().as_secs_f64();
            progress(report);
            if reviewed == 0 || !more {
                return Ok(());
            }
        }
    }

    /// What collections on this node have done since it started.
    pub fn gc_totals(&self) -> GcTotals {
        self.gc_totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Run one step (a write transaction); if pushes wrote meanwhile, give
    /// them the database for [`YIELD`] times as long before the next.
    async fn yielding<T>(&self, step: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let writes = self.writes();
        let t = Instant::now();
        let out = step.await?;
        if self.writes() != writes {
            tokio::time::sleep(t.elapsed() * YIELD).await;
        }
        Ok(out)
    }

    /// Remove the rows, then the bytes, of those of `due` no one uses,
    /// holding their fences throughout (busy ones wait for the next run).
    async fn collect_blobs(
        &self,
        clock: GcClock,
        due: &[String],
        forced: &[String],
        report: &mut GcReport,
    ) -> Result<GcStep> {
        if due.is_empty() {
            return Ok(GcStep::default());
        }
        let (taken, fences) = self.meta.take_fences(due).await?;
        let forced: Vec<String> = forced
            .iter()
            .filter(|d| taken.contains(d))
            .cloned()
            .collect();
        let step = match self
            .yielding(self.meta.gc_blobs(clock, &taken, &forced))
            .await
        {
            Ok(step) => step,
            Err(e) => {
                fences.release().await;
                return Err(e);
            }
        };
        // Rows first, bytes second: a crash in between leaves bytes nothing
        // refers to (`registry check` lists them), never a row without bytes.
        for chunk in step.blobs.chunks(DELETE_BATCH) {
            let parsed: Vec<(Digest, Option<String>)> = chunk
                .iter()
                .filter_map(|b| Some((b.digest.parse().ok()?, b.location.clone())))
                .collect();
            let refs: Vec<BlobRef<'_>> = parsed
                .iter()
                .map(|(d, l)| BlobRef {
                    digest: d,
                    location: l.as_deref(),
                })
                .collect();
            for (blob, outcome) in refs.iter().zip(self.blobs.delete_many(&refs).await) {
                if let Err(e) = outcome {
                    report.delete_failures += 1;
                    tracing::warn!(digest = %blob.digest, error = %e, "garbage collection could not delete a blob's bytes");
                }
            }
        }
        fences.release().await;
        Ok(step)
    }
}
