//! A node on S3 + PostgreSQL while one of them is down: requests that need
//! it get 503 with `Retry-After` and an OCI error body, `/readyz` fails,
//! nothing half-written becomes visible, and service resumes on its own
//! once the server is back. Each test runs its own server (s3s-fs, or a
//! PostgreSQL of its own) so it can stop and start it.

use e2e::cluster::{shared_database, Bucket, Cluster, PrivatePostgres, S3sFs};
use e2e::{oci, sha256_digest, Client};
use reqwest::Method;
use std::time::{Duration, Instant};

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

fn with_digest(path: &str, digest: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}digest={digest}")
}

fn patch(c: &Client, path: &str, start: usize, data: &[u8]) -> e2e::http::Resp {
    c.send(
        c.request(Method::PATCH, path)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + data.len() - 1),
            )
            .body(data.to_vec()),
    )
}

/// 503, `Retry-After`, and an OCI error body saying UNAVAILABLE.
fn assert_unavailable(r: &e2e::http::Resp, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.describe());
    assert!(r.header("retry-after").is_some(), "{what}: no Retry-After");
    let body: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: not an OCI error body ({e}): {}", r.describe()));
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{what}: {body}");
}

fn readyz(c: &Client) -> u16 {
    c.get("/readyz").status
}

/// Poll `/readyz` until it answers `want`.
fn until_ready(c: &Client, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while readyz(c) != want {
        assert!(Instant::now() < deadline, "/readyz never answered {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pseudo(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn s3_down_mid_push_then_back() {
    let mut s3 = S3sFs::start();
    let c = Cluster::start_with(1, s3.bucket(), shared_database(), "", "");
    let node = c.nodes[0].client();
    let before = oci::simple_image("s3-outage-before");
    node.push_image("out/app", "before", &before);

    // A push under way: 9 MiB in (one multipart part sent, a tail parked).
    let data = pseudo(12 << 20, 1);
    let digest = sha256_digest(&data);
    let path = path_of(&node.start_upload("out/app"));
    let r = patch(&node, &path, 0, &data[..9 << 20]).expect_status(202);
    let path = path_of(&r.location());

    s3.halt();
    until_ready(&node, 503);
    assert_unavailable(
        &patch(&node, &path, 9 << 20, &data[9 << 20..]),
        "PATCH with S3 down",
    );
    let put = with_digest(&path, &digest);
    assert_unavailable(
        &node.send(node.request(Method::PUT, &put)),
        "final PUT with S3 down",
    );
    // Nothing of the unfinished blob is visible; what was there still is
    // known (the database answers).
    assert_eq!(
        node.head(&format!("/v2/out/app/blobs/{digest}")).status,
        404
    );
    assert_eq!(node.head("/v2/out/app/manifests/before").status, 200);

    s3.resume();
    until_ready(&node, 200);
    // The session is where it was: the failed requests changed nothing.
    let status = node.get(&path).expect_status(204);
    assert_eq!(
        status.require_header("range"),
        format!("0-{}", (9 << 20) - 1)
    );
    let r = patch(&node, &path, 9 << 20, &data[9 << 20..]).expect_status(202);
    let path = path_of(&r.location());
    let put = with_digest(&path, &digest);
    node.send(node.request(Method::PUT, &put))
        .expect_status(201);
    assert!(node.get_blob_verified("out/app", &digest) == data);
    let after = oci::simple_image("s3-outage-after");
    node.push_image("out/app", "after", &after);
    for b in before.blobs() {
        assert!(node.get_blob_verified("out/app", &b.digest) == b.data);
    }
}

#[test]
fn postgres_down_mid_push_then_back() {
    let mut pg = PrivatePostgres::start();
    let c = Cluster::start_with(1, Bucket::shared(), pg.url.clone(), "", "");
    let node = c.nodes[0].client();
    let before = oci::simple_image("pg-outage-before");
    node.push_image("out/app", "before", &before);
    let next = oci::simple_image("pg-outage-next");
    for b in next.blobs() {
        node.push_blob("out/app", &b.data);
    }
    let data = pseudo(3 << 20, 2);
    let digest = sha256_digest(&data);
    let path = path_of(&node.start_upload("out/app"));
    let r = patch(&node, &path, 0, &data[..1 << 20]).expect_status(202);
    let path = path_of(&r.location());

    pg.halt();
    until_ready(&node, 503);
    assert_unavailable(
        &patch(&node, &path, 1 << 20, &data[1 << 20..]),
        "PATCH with PostgreSQL down",
    );
    assert_unavailable(
        &node.put_manifest_raw(
            "out/app",
            "next",
            &next.manifest.media_type,
            next.manifest.data.clone(),
        ),
        "manifest PUT with PostgreSQL down",
    );
    let r = node.send(node.request(Method::POST, "/v2/out/app/blobs/uploads/"));
    assert_unavailable(&r, "POST with PostgreSQL down");

    pg.resume();
    until_ready(&node, 200);
    // Nothing half-written: the tag did not move, the session is as it was.
    assert_eq!(node.head("/v2/out/app/manifests/next").status, 404);
    assert_eq!(
        sha256_digest(&node.get_manifest("out/app", "before").body),
        before.manifest.digest
    );
    let status = node.get(&path).expect_status(204);
    assert_eq!(
        status.require_header("range"),
        format!("0-{}", (1 << 20) - 1)
    );
    let r = patch(&node, &path, 1 << 20, &data[1 << 20..]).expect_status(202);
    let path = path_of(&r.location());
    let put = with_digest(&path, &digest);
    node.send(node.request(Method::PUT, &put))
        .expect_status(201);
    assert!(node.get_blob_verified("out/app", &digest) == data);
    node.push_manifest("out/app", "next", &next.manifest);
    assert_eq!(
        sha256_digest(&node.get_manifest("out/app", "next").body),
        next.manifest.digest
    );
}
