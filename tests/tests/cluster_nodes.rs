//! Two registry nodes sharing one S3 bucket (moto) and one PostgreSQL
//! database, addressed one by one: an upload continued across nodes, racing
//! requests of one session, racing tag pushes, a tag moved on one node seen
//! by the other within the documented bound, and a node killed mid-upload.

use e2e::cluster::Cluster;
use e2e::{oci, sha256_digest, Client};
use reqwest::Method;
use std::time::{Duration, Instant};

/// How soon a change on one node is served by the others (README, "Several
/// nodes"): PostgreSQL notifies every node at commit.
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

/// The path and query of an absolute URL (to send it to another node).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

fn sep(path: &str) -> char {
    if path.contains('?') {
        '&'
    } else {
        '?'
    }
}

fn pseudo(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 31) as u8
                ^ seed
        })
        .collect()
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

fn clients(c: &Cluster) -> (Client, Client) {
    (c.nodes[0].client(), c.nodes[1].client())
}

#[test]
fn a_chunked_upload_alternates_between_the_nodes() {
    let c = Cluster::start(2, "");
    let (a, b) = clients(&c);
    // 20 MiB + 3 bytes: several multipart parts, chunks not aligned to them.
    let data = pseudo((20 << 20) + 3, 1);
    let digest = sha256_digest(&data);
    let mut path = path_of(&a.start_upload("alt/app"));
    let cuts = [0, 3 << 20, (9 << 20) + 1, 10 << 20, 17 << 20, data.len()];
    for (n, w) in cuts.windows(2).enumerate() {
        let node = if n % 2 == 0 { &b } else { &a };
        let r = patch(node, &path, w[0], &data[w[0]..w[1]]).expect_status(202);
        assert_eq!(r.require_header("range"), format!("0-{}", w[1] - 1));
        path = path_of(&r.location());
        // The other node reports the same progress.
        let other = if n % 2 == 0 { &a } else { &b };
        let status = other.get(&path).expect_status(204);
        assert_eq!(status.require_header("range"), format!("0-{}", w[1] - 1));
    }
    let put = format!("{path}{}digest={digest}", sep(&path));
    a.send(a.request(Method::PUT, &put)).expect_status(201);
    for node in [&a, &b] {
        assert!(node.get_blob_verified("alt/app", &digest) == data);
    }
}

#[test]
fn racing_patches_on_two_nodes_never_mix() {
    let c = Cluster::start(2, "");
    let (a, b) = clients(&c);
    for round in 0..5u8 {
        let path = path_of(&a.start_upload("race/app"));
        let one = pseudo(3 << 20, 10 + round);
        let two = pseudo(3 << 20, 50 + round);
        let (r1, r2) = std::thread::scope(|s| {
            let t1 = s.spawn(|| patch(&a, &path, 0, &one));
            let t2 = s.spawn(|| patch(&b, &path, 0, &two));
            (t1.join().unwrap(), t2.join().unwrap())
        });
        // Both claim offset 0: one gets in, the other gets 416 (never a
        // session holding both, never a 5xx).
        let winner = match (r1.status, r2.status) {
            (202, 416) => &one,
            (416, 202) => &two,
            other => panic!(
                "round {round}: statuses {other:?}: {} / {}",
                r1.describe(),
                r2.describe()
            ),
        };
        let loser = if r1.status == 416 { &r1 } else { &r2 };
        let body: serde_json::Value =
            serde_json::from_slice(&loser.body).expect("an OCI error body");
        assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID", "{body}");
        let digest = sha256_digest(winner);
        let put = format!("{path}{}digest={digest}", sep(&path));
        b.send(b.request(Method::PUT, &put)).expect_status(201);
        assert!(a.get_blob_verified("race/app", &digest) == *winner);
    }
}

