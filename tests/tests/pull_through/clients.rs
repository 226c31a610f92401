//! Real upstreams and real clients: Debian's
//! `docker-registry` with htpasswd (Basic) auth, and a second instance of
//! ours with token auth. Docker and containerd pull through the cache; 200
//! concurrent pulls of an uncached image make one upstream fetch per blob
//! (counted in the upstream's access log); a tag moved upstream is seen
//! after the TTL; with the upstream stopped, cached images still pull.

use super::{cache_registry, eventually};
use e2e::auth::AuthRegistry;
use e2e::oci::{self, Entry, Image};
use e2e::upstream::CncfRegistry;
use e2e::{containerd_snapshotter, ctr, docker, Registry};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// An image with layers of `mib` MiB of incompressible bytes each.
fn big_image(salt: &str, mib: usize) -> Image {
    let mut seed = e2e::sha256_digest(salt.as_bytes()).into_bytes();
    let mut noise = |n: usize| {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            seed = e2e::sha256_digest(&seed).into_bytes();
            out.extend_from_slice(&seed);
        }
        out.truncate(n);
        out
    };
    let (a, b) = (noise(mib << 20), noise(mib << 20));
    oci::image(
        "linux",
        "amd64",
        None,
        vec![
            oci::layer(&[Entry::File("a.bin", 0o644, &a)]),
            oci::layer(&[Entry::File("b.bin", 0o644, &b)]),
        ],
    )
}

/// Pull `repo:tag` (manifest and every blob, digests checked) from `n`
/// clients released at one instant.
fn concurrent_pulls(url: &str, repo: &str, tag: &str, image: &Image, n: usize) {
    let start = Arc::new(Barrier::new(n));
    let digests: Vec<String> = image.blobs().iter().map(|b| b.digest.clone()).collect();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, url, repo, tag, digests) = (
                start.clone(),
                url.to_owned(),
                repo.to_owned(),
                tag.to_owned(),
                digests.clone(),
            );
            std::thread::spawn(move || {
                let client = e2e::http::Client::new(&url);
                start.wait();
                let m = client.get_manifest(&repo, &tag);
                for d in &digests {
                    client.get_blob_verified(&repo, d);
                }
                m.require_header("docker-content-digest")
            })
        })
        .collect();
    for t in threads {
        assert_eq!(
            t.join().expect("a pull failed"),
            image.manifest.digest,
            "a client got another manifest"
        );
    }
}

fn manifest_digest(reg: &Registry, repo: &str, tag: &str) -> String {
    reg.client()
        .get_manifest(repo, tag)
        .require_header("docker-content-digest")
}

#[test]
fn cncf_upstream_with_basic_auth() {
    let upstream = CncfRegistry::start();
    let first = big_image("pull-through one", 2);
    upstream.http().push_image("library/app", "1", &first);
    const TTL: u64 = 3;
    let (reg, _dir) = cache_registry(&format!(
        "[[cache]]\nprefix = \"cncf\"\nupstream = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n\
         tag_ttl_secs = {TTL}\nevict_unpulled_days = 30\n",
        upstream.url(),
        e2e::upstream::USER,
        upstream.password
    ));
    let repo = "cncf/library/app";

    // A HEAD of a blob not cached asks the upstream's HEAD, fetching nothing.
    let layer = &first.layers[0].blob;
    let head = reg
        .client()
        .head(&format!("/v2/{repo}/blobs/{}", layer.digest))
        .expect_status(200);
    assert_eq!(
        head.require_header("content-length"),
        layer.size().to_string()
    );
    let path = format!("/v2/library/app/blobs/{}", layer.digest);
    assert_eq!(
        upstream.count("GET", &path, 200),
        0,
        "a HEAD fetched the blob"
    );
    eventually("the upstream to log the HEAD", || {
        upstream.count("HEAD", &path, 200) == 1
    });

    // 200 clients at once, nothing cached: one upstream fetch per blob.
    concurrent_pulls(&reg.url(), repo, "1", &first, 200);
    for b in first.blobs() {
        let path = format!("/v2/library/app/blobs/{}", b.digest);
        assert_eq!(
            upstream.count("GET", &path, 200),
            1,
            "blob {} was fetched from the upstream more than once (or never):\n{}",
            b.digest,
            upstream.log_text()
        );
    }
    assert_eq!(
        upstream.count("GET", "/v2/library/app/manifests/1", 200),
        1,
        "the manifest was fetched more than once"
    );
    // Cached repositories take no pushes.
    let c = reg.client();
    let refused = c.send(c.request(reqwest::Method::POST, &format!("/v2/{repo}/blobs/uploads/")));
    refused.expect_error(&[403], &["DENIED"]);
    assert!(
        refused.text().contains("pull-through cache"),
        "{}",
        refused.text()
    );
    // The rule's eviction policy is on the repository the cache made.
    let policy = reg
        .client()
        .get(&format!("/api/v1/repositories/{repo}/lifecycle"))
        .expect_status(200)
        .text();
    assert!(policy.contains("sinceImagePulled"), "{policy}");

    // Docker and containerd pull through the cache.
    let image = format!("{}/{repo}:1", reg.host());
    docker().args(["pull", &image]).run_ok();
    let ns = format!("e2e-pullthrough-{}", reg.port());
    let ctr_pull = |reference: &str| {
        ctr(&ns)
            .args(["image", "pull", "--plain-http", "--snapshotter"])
            .arg(containerd_snapshotter())
            .arg(reference)
            .run_ok();
    };
    ctr_pull(&image);

    // A tag moved upstream: the old digest within the TTL, the new after.
    let second = big_image("pull-through two", 1);
    // A pull after the TTL checks the tag upstream with a HEAD.
    let heads = upstream.count("HEAD", "/v2/library/app/manifests/1", 200);
    eventually("the tag to be checked upstream again", || {
        manifest_digest(&reg, repo, "1");
        upstream.count("HEAD", "/v2/library/app/manifests/1", 200) > heads
    });
    let checked_at = Instant::now();
    upstream.http().push_image("library/app", "1", &second);
    let seen = manifest_digest(&reg, repo, "1");
    if checked_at.elapsed() < Duration::from_secs(TTL - 1) {
        assert_eq!(
            seen, first.manifest.digest,
            "the tag was re-checked before its TTL"
        );
    }
    eventually("the moved tag to be seen", || {
        manifest_digest(&reg, repo, "1") == second.manifest.digest
    });
    assert!(
        checked_at.elapsed() >= Duration::from_secs(TTL - 1),
        "the moved tag was seen {:?} after the last check, within the TTL of {TTL} s",
        checked_at.elapsed()
    );
    concurrent_pulls(&reg.url(), repo, "1", &second, 20);

    // The upstream stops: cached images still pull, the tag stale.
    let mut upstream = upstream;
    upstream.stop();
    eventually("the stale tag to be served and logged", || {
        manifest_digest(&reg, repo, "1") == second.manifest.digest
            && reg
                .log_text()
                .contains("serving the cached manifest (stale)")
    });
    docker().args(["rmi", &image]).run_ok();
    docker().args(["pull", &image]).run_ok();
    ctr(&ns).args(["image", "rm", "--sync", &image]).run_ok();
    ctr_pull(&image);
    concurrent_pulls(&reg.url(), repo, "1", &second, 10);
    // What was never cached cannot be had: a clear 503.
    reg.client()
        .get(&format!("/v2/{repo}/manifests/never-pulled"))
        .expect_error(&[503], &["UNAVAILABLE"]);
    let _ = ctr(&ns).args(["image", "rm", "--sync", &image]).run();
    let _ = docker().args(["rmi", &image]).run();

    // The metrics count hits, misses and upstream fetches.
    let metrics = reg.client().get("/metrics").expect_status(200).text();
    for needle in [
        "registry_pullthrough_requests_total{kind=\"blob\",result=\"miss\"}",
        "registry_pullthrough_requests_total{kind=\"manifest\",result=\"stale\"}",
        "registry_upstream_fetches_total{kind=\"blob\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "no {needle} in /metrics:\n{metrics}"
        );
    }
}

