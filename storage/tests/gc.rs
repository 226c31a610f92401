//! Online garbage collection on every backend pair: what goes and what
//! stays (grace period, index children, referrers, the retention window),
//! dry runs that report exactly what a run removes, and pushes racing a
//! collection that runs in a loop.

mod common;

use common::{body, image, OCI};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storage::check::CheckOptions;
use storage::{Digest, GcOptions, GcReport, Registry};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DAY: i64 = 86_400;

fn now() -> i64 {
    storage::metadata::now()
}

/// A collection as of `ahead` seconds from now, no grace, no retention.
fn at(ahead: i64) -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        retention: Duration::ZERO,
        dry_run: false,
        now: Some(now() + ahead),
    }
}

async fn gc(reg: &Registry, opts: GcOptions) -> GcReport {
    reg.gc(opts, &|_| {}).await.expect("garbage collection")
}

/// Collect until a run removes nothing.
async fn gc_all(reg: &Registry, ahead: i64) {
    for _ in 0..10 {
        let r = gc(reg, at(ahead)).await;
        if r.manifests_removed + r.links_removed + r.blobs_removed == 0 {
            return;
        }
    }
    panic!("collection did not settle in 10 runs");
}

fn digests(r: &GcReport) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        r.manifests.iter().map(|m| m.digest.clone()).collect(),
        r.blobs.iter().map(|b| b.digest.clone()).collect(),
    )
}

fn layer_of(manifest: &[u8]) -> Digest {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    v["layers"][0]["digest"].as_str().unwrap().parse().unwrap()
}

/// The blob store and the database agree, nothing is unreferenced, and the
/// store holds exactly `blobs` objects.
async fn store_holds_exactly(reg: &Registry, blobs: usize, name: &str) {
    let report = reg
        .check(
            CheckOptions {
                repair: false,
                jobs: 2,
                cached_prefixes: Vec::new(),
            },
            &|_| {},
        )
        .await
        .unwrap();
    let findings: Vec<_> = report.findings.iter().map(|f| f.what.clone()).collect();
    assert!(findings.is_empty(), "{name}: {findings:#?}");
    assert_eq!(report.blobs, blobs as u64, "{name}: objects in the store");
}

async fn readable(reg: &Registry, repo: &str, reference: &str, name: &str) {
    let m = reg
        .manifest(repo, reference)
        .await
        .unwrap_or_else(|e| panic!("{name}: {repo}:{reference}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&m.content).unwrap();
    let mut blobs = vec![v["config"]["digest"].as_str().unwrap().to_owned()];
    for l in v["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_owned());
    }
    for b in blobs {
        let d: Digest = b.parse().unwrap();
        let info = reg
            .blob(repo, &d)
            .await
            .unwrap_or_else(|e| panic!("{name}: {repo} blob {d}: {e}"));
        let stream = reg.blob_bytes(&d, &info, None).await.unwrap();
        use futures::TryStreamExt;
        let bytes: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        let got = Digest::sha256_of(&bytes.concat());
        assert_eq!(got, d, "{name}: {repo} blob {d} reads whole");
    }
}

#[tokio::test]
async fn unreferenced_things_go_after_the_grace_period_and_dry_runs_tell_exactly() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let kept = image(&reg, "team/app", "kept").await;
        reg.put_manifest("team/app", "v1", Some(OCI), &kept)
            .await
            .unwrap();
        let untagged = image(&reg, "team/app", "untagged").await;
        let ud = Digest::sha256_of(&untagged);
        reg.put_manifest("team/app", &ud.to_string(), Some(OCI), &untagged)
            .await
            .unwrap();
        let lone = Digest::sha256_of(b"lone blob");
        reg.upload_monolithic("other/repo", &lone, body(b"lone blob"), None)
            .await
            .unwrap();

        // All of it is fresh: a collection with the default grace keeps it.
        let r = gc(&reg, GcOptions::default()).await;
        assert_eq!(
            (r.manifests_removed, r.links_removed, r.blobs_removed),
            (0, 0, 0),
            "{}: within the grace period",
            b.name
        );

        // An hour on: the dry run and the run agree, to the digest.
        let dry = gc(
            &reg,
            GcOptions {
                dry_run: true,
                ..at(3601)
            },
        )
        .await;
        let real = gc(&reg, at(3601)).await;
        assert_eq!(digests(&dry), digests(&real), "{}", b.name);
        assert_eq!(dry.bytes_freed, real.bytes_freed, "{}", b.name);
        let (manifests, blobs) = digests(&real);
        assert_eq!(manifests, BTreeSet::from([ud.to_string()]), "{}", b.name);
        assert_eq!(
            blobs,
            BTreeSet::from([layer_of(&untagged).to_string(), lone.to_string()]),
            "{}: the untagged image's own layer and the lone blob; the shared config stays",
            b.name
        );
        assert_eq!(
            real.bytes_freed,
            ("untagged".len() + "lone blob".len()) as u64
        );
        // Nothing more to do, and the tagged image is whole.
        gc_all(&reg, 3601).await;
        readable(&reg, "team/app", "v1", b.name).await;
        assert!(reg.manifest("team/app", &ud.to_string()).await.is_err());
        let gone = reg.blob("other/repo", &lone).await;
        assert!(gone.is_err(), "{}: a collected blob is not served", b.name);
        store_holds_exactly(&reg, 2, b.name).await;
    }
}

