//! The real clients against two registry nodes on S3 (moto) + PostgreSQL
//! behind nginx (round-robin per request): Docker push, pull by tag and
//! digest and a manifest list; containerd pulling one platform; skopeo
//! copies; the layer-history page and API; the conformance runner; blob
//! downloads redirected to presigned S3 URLs, or streamed with `Range` when
//! redirects are off.

use e2e::cluster::Cluster;
use e2e::{
    containerd_snapshotter, ctr, docker, docker_build_busybox, docker_manifest_list, oci,
    other_arch, sha256_digest, skopeo, Client, DockerImages, Registry,
};

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo hello from the cluster > /greeting
COPY data.txt /data/data.txt
CMD ["/bin/sh", "-c", "cat /greeting /data/data.txt"]
"#;

fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            let i = l.find("digest: sha256:")?;
            Some(l[i + 8..].split_whitespace().next()?.to_string())
        })
        .unwrap_or_else(|| panic!("no digest in docker push output:\n{out}"))
}

/// Requests with `status` on `path_prefix` across all nodes.
fn count(nodes: &[Registry], method: &str, path_prefix: &str, status: u16) -> usize {
    nodes
        .iter()
        .map(|n| {
            n.log_barrier();
            n.count_requests(method, path_prefix, Some(status))
        })
        .sum()
}

/// Every node served some of the requests (the balancer spreads them).
fn both_nodes_served(c: &Cluster, path_prefix: &str) {
    for (i, n) in c.nodes.iter().enumerate() {
        n.log_barrier();
        let served = n
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .count();
        assert!(served > 0, "node {i} served no request under {path_prefix}");
    }
}

#[test]
fn docker_through_the_load_balancer_with_redirected_pulls() {
    e2e::require_env("DOCKER_HOST");
    let c = Cluster::start(2, "");
    let host = c.host();
    let app = format!("{host}/cl/app:v1");
    let other = format!("{host}/cl/app:other");
    let list = format!("{host}/cl/multi:list");
    let mut images = DockerImages(vec![app.clone(), other.clone(), list.clone()]);

    docker_build_busybox(DOCKERFILE, "cluster", &app);
    let digest = pushed_digest(&docker().args(["push", &app]).run_ok().stdout);
    both_nodes_served(&c, "/v2/cl/app/");
    let client = Client::new(&c.url());
    let m = client.get_manifest("cl/app", "v1");
    assert_eq!(sha256_digest(&m.body), digest);

    // Pull by tag and by digest after removing the local copies: the
    // layers come from S3 through presigned URLs (307 from the nodes).
    docker().args(["rmi", &app]).run_ok();
    docker().args(["pull", &app]).run_ok();
    let out = docker()
        .args(["run", "--rm", "--network", "none", &app])
        .run_ok()
        .stdout;
    assert_eq!(out, "hello from the cluster\ndata cluster\n");
    assert!(
        count(&c.nodes, "GET", "/v2/cl/app/blobs/", 307) > 0,
        "no blob download was redirected"
    );
    let by_digest = format!("{host}/cl/app@{digest}");
    images.0.push(by_digest.clone());
    docker().args(["rmi", &app]).run_ok();
    docker().args(["pull", &by_digest]).run_ok();

    // A manifest list of two platforms.
    docker_build_busybox(
        &format!("FROM {app}\nCOPY data.txt /other.txt\n"),
        "other",
        &other,
    );
    docker().args(["push", &other]).run_ok();
    let native_arch = e2e::image_platform(&app)
        .split('/')
        .nth(1)
        .expect("os/arch")
        .to_string();
    let (arch2, variant2) = other_arch(&native_arch);
    let list_digest = docker_manifest_list(
        &list,
        &[(&app, &native_arch, None), (&other, arch2, variant2)],
    );
    let l = client.get_manifest("cl/multi", "list");
    assert_eq!(sha256_digest(&l.body), list_digest);
    docker().args(["rmi", &app, &other]).run_ok();
    docker().args(["pull", &list]).run_ok();

    // The layer history of the pushed image, as API and as page.
    let detail: serde_json::Value = serde_json::from_str(
        &client
            .get("/api/v1/images/cl/app:v1")
            .expect_status(200)
            .text(),
    )
    .unwrap();
    let history = detail["images"][0]["history"].as_array().expect("history");
    assert!(
        history.iter().any(|h| h["created_by"]
            .as_str()
            .unwrap_or("")
            .contains("hello from the cluster")),
        "{detail}"
    );
    let page = client.get("/ui/images/cl/app:v1").expect_status(200).text();
    assert!(page.contains("hello from the cluster"), "{page}");
}