#[test]
fn token_auth_upstream_of_ours() {
    let up = AuthRegistry::start(
        "[access]\n[[access.rules]]\nrepositories = [\"base/*\"]\nusers = [\"mirror\"]\nactions = [\"pull\"]\n",
    );
    let admin = up.add_user("admin", &["--admin"]);
    let mirror = up.add_user("mirror", &[]);
    let image = oci::simple_image("pull-through token");
    up.basic(&admin).push_image("base/app", "v1", &image);
    let creds = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(creds.path(), format!("mirror:{}\n", mirror.secret)).expect("creds");
    let (reg, _dir) = cache_registry(&format!(
        // The upstream (and so its realm) is plain http on loopback.
        "[[cache]]\nprefix = \"ours\"\nupstream = \"{}\"\ncredentials_file = \"{}\"\n\
         allow_insecure_realm = true\n\n\
         [[cache]]\nprefix = \"anon\"\nupstream = \"{}\"\n",
        up.url(),
        creds.path().display(),
        up.url()
    ));
    concurrent_pulls(&reg.url(), "ours/base/app", "v1", &image, 50);
    // The token flow: a challenge, then tokens for this repository only:
    // every token request asks to pull base/app, and nothing else.
    up.log_barrier();
    let tokens: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.path == "/token")
        .collect();
    assert!(
        !tokens.is_empty(),
        "the upstream's token endpoint was never asked"
    );
    for t in &tokens {
        let scopes: Vec<&str> = t
            .query
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            scopes,
            ["repository:base/app:pull"],
            "a token request for more than this repository: {}",
            t.raw_uri
        );
        assert_eq!(t.status, 200, "{}", t.raw_uri);
    }
    let image_ref = format!("{}/ours/base/app:v1", reg.host());
    docker().args(["pull", &image_ref]).run_ok();
    let _ = docker().args(["rmi", &image_ref]).run();
    // Without credentials, the upstream refuses: 403 DENIED saying so.
    let r = reg.client().get("/v2/anon/base/app/manifests/v1");
    r.expect_error(&[403], &["DENIED"]);
    assert!(r.text().contains("refused"), "{}", r.text());
    // A manifest pulled whose blobs never were: `registry check` knows a
    // cache fills lazily and reports no problem.
    let lazy = oci::simple_image("pulled lazily");
    up.basic(&admin).push_image("base/lazy", "v1", &lazy);
    reg.client().get_manifest("ours/base/lazy", "v1");
    let config = _dir.path().join("registry.toml");
    let out = e2e::cmd(e2e::registry_bin())
        .arg("check")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(reg.data_dir())
        .run();
    assert!(out.success(), "registry check failed:\n{}", out.combined());
    assert!(out.stdout.contains(": 0 problems"), "{}", out.combined());
    // Unknown upstream: 404 as for any unknown manifest.
    reg.client()
        .get("/v2/ours/base/nothing/manifests/v1")
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
}