/// Two single-layer images pushed by digest and an index naming both.
async fn multi_arch(reg: &Registry, repo: &str, salt: &str) -> (Vec<u8>, Vec<Digest>) {
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let m = image(reg, repo, &format!("{salt}-{arch}")).await;
        let d = Digest::sha256_of(&m);
        reg.put_manifest(repo, &d.to_string(), Some(OCI), &m)
            .await
            .unwrap();
        children.push((d, m.len(), arch));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": children.iter().map(|(d, size, arch)| serde_json::json!({
            "mediaType": OCI, "digest": d.to_string(), "size": size,
            "platform": {"os": "linux", "architecture": arch},
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    (index, children.into_iter().map(|(d, ..)| d).collect())
}

#[tokio::test]
async fn an_index_keeps_its_untagged_children_until_it_goes() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let (index, children) = multi_arch(&reg, "team/multi", "m").await;
        let id = reg
            .put_manifest("team/multi", "v1", Some(INDEX), &index)
            .await
            .unwrap()
            .digest;
        gc_all(&reg, 2 * 3600).await;
        for c in &children {
            assert!(
                reg.manifest("team/multi", &c.to_string()).await.is_ok(),
                "{}: a child of a tagged index stays",
                b.name
            );
            readable(&reg, "team/multi", &c.to_string(), b.name).await;
        }
        // config (shared) + two layers.
        store_holds_exactly(&reg, 3, b.name).await;

        reg.delete_manifest("team/multi", &id.to_string())
            .await
            .unwrap();
        gc_all(&reg, 2 * 3600).await;
        for c in &children {
            assert!(
                reg.manifest("team/multi", &c.to_string()).await.is_err(),
                "{}: children of a deleted index go",
                b.name
            );
        }
        store_holds_exactly(&reg, 0, b.name).await;
    }
}

