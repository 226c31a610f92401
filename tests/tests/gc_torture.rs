//! Online garbage collection under fire: eight clients push at once
//! (Docker pushing images that share their busybox layer, and HTTP clients
//! pushing images, multi-arch indexes and referrers) and delete tags, while
//! a collection with a one-second grace period runs in a loop through the
//! API. At the end every image whose push was acknowledged and is still
//! tagged pulls with Docker and with containerd (which verify every digest),
//! and once collected to the end the store holds exactly the blobs that
//! what is still tagged uses (and the referrers that hang off it).

use e2e::http::Client;
use e2e::oci::{simple_image, two_platform_image, Blob};
use e2e::{
    blob_files, containerd_snapshotter, ctr, docker, docker_build_busybox, sha256_digest,
    DockerImages, Registry,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// An acknowledged push still tagged: repository, tag, manifest digest,
/// pushed by Docker.
type Kept = (String, String, String, bool);

/// One collection through the API; its final report.
fn collect(client: &Client, grace: u64) -> serde_json::Value {
    let resp = client
        .send(
            client
                .request(reqwest::Method::POST, "/api/v1/gc")
                .json(&serde_json::json!({ "grace_secs": grace })),
        )
        .expect_status(200);
    let text = resp.text();
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(v.get("report").is_some(), "no report: {text}");
    v["report"].clone()
}

fn removed(r: &serde_json::Value) -> u64 {
    ["manifests_removed", "links_removed", "blobs_removed"]
        .iter()
        .map(|k| r[k].as_u64().unwrap())
        .sum()
}

/// A signature-like artifact whose subject is `subject` (bytes of a
/// manifest), pushed untagged; its digest.
fn push_referrer(client: &Client, repo: &str, subject: &[u8], salt: &str) -> String {
    let empty = client.push_blob(repo, b"{}");
    let payload = format!("signature of {} ({salt})", sha256_digest(subject));
    let sig = client.push_blob(repo, payload.as_bytes());
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": payload.len()}],
        "subject": {"mediaType": OCI, "digest": sha256_digest(subject), "size": subject.len()},
    });
    let blob = Blob::new(OCI, serde_json::to_vec(&m).unwrap());
    client.push_manifest(repo, &blob.digest, &blob)
}

/// Every blob digest that what is tagged uses, with the referrers of it
/// (recursively), read through the API.
fn referenced(client: &Client) -> BTreeSet<String> {
    let mut blobs = BTreeSet::new();
    let catalog: serde_json::Value =
        serde_json::from_str(&client.get("/v2/_catalog").text()).unwrap();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let mut todo: Vec<String> = client.tags(repo);
        let mut seen = BTreeSet::new();
        while let Some(reference) = todo.pop() {
            let resp = client.get_manifest(repo, &reference);
            let digest = sha256_digest(&resp.body);
            if !seen.insert(digest.clone()) {
                continue;
            }
            let m: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            if let Some(children) = m["manifests"].as_array() {
                todo.extend(
                    children
                        .iter()
                        .map(|c| c["digest"].as_str().unwrap().to_owned()),
                );
            } else {
                blobs.insert(m["config"]["digest"].as_str().unwrap().to_owned());
                for l in m["layers"].as_array().unwrap() {
                    blobs.insert(l["digest"].as_str().unwrap().to_owned());
                }
            }
            let refs: serde_json::Value = serde_json::from_str(
                &client
                    .get(&format!("/v2/{repo}/referrers/{digest}"))
                    .expect_status(200)
                    .text(),
            )
            .unwrap();
            for r in refs["manifests"].as_array().unwrap() {
                todo.push(r["digest"].as_str().unwrap().to_owned());
            }
        }
    }
    blobs
}

fn dockerfile(client: usize, which: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo {client}-{which} > /id\"]\n\
         CMD [\"/bin/busybox\", \"cat\", \"/id\"]\n"
    )
}