#[test]
fn containerd_and_skopeo_through_the_load_balancer() {
    e2e::require_env("CONTAINERD_ADDRESS");
    let c = Cluster::start(2, "");
    let client = Client::new(&c.url());
    let multi = oci::two_platform_image("cluster-ctr");
    client.push_index("cl/ctr", "v1", &multi);
    let reference = format!("{}/cl/ctr:v1", c.host());
    let ns = format!("e2e-cluster-{}", c.lb.port);
    ctr(&ns)
        .args([
            "image",
            "pull",
            "--plain-http",
            "--platform",
            "linux/arm64/v8",
        ])
        .args(["--snapshotter", &containerd_snapshotter()])
        .arg(&reference)
        .run_ok();
    let content = ctr(&ns).args(["content", "ls", "-q"]).run_ok().stdout;
    let arm64 = multi.image("arm64");
    for b in arm64.blobs() {
        assert!(
            content.contains(&b.digest),
            "{} not fetched: {content}",
            b.digest
        );
    }
    assert!(!content.contains(&multi.image("amd64").config.digest));
    assert!(
        count(&c.nodes, "GET", "/v2/cl/ctr/blobs/", 307) > 0,
        "containerd's blob downloads were not redirected"
    );
    let _ = ctr(&ns).args(["image", "rm", "--sync", &reference]).run();

    // skopeo: an OCI layout in, then a copy between repositories.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let sk = oci::two_platform_image("cluster-skopeo");
    oci::write_layout(&layout, "v1", &sk);
    let dest = format!("docker://{}/cl/sk:v1", c.host());
    skopeo(work.path())
        .args([
            "copy",
            "--all",
            "--format",
            "oci",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&dest)
        .run_ok();
    let copy = format!("docker://{}/cl/sk-copy:v1", c.host());
    skopeo(work.path())
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args([&dest, &copy])
        .run_ok();
    let raw = skopeo(work.path())
        .args(["inspect", "--tls-verify=false", "--raw", &copy])
        .run_ok()
        .stdout;
    assert_eq!(raw.as_bytes(), &sk.index.data[..]);
    for b in sk.image("amd64").blobs() {
        let got = client.get(&format!("/v2/cl/sk-copy/blobs/{}", b.digest));
        assert_eq!(got.status, 200, "{}", b.digest);
        assert!(got.body == b.data, "{}: bytes differ", b.digest);
    }
}

#[test]
fn conformance_runner_through_the_load_balancer() {
    let c = Cluster::start(2, "");
    let bin = e2e::registry_bin().with_file_name("conformance");
    assert!(
        bin.is_file(),
        "{} not built (cargo build --workspace)",
        bin.display()
    );
    let out = e2e::cmd(&bin)
        .args(["--url", &c.url()])
        .timeout(std::time::Duration::from_secs(600))
        .run();
    let text = format!("{}{}", out.stdout, out.stderr);
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no closing line:\n{text}"));
    assert!(last.contains(" passed, 0 failed"), "{last}\n{text}");
    eprintln!("conformance through nginx: {last}");
    assert!(out.success(), "{text}");
    both_nodes_served(&c, "/v2/");
}

#[test]
fn downloads_stream_with_range_when_redirects_are_off() {
    let bucket = e2e::cluster::Bucket::shared();
    let c = Cluster::start_with(
        2,
        bucket,
        e2e::cluster::shared_database(),
        "",
        "redirect = false",
    );
    let client = Client::new(&c.url());
    let image = oci::simple_image("cluster-range");
    client.push_image("cl/range", "v1", &image);
    let layer = &image.layers[0].blob;
    for _ in 0..4 {
        // Each round lands on a node in turn: both stream, neither
        // redirects.
        let whole = client.get(&format!("/v2/cl/range/blobs/{}", layer.digest));
        assert_eq!(whole.status, 200);
        assert!(whole.body == layer.data);
        let part = client.send(
            client
                .request(
                    reqwest::Method::GET,
                    &format!("/v2/cl/range/blobs/{}", layer.digest),
                )
                .header("range", "bytes=3-9"),
        );
        assert_eq!(part.status, 206);
        assert!(part.body == layer.data[3..10]);
        assert_eq!(
            part.header("content-range").as_deref(),
            Some(format!("bytes 3-9/{}", layer.data.len()).as_str())
        );
    }
    assert_eq!(count(&c.nodes, "GET", "/v2/cl/range/blobs/", 307), 0);
    both_nodes_served(&c, "/v2/cl/range/blobs/");
}

#[test]
fn early_refusals_reach_the_client_through_the_load_balancer() {
    // Answered before the body is read (a manifest over the limit by its
    // Content-Length, a PATCH to an unknown upload): the node reads the
    // rest after answering. Found by the conformance runner through nginx:
    // the node closed with unread bytes, the TCP reset destroyed the 413,
    // nginx (still sending the body) answered 502 and marked the node down.
    let c = Cluster::start(2, "");
    let big = vec![b' '; (4 << 20) + (512 << 10)];
    let patch_body = vec![7u8; 8 << 20];
    let patch_path = "/v2/cl/early/blobs/uploads/7a1b6a3e-0000-4000-8000-000000000000";

    // On a node: the connection survives the early answer (its next
    // request is served on it), so no reset can reach a proxy.
    let node = c.nodes[0].port();
    for (head, body, status) in [
        (
            format!(
                "PUT /v2/cl/early/manifests/oversize HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
                big.len()
            ),
            &big,
            "413",
        ),
        (
            format!(
                "PATCH {patch_path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\n\r\n",
                patch_body.len()
            ),
            &patch_body,
            "404",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", node)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        use std::io::{Read, Write};
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // Both answers arrive on this connection, in order.
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        while seen.windows(12).filter(|w| w.starts_with(b"HTTP/1.1 ")).count() < 2 {
            let n = s.read(&mut buf).expect("the connection stays open");
            assert!(n > 0, "closed after: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, [status, "200"], "{text}");
    }

    // Through nginx: never a 502, and nginx saw no upstream failure. (A
    // transport error on the client's side is nginx's own race between
    // answering and the client still sending, not the node's; but most
    // requests are answered, and the nodes answered them.)
    let client = Client::new(&c.url());
    let (mut answered, mut lost) = ([0; 2], Vec::new());
    for round in 0..10 {
        let r = client.try_send(
            client
                .request(reqwest::Method::PUT, "/v2/cl/early/manifests/oversize")
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(big.clone()),
        );
        match r {
            Ok(r) => {
                assert_eq!(r.status, 413, "round {round}: {}", r.describe());
                answered[0] += 1;
            }
            Err(e) => lost.push(e),
        }
        let r = client.try_send(
            client
                .request(reqwest::Method::PATCH, patch_path)
                .header("content-type", "application/octet-stream")
                .body(patch_body.clone()),
        );
        match r {
            Ok(r) => {
                assert_eq!(r.status, 404, "round {round}: {}", r.describe());
                answered[1] += 1;
            }
            Err(e) => lost.push(e),
        }
    }
    eprintln!("answered through nginx (PUT, PATCH) of 10 each: {answered:?}; lost: {lost:#?}");
    assert!(
        answered.iter().all(|n| *n >= 5),
        "answered through nginx (PUT, PATCH) of 10 each: {answered:?}; lost: {lost:#?}"
    );
    // The nodes answered them (and the one sent to node 0 directly).
    for (method, path, status, n) in [
        ("PUT", "/v2/cl/early/manifests/oversize", 413, answered[0]),
        ("PATCH", patch_path, 404, answered[1]),
    ] {
        let logged = count(&c.nodes, method, path, status);
        assert!(
            logged > n,
            "{method} {path}: the nodes logged {logged} {status}s"
        );
    }
    let errors = std::fs::read_to_string(c.lb.dir.join("error.log"))
        .unwrap_or_else(|e| panic!("nginx's error.log in {}: {e}", c.lb.dir.display()));
    assert!(
        !errors.contains("upstream prematurely closed")
            && !errors.contains("while sending request to upstream")
            && !errors.contains("no live upstreams"),
        "{errors}"
    );
}
