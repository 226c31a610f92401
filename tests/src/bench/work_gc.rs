//! Online garbage collection at scale, on a node of its own: a registry of
//! 100,000 blobs and 20,000 manifests (a config and four layers each, in
//! 100 repositories), 10 % of the images untagged, one collection through
//! the API; then small-image pushes during a collection against the same
//! pushes just before it.

use super::client::{Conn, ReqBody, Target};
use super::load::{run_ops, Limit};
use super::ops::{self, SmallImage};
use super::report::Better;
use super::servers::Server;
use super::Bench;
use anyhow::{bail, Context as _, Result};
use hyper::Method;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const GC_RUN: &str = "garbage collection, one run: 10 % of";
pub const GC_BLOBS_PER_SEC: &str = "garbage collection: blobs reviewed or freed per second";
pub const PUSH_BEFORE: &str = "push two-layer 4 KiB images, 8 clients, just before a collection";
pub const PUSH_DURING: &str = "push two-layer 4 KiB images, 8 clients, during a collection";
pub const GC_DURING: &str =
    "garbage collection during the pushes: share of the images untagged for it that it removed";

/// Grace period of the collection during the pushes: what was untagged for
/// it is due by the time it starts, the pushes' own new links are not.
const DURING_GRACE: u64 = 4;

const REPOS: u64 = 100;
const LAYER: usize = 256;
const CLIENTS: usize = 8;

fn repo(n: u64) -> String {
    format!("gc/r{}", n % REPOS)
}

/// One collection through the API with `grace` seconds; its report and
/// the wall time.
async fn collect(target: &Target, grace: u64) -> Result<(serde_json::Value, Duration)> {
    let t = Instant::now();
    let text = reqwest::Client::new()
        .post(format!("http://{}/api/v1/gc", target.addr))
        .json(&serde_json::json!({ "grace_secs": grace }))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let took = t.elapsed();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("collection answer: {text}"))?;
    match last.get("report") {
        Some(r) => Ok((r.clone(), took)),
        None => bail!("collection failed: {text}"),
    }
}

/// Delete the tags of every tenth image starting at `offset`.
async fn untag_tenth(target: &Target, images: u64, offset: u64) -> Result<u64> {
    let s = run_ops(
        target,
        16,
        Limit::ops(images / 10, Duration::from_secs(3600)),
        move |mut conn: Conn, i| async move {
            let n = i * 10 + offset;
            conn.simple(Method::DELETE, &format!("/v2/{}/manifests/i{n}", repo(n)))
                .await?
                .expect("untag", &[202])?;
            Ok((conn, 0))
        },
    )
    .await?;
    Ok(s.ops)
}