#[tokio::test]
async fn referrers_live_with_their_subject_and_a_tagged_one_keeps_it() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let app = image(&reg, "team/signed", "app").await;
        reg.put_manifest("team/signed", "v1", Some(OCI), &app)
            .await
            .unwrap();
        let sig = common::referrer(&reg, "team/signed", &app).await;
        gc_all(&reg, 2 * 3600).await;
        assert!(
            reg.manifest("team/signed", &sig.to_string()).await.is_ok(),
            "{}: an untagged referrer of a stored image stays",
            b.name
        );

        // A tagged referrer keeps its untagged subject.
        reg.put_manifest(
            "team/signed",
            "sig",
            Some(OCI),
            &reg.manifest("team/signed", &sig.to_string())
                .await
                .unwrap()
                .content,
        )
        .await
        .unwrap();
        reg.delete_manifest("team/signed", "v1").await.unwrap();
        gc_all(&reg, 2 * 3600).await;
        readable(
            &reg,
            "team/signed",
            &Digest::sha256_of(&app).to_string(),
            b.name,
        )
        .await;

        // Neither tagged: the image goes, and its signature with it.
        reg.delete_manifest("team/signed", "sig").await.unwrap();
        gc_all(&reg, 2 * 3600).await;
        for d in [Digest::sha256_of(&app), sig] {
            assert!(
                reg.manifest("team/signed", &d.to_string()).await.is_err(),
                "{}: {d} went",
                b.name
            );
        }
        store_holds_exactly(&reg, 0, b.name).await;
    }
}

#[tokio::test]
async fn what_a_tag_left_stays_restorable_for_the_retention_window() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let v1 = image(&reg, "team/app", "one").await;
        let v2 = image(&reg, "team/app", "two").await;
        reg.put_manifest("team/app", "prod", Some(OCI), &v1)
            .await
            .unwrap();
        reg.put_manifest("team/app", "prod", Some(OCI), &v2)
            .await
            .unwrap();
        let week = GcOptions {
            grace: Duration::ZERO,
            retention: Duration::from_secs(7 * DAY as u64),
            dry_run: false,
            now: None,
        };
        for days in [1, 6] {
            let r = gc(
                &reg,
                GcOptions {
                    now: Some(now() + days * DAY),
                    ..week
                },
            )
            .await;
            assert_eq!(r.manifests_removed, 0, "{}: day {days}", b.name);
        }
        // Still restorable: roll back to it.
        reg.rollback_tag("team/app", "prod", storage::Rollback::Steps(1))
            .await
            .unwrap();
        let d2 = Digest::sha256_of(&v2);
        reg.rollback_tag("team/app", "prod", storage::Rollback::To(d2))
            .await
            .unwrap();
        // Eight days after the tag left v1 for good, it goes.
        let r = gc(
            &reg,
            GcOptions {
                now: Some(now() + 8 * DAY),
                ..week
            },
        )
        .await;
        let (manifests, _) = digests(&r);
        assert_eq!(
            manifests,
            BTreeSet::from([Digest::sha256_of(&v1).to_string()]),
            "{}",
            b.name
        );
        readable(&reg, "team/app", "prod", b.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_blob_links_go_and_only_one_collection_runs_at_a_time() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let m = image(&reg, "team/app", "x").await;
        reg.put_manifest("team/app", "v1", Some(OCI), &m)
            .await
            .unwrap();
        let lone = Digest::sha256_of(b"deleted");
        reg.upload_monolithic("team/app", &lone, body(b"deleted"), None)
            .await
            .unwrap();
        reg.delete_blob("team/app", &lone).await.unwrap();
        let r = gc(&reg, at(10)).await;
        assert_eq!(r.blobs_removed, 1, "{}", b.name);
        store_holds_exactly(&reg, 2, b.name).await;

        // Two at once: while one holds the lease, the other is refused with
        // the lease's error; once it is done, the next one runs.
        let (first, second) = while_one_holds_the_lease(&reg, &reg).await;
        first.unwrap_or_else(|e| panic!("{}: the first collection: {e}", b.name));
        refused_by_the_lease(second, b.name);
        gc(&reg, at(10)).await;
    }
}

