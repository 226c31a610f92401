//! Zero-downtime rolling restart: two nodes on S3 + PostgreSQL behind
//! nginx, clients pulling and pushing through it without pause (HTTP
//! clients and Docker), while each node in turn is stopped (SIGTERM: it
//! fails `/readyz`, drains, finishes what is in flight, exits) and started
//! again. Not one request fails; each node served the balancer's requests
//! during its drain, and an upload in flight on it when it stopped
//! listening was finished. The restarts are paced by what the nodes served,
//! not by the clock.

use e2e::cluster::Cluster;
use e2e::http::Client;
use e2e::inflight::SlowUpload;
use e2e::oci::simple_image;
use e2e::request_log::parse_log_line;
use e2e::{docker, docker_build_busybox, DockerImages, Registry};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests `node` logged from byte `from` of its log to byte `to`.
fn served(node: &Registry, from: usize, to: Option<usize>) -> usize {
    let text = node.log_text();
    let end = to.unwrap_or(text.len()).min(text.len());
    text.get(from..end)
        .unwrap_or_default()
        .lines()
        .filter_map(parse_log_line)
        .count()
}

/// Wait until `node` has served `n` requests since byte `from` of its log
/// and the clients have done `rounds` more rounds than `done_before`.
fn wait_for_traffic(node: &Registry, from: usize, n: usize, done: &AtomicU64, rounds: u64) {
    let before = done.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while served(node, from, None) < n || done.load(Ordering::Relaxed) < before + rounds {
        assert!(
            Instant::now() < deadline,
            "no traffic: the node served {} requests, the clients did {} rounds",
            served(node, from, None),
            done.load(Ordering::Relaxed) - before
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rolling_restart_loses_no_request() {
    e2e::require_env("DOCKER_HOST");
    let mut c = Cluster::start_retrying(2, &["--shutdown-drain-secs", "2"]);
    let url = c.url();
    let seed = Client::new(&url);
    let base = simple_image("rolling-base");
    seed.push_image("roll/base", "v1", &base);
    let tag = format!("{}/roll/docker:v1", c.host());
    let _images = DockerImages(vec![tag.clone()]);
    docker_build_busybox("FROM scratch\nCOPY busybox /bin/busybox\n", "rolling", &tag);
    docker().args(["push", &tag]).run_ok();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    // Pullers: the manifest and every blob, verified.
    for _ in 0..3 {
        let (url, stop, done, failures, base) = (
            url.clone(),
            stop.clone(),
            done.clone(),
            failures.clone(),
            base.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let client = Client::new(&url);
            while !stop.load(Ordering::Relaxed) {
                let r = client.try_send(
                    client
                        .request(reqwest::Method::GET, "/v2/roll/base/manifests/v1")
                        .header("Accept", "application/vnd.oci.image.manifest.v1+json"),
                );
                match r {
                    Ok(r) if r.status == 200 && r.body == base.manifest.data => {}
                    Ok(r) => failures.lock().unwrap().push(r.describe()),
                    Err(e) => failures.lock().unwrap().push(e),
                }
                for b in base.blobs() {
                    match client.try_send(client.request(
                        reqwest::Method::GET,
                        &format!("/v2/roll/base/blobs/{}", b.digest),
                    )) {
                        Ok(r) if r.status == 200 && r.body == b.data => {}
                        Ok(r) => failures.lock().unwrap().push(r.describe()),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Pushers: new images, blobs first, manifest last.
    for p in 0..2 {
        let (url, stop, done, failures) =
            (url.clone(), stop.clone(), done.clone(), failures.clone());
        workers.push(std::thread::spawn(move || {
            let client = Client::new(&url);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let image = simple_image(&format!("rolling-{p}-{i}"));
                let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    client.push_image("roll/pushed", &format!("p{p}-{i}"), &image)
                }));
                if let Err(e) = pushed {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "push panicked".into());
                    failures.lock().unwrap().push(msg);
                }
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Docker pulling through the load balancer too.
    let docker_failures = Arc::new(AtomicU64::new(0));
    let docker_pulls = {
        let (stop, tag, fails) = (stop.clone(), tag.clone(), docker_failures.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _ = docker().args(["rmi", &tag]).run();
                let out = docker().args(["pull", &tag]).run();
                if !out.status.success() {
                    eprintln!("docker pull failed: {}", out.combined());
                    fails.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            n
        })
    };

    // Each node in turn, once it serves the clients: stop (drain included)
    // with an upload in flight on it, and start again.
    let before = done.load(Ordering::Relaxed);
    let mut since: Vec<usize> = c.nodes.iter().map(|n| n.log_text().len()).collect();
    let blob: Vec<u8> = (0..512u32 << 10).map(|i| (i % 241) as u8).collect();
    for (i, node) in c.nodes.iter_mut().enumerate() {
        wait_for_traffic(node, since[i], 20, &done, 10);
        let slow = SlowUpload::start(node.port(), "roll/slow", &blob);
        let from = node.log_text().len();
        node.signal(libc::SIGTERM);
        node.wait_for_line(from, "SIGTERM: /readyz fails now", Duration::from_secs(10));
        let draining = node.log_text().len();
        let stopped = node.wait_for_line(
            from,
            "shutdown requested: draining in-flight requests",
            Duration::from_secs(30),
        );
        let stopped_at = node.log_text().rfind(&stopped).expect("the line just read");
        // The balancer's requests went on reaching it while it drained.
        let in_drain = served(node, draining, Some(stopped_at));
        assert!(in_drain > 0, "node {i} served nothing during its drain");
        assert_eq!(
            slow.finish(),
            201,
            "node {i}: the upload in flight was lost"
        );
        let status = node.stop();
        assert!(status.success(), "node {i} exited with {status:?}");
        eprintln!("node {i}: {in_drain} requests served during its drain");
        node.restart();
        since[i] = node.log_text().len();
        Client::new(&node.url()).get_blob_verified("roll/slow", &e2e::sha256_digest(&blob));
    }
    // Both nodes back in rotation before the clients stop.
    for (i, node) in c.nodes.iter().enumerate() {
        wait_for_traffic(node, since[i], 20, &done, 10);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let pulls = docker_pulls.join().unwrap();
    let total = done.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap();
    eprintln!(
        "{total} client rounds ({} during the restarts), {pulls} docker pulls, {} failures",
        total - before,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "requests failed during the rolling restart:\n{}",
        failures.join("\n---\n")
    );
    assert_eq!(
        docker_failures.load(Ordering::Relaxed),
        0,
        "docker pulls failed"
    );
    assert!(
        total - before > 20,
        "too little traffic during the restarts: {}",
        total - before
    );
    assert!(pulls > 0);
}
