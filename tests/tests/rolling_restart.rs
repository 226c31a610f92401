//! Zero-downtime rolling restart: two nodes on S3 + PostgreSQL behind
//! nginx, clients pulling and pushing through it without pause (HTTP
//! clients and Docker), while each node in turn is stopped (SIGTERM: it
//! fails `/readyz`, drains, finishes what is in flight, exits) and started
//! again. Not one request fails.

use e2e::cluster::Cluster;
use e2e::http::Client;
use e2e::oci::simple_image;
use e2e::{docker, docker_build_busybox, DockerImages};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

    // Each node in turn: stop (drain included) and start again.
    let before = done.load(Ordering::Relaxed);
    for i in 0..c.nodes.len() {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let status = c.nodes[i].stop();
        assert!(status.success(), "node {i} exited with {status:?}");
        c.nodes[i].restart();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
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