/// `holder` collects and, holding the lease, waits in its first progress
/// callback (blocking in place: the tests doing this run on two worker
/// threads) until `other` has tried to collect too; both outcomes.
async fn while_one_holds_the_lease(
    holder: &Registry,
    other: &Registry,
) -> (storage::Result<GcReport>, storage::Result<GcReport>) {
    let (inside_tx, inside_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (inside_tx, go_rx) = (Mutex::new(Some(inside_tx)), Mutex::new(go_rx));
    let first = {
        let holder = holder.clone();
        tokio::spawn(async move {
            let hold = move |_: &GcReport| {
                if let Some(tx) = inside_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                    // In place: this worker's other tasks (the database
                    // pool's among them) move to another thread meanwhile.
                    tokio::task::block_in_place(|| {
                        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
                    });
                }
            };
            holder.gc(at(10), &hold).await
        })
    };
    if inside_rx.await.is_err() {
        panic!(
            "the first collection ended before its first batch: {:?}",
            first.await.unwrap().map(|_| ())
        );
    }
    let second = other.gc(at(10), &|_| {}).await;
    let _ = go_tx.send(());
    (first.await.unwrap(), second)
}

/// A collection refused because another holds the lease: `UNAVAILABLE`,
/// with the lease's own message (not any other failure).
fn refused_by_the_lease(r: storage::Result<GcReport>, name: &str) {
    match r {
        Ok(r) => panic!("{name}: a second collection ran while another held the lease: {r:?}"),
        Err(e) => assert!(
            e.code == storage::ErrorCode::Unavailable
                && e.message
                    .contains("a garbage collection is already running"),
            "{name}: refused, but not by the lease: {e}"
        ),
    }
}

/// Pushes (blobs first, manifest last, shared and unique layers), tag
/// deletes and a collection in a loop, all at once, until the loop has
/// collected some of what the deletes left; every push that was
/// acknowledged and is still tagged reads back whole, and when the dust
/// settles the store holds exactly what the tagged images use.
#[tokio::test]
async fn pushes_racing_a_collection_loop_lose_nothing() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let stop = Arc::new(AtomicBool::new(false));
        // What the loop removed while the pushes went on.
        let removed = Arc::new(AtomicU64::new(0));
        let collector = {
            let (reg, stop, removed) = (reg.clone(), stop.clone(), removed.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A grace of two seconds: far longer than any push
                    // here takes between its blobs and its manifest.
                    let opts = GcOptions {
                        grace: Duration::from_secs(2),
                        retention: Duration::ZERO,
                        dry_run: false,
                        now: None,
                    };
                    // Told after every batch: a run goes on while it
                    // removes something, as long as the pushes last.
                    let before = removed.load(Ordering::Relaxed);
                    let progress = |r: &GcReport| {
                        let now = r.manifests_removed + r.links_removed + r.blobs_removed;
                        removed.store(before + now, Ordering::Relaxed);
                    };
                    reg.gc(opts, &progress).await.expect("collection");
                    runs += 1;
                    tokio::task::yield_now().await;
                }
                runs
            })
        };
        // At least 24 images each, and on until the collector has removed
        // something while they push (what the deletes left is due two
        // seconds later), for at most a minute.
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let mut pushers = Vec::new();
        for client in 0..4 {
            let (reg, removed) = (reg.clone(), removed.clone());
            pushers.push(tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut i = 0;
                while i < 24 || (removed.load(Ordering::Relaxed) == 0 && Instant::now() < deadline)
                {
                    let repo = format!("race/{}", client % 2);
                    // `shared` is every client's; the salt is this push's.
                    let m = image(&reg, &repo, &format!("c{client}-{i}")).await;
                    let shared = Digest::sha256_of(b"shared layer");
                    reg.upload_monolithic(&repo, &shared, body(b"shared layer"), None)
                        .await
                        .unwrap();
                    let tag = format!("c{client}-{i}");
                    reg.put_manifest(&repo, &tag, Some(OCI), &m)
                        .await
                        .unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}"));
                    if i % 3 == 0 {
                        reg.delete_manifest(&repo, &tag).await.unwrap();
                    } else {
                        kept.push((repo, tag));
                    }
                    i += 1;
                }
                kept
            }));
        }
        let mut kept = Vec::new();
        for p in pushers {
            kept.extend(p.await.unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let runs = collector.await.unwrap();
        let removed = removed.load(Ordering::Relaxed);
        eprintln!(
            "{}: {} images kept, {runs} collections removed {removed} things, {:.1}s",
            b.name,
            kept.len(),
            started.elapsed().as_secs_f64()
        );
        assert!(runs > 0, "{}", b.name);
        assert!(
            removed > 0,
            "{}: {runs} collections removed nothing while the pushes went on",
            b.name
        );
        for (repo, tag) in &kept {
            readable(&reg, repo, tag, b.name).await;
        }
        gc_all(&reg, 3600).await;
        for (repo, tag) in &kept {
            readable(&reg, repo, tag, b.name).await;
        }
        // Each kept image: its own layer; plus the config shared by all.
        store_holds_exactly(&reg, kept.len() + 1, b.name).await;
    }
}