/// `CLIENTS` clients pushing small images until `stop`; pushes completed
/// so far in `done`.
fn pushers(
    target: &Target,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let seed = Arc::new(AtomicU64::new(9 << 40));
    (0..CLIENTS)
        .map(|_| {
            let (target, stop, done, seed) =
                (target.clone(), stop.clone(), done.clone(), seed.clone());
            tokio::spawn(async move {
                let mut conn = Conn::open(&target).await?;
                while !stop.load(Ordering::Relaxed) {
                    let s = seed.fetch_add(1, Ordering::Relaxed);
                    SmallImage::new(s, 2, 4096)
                        .push(&mut conn, "gc/pushes", &format!("p{s}"))
                        .await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect()
}

/// The counts of a collection report, without its lists.
fn counts(r: &serde_json::Value) -> String {
    format!(
        "reviewed {}, removed {} manifests, {} links, {} blobs in {:.3}s",
        r["reviewed"],
        r["manifests_removed"],
        r["links_removed"],
        r["blobs_removed"],
        r["seconds"].as_f64().unwrap_or(0.0)
    )
}

pub async fn gc(b: &mut Bench, i: usize) -> Result<()> {
    if b.subjects[i].target.name != "ours" || b.subjects[i].server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    let node = Server::start_ours_with(
        &bin,
        &b.work.join("gc"),
        "gc node",
        &[
            ("REGISTRY_GC_INTERVAL_SECS", "0"),
            ("REGISTRY_GC_RETENTION_SECS", "0"),
        ],
    )?;
    let target = node.target.clone();
    let images = b.sizes.gc_manifests;
    let blobs = images * 5;

    // The registry: every image its own config and four layers.
    let t = Instant::now();
    run_ops(
        &target,
        32,
        Limit::ops(images, Duration::from_secs(3600)),
        |mut conn: Conn, n| async move {
            let img = SmallImage::new((7 << 40) + n, 4, LAYER);
            for (digest, bytes) in &img.blobs {
                ops::push_blob(&mut conn, &repo(n), digest, ReqBody::bytes(bytes.clone())).await?;
            }
            ops::put_manifest(&mut conn, &repo(n), &format!("i{n}"), &img.manifest).await?;
            Ok((conn, 0))
        },
    )
    .await?;
    eprintln!(
        "gc: {images} images ({blobs} blobs) pushed in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    // The pushes queued every new link for one review: a first collection
    // does those (and finds nothing to free).
    let (first, first_took) = collect(&target, 0).await?;
    eprintln!("gc: first collection: {}", counts(&first));
    let untagged = untag_tenth(&target, images, 0).await?;
    let (report, took) = collect(&target, 0).await?;
    eprintln!(
        "gc: collection of {untagged} untagged images: {}",
        counts(&report)
    );
    let freed = report["blobs_removed"].as_u64().unwrap_or(0);
    if report["manifests_removed"].as_u64() != Some(untagged) || freed != untagged * 5 {
        bail!(
            "the collection removed {report}, expected {untagged} manifests and {} blobs",
            untagged * 5
        );
    }
    let label = format!(
        "{GC_RUN} {blobs} blobs and {images} manifests ({untagged} manifests, {freed} blobs freed)"
    );
    b.report
        .set(&label, "s", Better::Lower, "ours", took.as_secs_f64());
    b.report.set(
        &format!("first collection after {blobs} blob pushes (reviews each new link once)"),
        "s",
        Better::Lower,
        "ours",
        first_took.as_secs_f64(),
    );
    b.report.set(
        GC_BLOBS_PER_SEC,
        "blobs/s",
        Better::Higher,
        "ours",
        blobs as f64 / first_took.as_secs_f64(),
    );

    // Pushes during a collection (the next tenth untagged) against the
    // same pushes just before it, counted by steady clients over both
    // windows. The window before lasts at least five seconds and until the
    // untagging is past the collection's grace period; the collection's
    // report then shows whether it found that garbage due and removed it (a
    // collection with nothing to do would make "during" meaningless). With
    // a grace period, what it removes is the untagged manifests: their
    // links and blobs wait their own grace period (a later run's work).
    let untagged = untag_tenth(&target, images, 1).await?;
    let untagged_at = tokio::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers = pushers(&target, stop.clone(), done.clone());
    // Warm up, then the window before.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, t0) = (done.load(Ordering::Relaxed), Instant::now());
    let due = untagged_at + Duration::from_secs(DURING_GRACE + 1);
    tokio::time::sleep_until(due.max(tokio::time::Instant::now() + Duration::from_secs(5))).await;
    let (c1, t1) = (done.load(Ordering::Relaxed), Instant::now());
    let (during_report, _) = collect(&target, DURING_GRACE).await?;
    let (c2, t2) = (done.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await??;
    }
    let before = (c1 - c0) as f64 / (t1 - t0).as_secs_f64();
    let during = (c2 - c1) as f64 / (t2 - t1).as_secs_f64();
    eprintln!(
        "gc: pushes {before:.0}/s before, {during:.0}/s ({} pushes) during a collection of {:.2}s ({})",
        c2 - c1,
        (t2 - t1).as_secs_f64(),
        counts(&during_report)
    );
    let removed = during_report["manifests_removed"].as_u64().unwrap_or(0);
    let share = removed as f64 / untagged.max(1) as f64;
    b.report
        .set(GC_DURING, "share", Better::Higher, "ours", share);
    b.report
        .set(PUSH_BEFORE, "images/s", Better::Higher, "ours", before);
    b.report
        .set(PUSH_DURING, "images/s", Better::Higher, "ours", during);
    drop(node);
    Ok(())
}