/// The one answer a push may get from a collection racing it (README,
/// "Garbage collection"): a blob the client found present went meanwhile,
/// so its manifest is refused with `MANIFEST_BLOB_UNKNOWN` (Docker shows the
/// code as "manifest blob unknown"); pushing again uploads the blob.
fn lost_the_race(output: &str) -> bool {
    output.contains("manifest blob unknown")
}

/// `docker push`, again only after the race answer; any other failure, or
/// losing the race five times in a row, fails the test.
fn docker_push(reference: &str, retries: &Mutex<u32>) {
    for _ in 0..5 {
        let out = docker().args(["push", reference]).run();
        if out.status.success() {
            return;
        }
        let text = out.combined();
        assert!(
            lost_the_race(&text),
            "docker push {reference} failed, and not by losing the collection race:\n{text}"
        );
        eprintln!("docker push {reference} lost the collection race, again: {text}");
        *retries.lock().unwrap() += 1;
    }
    panic!("docker push {reference} lost the collection race five times in a row");
}

#[test]
fn pushes_and_deletes_racing_online_gc_lose_nothing_and_leave_nothing() {
    e2e::require_env("DOCKER_HOST");
    e2e::require_env("CONTAINERD_ADDRESS");
    // No retention window: what a tag left is garbage once the grace ends.
    let reg = Registry::start_with(&["--gc-interval-secs", "0", "--gc-retention-secs", "0"]);
    let host = reg.host();

    // Two images per Docker client, built up front, all sharing busybox.
    let mut built = Vec::new();
    let mut cleanup = Vec::new();
    for c in 0..4 {
        for which in ["a", "b"] {
            let local = format!("gc-torture/c{c}:{which}");
            docker_build_busybox(&dockerfile(c, which), which, &local);
            cleanup.push(local.clone());
            built.push(local);
        }
    }
    let _images = DockerImages(cleanup);

    let stop = Arc::new(AtomicBool::new(false));
    // Bytes the collector freed while the clients pushed.
    let freed = Arc::new(AtomicU64::new(0));
    let collector = {
        let (client, stop, freed) = (reg.client(), stop.clone(), freed.clone());
        std::thread::spawn(move || {
            let mut runs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = collect(&client, 1);
                runs += 1;
                freed.fetch_add(r["bytes_freed"].as_u64().unwrap(), Ordering::Relaxed);
            }
            runs
        })
    };
    // The HTTP clients go on until the collector has freed something
    // while they push (at least six rounds, at most a minute).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);

    let kept: Arc<Mutex<Vec<Kept>>> = Arc::default();
    let retries: Arc<Mutex<u32>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..4 {
        let (host, kept, retries) = (host.clone(), kept.clone(), retries.clone());
        clients.push(std::thread::spawn(move || {
            let client = Client::new(&format!("http://{host}"));
            let repo = format!("dock/c{c}");
            for round in 0..4 {
                let src = format!("gc-torture/c{c}:{}", if round % 2 == 0 { "a" } else { "b" });
                let dst = format!("{host}/{repo}:r{round}");
                docker().args(["tag", &src, &dst]).run_ok();
                docker_push(&dst, &retries);
                docker().args(["rmi", &dst]).run_ok();
                let digest = sha256_digest(&client.get_manifest(&repo, &format!("r{round}")).body);
                if round == 1 {
                    // b loses its only tag: garbage, pushed again in round 3.
                    client
                        .delete(&format!("/v2/{repo}/manifests/r{round}"))
                        .expect_status(202);
                } else {
                    kept.lock()
                        .unwrap()
                        .push((repo.clone(), format!("r{round}"), digest, true));
                }
            }
        }));
    }
    for c in 0..4 {
        let (host, kept, freed) = (host.clone(), kept.clone(), freed.clone());
        clients.push(std::thread::spawn(move || {
            let client = Client::new(&format!("http://{host}"));
            let repo = format!("syn/c{c}");
            let mut round = 0;
            while round < 6
                || (freed.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline)
            {
                round += 1;
                let salt = format!("c{c}-r{round}");
                let image = simple_image(&salt);
                let tag = format!("img{round}");
                let digest = client.push_image(&repo, &tag, &image);
                push_referrer(&client, &repo, &image.manifest.data, &salt);
                let multi = two_platform_image(&salt);
                let multi_tag = format!("multi{round}");
                let index = client.push_index(&repo, &multi_tag, &multi);
                match round % 3 {
                    // The image (and so its signature) and the index go.
                    0 => {
                        client
                            .delete(&format!("/v2/{repo}/manifests/{tag}"))
                            .expect_status(202);
                        client
                            .delete(&format!("/v2/{repo}/manifests/{index}"))
                            .expect_status(202);
                    }
                    // Only the tag of the index: its children are garbage too.
                    1 => {
                        client
                            .delete(&format!("/v2/{repo}/manifests/{multi_tag}"))
                            .expect_status(202);
                        kept.lock()
                            .unwrap()
                            .push((repo.clone(), tag, digest, false));
                    }
                    _ => {
                        let mut k = kept.lock().unwrap();
                        k.push((repo.clone(), tag, digest, false));
                        k.push((repo.clone(), multi_tag, index, false));
                    }
                }
            }
        }));
    }
    for c in clients {
        c.join().expect("a client failed");
    }
    stop.store(true, Ordering::Relaxed);
    let runs = collector.join().expect("the collector failed");
    let freed_during = freed.load(Ordering::Relaxed);
    let kept = kept.lock().unwrap().clone();
    eprintln!(
        "{runs} collections ran during the pushes, freeing {freed_during} bytes; {} images kept; {} docker pushes retried",
        kept.len(),
        retries.lock().unwrap()
    );
    assert!(runs >= 2, "the collector ran {runs} times");
    assert!(
        freed_during > 0,
        "the collector freed nothing while the clients pushed"
    );
    // Every client kind has its acknowledged images: each Docker client
    // its three still tagged (rounds 0, 2 and 3), each HTTP client at least
    // the six of its first six rounds.
    for c in 0..4 {
        let of = |repo: &str| kept.iter().filter(|k| k.0 == repo).count();
        let (docker, http) = (of(&format!("dock/c{c}")), of(&format!("syn/c{c}")));
        assert_eq!(docker, 3, "Docker client {c}: {kept:?}");
        assert!(http >= 6, "HTTP client {c} kept {http}: {kept:?}");
    }

    // Every acknowledged, still tagged image pulls, digests verified.
    let ns = format!("gc{}", std::process::id());
    let client = reg.client();
    for (repo, tag, digest, by_docker) in &kept {
        let reference = format!("{host}/{repo}:{tag}");
        let tag_digest = sha256_digest(&client.get_manifest(repo, tag).body);
        assert_eq!(
            &tag_digest, digest,
            "{reference} still points where it was pushed"
        );
        ctr(&ns)
            .args([
                "image",
                "pull",
                "--plain-http",
                "--all-platforms",
                "--snapshotter",
            ])
            .arg(containerd_snapshotter())
            .arg(&reference)
            .run_ok();
        let _ = ctr(&ns).args(["image", "rm", "--sync", &reference]).run();
        if *by_docker {
            docker().args(["pull", &reference]).run_ok();
            let id = docker()
                .args([
                    "image",
                    "inspect",
                    "--format",
                    "{{index .RepoDigests 0}}",
                    &reference,
                ])
                .run_ok()
                .stdout;
            assert!(id.trim().ends_with(digest.as_str()), "{reference}: {id}");
            docker().args(["rmi", &reference]).run_ok();
        }
    }

    // Collected to the end, the store holds exactly what is still used.
    for _ in 0..10 {
        if removed(&collect(&client, 0)) == 0 {
            break;
        }
    }
    let used = referenced(&client);
    let stored: BTreeSet<String> = blob_files(reg.data_dir())
        .into_iter()
        .map(|(_, name)| format!("sha256:{name}"))
        .collect();
    let extra: Vec<_> = stored.difference(&used).collect();
    let missing: Vec<_> = used.difference(&stored).collect();
    assert!(extra.is_empty(), "garbage left: {extra:?}");
    assert!(missing.is_empty(), "used blobs lost: {missing:?}");
}