/// Two nodes on one PostgreSQL database and one blob store: while one
/// holds the collection lease the other is refused; then one pushes and
/// deletes while both collect in a loop (each run, by the lease, alone: no
/// two runs are ever inside a batch at once), and nothing acknowledged is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_collect_one_at_a_time_and_lose_nothing() {
    for b in common::backends_where(|p| p.postgres()).await {
        let dir = tempfile::tempdir().unwrap();
        let a = common::open(&b, dir.path()).await;
        let other = common::open(&b, dir.path()).await;
        for (holder, refused) in [(&a, &other), (&other, &a)] {
            let (first, second) = while_one_holds_the_lease(holder, refused).await;
            first.unwrap_or_else(|e| panic!("{}: the first collection: {e}", b.name));
            refused_by_the_lease(second, b.name);
        }

        let stop = Arc::new(AtomicBool::new(false));
        // Runs inside a batch's progress callback (under the lease) now,
        // and whether two ever were at once.
        let inside = Arc::new(AtomicUsize::new(0));
        let together = Arc::new(AtomicBool::new(false));
        let mut collectors = Vec::new();
        for node in [a.clone(), other.clone()] {
            let (stop, inside, together) = (stop.clone(), inside.clone(), together.clone());
            collectors.push(tokio::spawn(async move {
                let (mut ran, mut refused) = (0u32, 0u32);
                let progress = |_: &GcReport| {
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        together.store(true, Ordering::SeqCst);
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                };
                while !stop.load(Ordering::Relaxed) {
                    let opts = GcOptions {
                        grace: Duration::from_secs(2),
                        retention: Duration::ZERO,
                        dry_run: false,
                        now: None,
                    };
                    match node.gc(opts, &progress).await {
                        Ok(_) => ran += 1,
                        Err(e) if e.code == storage::ErrorCode::Unavailable => refused += 1,
                        Err(e) => panic!("collection: {e}"),
                    }
                    tokio::task::yield_now().await;
                }
                (ran, refused)
            }));
        }
        let mut kept = Vec::new();
        for i in 0..30 {
            // Pushes alternate between the nodes.
            let node = if i % 2 == 0 { &a } else { &other };
            let m = image(node, "two/app", &format!("n{i}")).await;
            let tag = format!("t{i}");
            node.put_manifest("two/app", &tag, Some(OCI), &m)
                .await
                .unwrap_or_else(|e| panic!("{}: push {tag}: {e}", b.name));
            if i % 3 == 0 {
                node.delete_manifest("two/app", &tag).await.unwrap();
            } else {
                kept.push(tag);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut ran = Vec::new();
        for c in collectors {
            ran.push(c.await.unwrap());
        }
        // (One node's run can last the whole loop: a run goes on while its
        // batches remove something.)
        eprintln!("{}: (ran, refused) per node: {ran:?}", b.name);
        assert!(
            ran.iter().map(|(r, _)| r).sum::<u32>() > 0,
            "{}: no collection ran: {ran:?}",
            b.name
        );
        assert!(
            !together.load(Ordering::SeqCst),
            "{}: two collections were inside a batch at once",
            b.name
        );
        gc_all(&a, 3600).await;
        for tag in &kept {
            readable(&a, "two/app", tag, b.name).await;
            readable(&other, "two/app", tag, b.name).await;
        }
        store_holds_exactly(&a, kept.len() + 1, b.name).await;
    }
}