#[test]
fn racing_pushes_of_one_tag_end_on_one_whole_manifest() {
    let c = Cluster::start(2, "");
    let (a, b) = clients(&c);
    for round in 0..10 {
        let one = oci::simple_image(&format!("tag-race-a-{round}"));
        let two = oci::simple_image(&format!("tag-race-b-{round}"));
        for blob in one.blobs() {
            a.push_blob("tags/app", &blob.data);
        }
        for blob in two.blobs() {
            b.push_blob("tags/app", &blob.data);
        }
        std::thread::scope(|s| {
            s.spawn(|| a.push_manifest("tags/app", "latest", &one.manifest));
            s.spawn(|| b.push_manifest("tags/app", "latest", &two.manifest));
        });
        for node in [&a, &b] {
            let m = node.get_manifest("tags/app", "latest");
            let d = sha256_digest(&m.body);
            assert!(
                d == one.manifest.digest || d == two.manifest.digest,
                "round {round}: the tag points at neither manifest"
            );
            assert_eq!(m.require_header("docker-content-digest"), d);
        }
        // Both nodes agree.
        let da = sha256_digest(&a.get_manifest("tags/app", "latest").body);
        let deadline = Instant::now() + VISIBLE_WITHIN;
        while sha256_digest(&b.get_manifest("tags/app", "latest").body) != da {
            assert!(
                Instant::now() < deadline,
                "round {round}: the nodes disagree on the tag"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Poll node `n` until `reference` answers as `want` says; how long it took.
fn until(c: &Client, what: &str, mut want: impl FnMut(&Client) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if want(c) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < VISIBLE_WITHIN,
            "{what}: not seen by the other node within {VISIBLE_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_change_on_one_node_is_served_by_the_other_within_the_bound() {
    let c = Cluster::start(2, "");
    let (a, b) = clients(&c);
    let v1 = oci::simple_image("moved-v1");
    let v2 = oci::simple_image("moved-v2");
    a.push_image("moved/app", "prod", &v1);
    a.push_image("moved/app", "v2", &v2);
    // B has the tag cached (read twice: the second from its cache).
    for _ in 0..2 {
        assert_eq!(
            sha256_digest(&b.get_manifest("moved/app", "prod").body),
            v1.manifest.digest
        );
    }
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        let (from, to) = if round % 2 == 0 {
            (&v1, &v2)
        } else {
            (&v2, &v1)
        };
        assert_eq!(
            sha256_digest(&b.get_manifest("moved/app", "prod").body),
            from.manifest.digest
        );
        a.push_manifest("moved/app", "prod", &to.manifest);
        let took = until(&b, "tag moved", |b| {
            sha256_digest(&b.get_manifest("moved/app", "prod").body) == to.manifest.digest
        });
        worst = worst.max(took);
    }
    // A tag deleted on A is gone on B; a manifest deleted on A too.
    let digest_v2 = v2.manifest.digest.clone();
    assert_eq!(
        b.head(&format!("/v2/moved/app/manifests/{digest_v2}"))
            .status,
        200
    );
    a.delete("/v2/moved/app/manifests/v2").expect_status(202);
    until(&b, "tag deleted", |b| {
        b.head("/v2/moved/app/manifests/v2").status == 404
    });
    let prod = sha256_digest(&a.get_manifest("moved/app", "prod").body);
    a.delete(&format!("/v2/moved/app/manifests/{prod}"))
        .expect_status(202);
    until(&b, "manifest deleted", |b| {
        b.head(&format!("/v2/moved/app/manifests/{prod}")).status == 404
            && b.head("/v2/moved/app/manifests/prod").status == 404
    });
    // A blob deleted on A stops being served by B (which had it cached).
    let layer = v2.layers[0].blob.digest.clone();
    for _ in 0..2 {
        assert_eq!(b.head(&format!("/v2/moved/app/blobs/{layer}")).status, 200);
    }
    a.delete(&format!("/v2/moved/app/blobs/{layer}"))
        .expect_status(202);
    until(&b, "blob deleted", |b| {
        b.head(&format!("/v2/moved/app/blobs/{layer}")).status == 404
    });
    // What a collection on A frees, B stops serving too: v2's config (its
    // manifest was deleted above), cached on B first.
    let config = v2.config.digest.clone();
    assert_eq!(b.get(&format!("/v2/moved/app/blobs/{config}")).status, 200);
    let r = a.send(
        a.request(reqwest::Method::POST, "/api/v1/gc")
            .json(&serde_json::json!({ "grace_secs": 0 })),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("\"report\""), "{}", r.text());
    until(&b, "collected blob gone", |b| {
        b.head(&format!("/v2/moved/app/blobs/{config}")).status == 404
    });
    eprintln!("slowest tag move seen by the other node: {worst:?}");
}

#[test]
fn a_node_killed_mid_upload_leaves_the_upload_to_the_other() {
    let mut c = Cluster::start(2, "");
    let (a, b) = clients(&c);
    let data = pseudo((12 << 20) + 77, 7);
    let digest = sha256_digest(&data);
    let path = path_of(&a.start_upload("killed/app"));
    let first = patch(&a, &path, 0, &data[..5 << 20]).expect_status(202);
    let path = path_of(&first.location());
    // A second PATCH is in flight on A when it dies: its bytes never count.
    let body_path = path.clone();
    let (sent_some, first_mib) = std::sync::mpsc::channel();
    let slow = slow_body(data[5 << 20..].to_vec(), sent_some);
    let inflight = std::thread::spawn(move || {
        // Cut off by the kill: a transport error, never an acknowledgement.
        a.try_send(
            a.request(Method::PATCH, &body_path)
                .header("content-type", "application/octet-stream")
                .body(slow),
        )
    });
    first_mib
        .recv_timeout(Duration::from_secs(30))
        .expect("the slow PATCH started sending");
    c.nodes[0].kill();
    let cut = inflight.join().expect("the PATCH thread");
    assert!(
        cut.as_ref().map_or(true, |r| r.status != 202),
        "a PATCH cut off by a kill was acknowledged"
    );
    // B knows how far the session got, takes the rest and finishes it.
    let status = b.get(&path).expect_status(204);
    let have: usize = status
        .require_header("range")
        .rsplit_once('-')
        .map(|(_, e)| e.parse::<usize>().unwrap() + 1)
        .unwrap();
    assert_eq!(have, 5 << 20, "only the acknowledged PATCH counts");
    let r = patch(&b, &path, have, &data[have..]).expect_status(202);
    let path = path_of(&r.location());
    let put = format!("{path}{}digest={digest}", sep(&path));
    b.send(b.request(Method::PUT, &put)).expect_status(201);
    assert!(b.get_blob_verified("killed/app", &digest) == data);
}

/// A request body that sends `data` slowly (a client on a slow link: 1 MiB
/// every 100 ms), and says on `sent_some` once its first MiB is out, so the
/// request is in flight when its node is killed.
fn slow_body(data: Vec<u8>, sent_some: std::sync::mpsc::Sender<()>) -> reqwest::blocking::Body {
    struct Slow(Vec<u8>, usize, std::sync::mpsc::Sender<()>);
    impl std::io::Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            const MIB: usize = 1 << 20;
            if self.1 >= self.0.len() {
                return Ok(0);
            }
            if self.1 > 0 && self.1.is_multiple_of(MIB) {
                let _ = self.2.send(());
                std::thread::sleep(Duration::from_millis(100));
            }
            let end = (self.1 + buf.len())
                .min(self.0.len())
                .min((self.1 / MIB + 1) * MIB);
            let n = end - self.1;
            buf[..n].copy_from_slice(&self.0[self.1..end]);
            self.1 = end;
            Ok(n)
        }
    }
    let len = data.len() as u64;
    reqwest::blocking::Body::sized(Slow(data, 0, sent_some), len)
}
