//! Found by outside review: on PostgreSQL, a blob's digest fence (an
//! advisory lock on a connection of a 16-connection pool) was taken before
//! the last chunk's body streamed in, and an upload session's lock held a
//! connection of the main pool for a whole request. So 17 slow single-PUT
//! uploads on one node made every other commit fail after the pool's 5 s
//! acquire timeout. Now nothing holds a connection while a client sends.
//!
//! 50 clients start uploads whose bodies stall half-way (single-request
//! PUTs, and PATCHes), and while they all stall, other clients push whole
//! images: each push must succeed promptly. Then the stalled clients send
//! the rest, and their blobs must be stored. On PostgreSQL with blobs in S3
//! (moto) and on local disk.

use e2e::cluster::{node_config, shared_database, Bucket};
use e2e::http::with_query;
use e2e::oci;
use e2e::{Client, Registry};
use sha2::Digest as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SLOW: usize = 50;
const BODY: usize = 64 * 1024;

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A client that has sent a request's head and half its body, and waits.
struct Stalled {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl Stalled {
    /// `method` on `path` with a `BODY`-byte body of which half is sent.
    fn start(port: u16, method: &str, path: &str, body: &[u8], extra: &str) -> Stalled {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body[..body.len() / 2]).unwrap();
        Stalled {
            stream,
            rest: body[body.len() / 2..].to_vec(),
        }
    }

    /// Send the rest; the response's status line.
    fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).unwrap();
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        while !got.windows(2).any(|w| w == b"\r\n") {
            let n = self.stream.read(&mut buf).expect("read the answer");
            assert!(n > 0, "connection closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        text.lines().next().unwrap_or_default().to_owned()
    }
}

/// `registry_uploads_in_progress` as `/metrics` shows it.
fn uploads_in_progress(client: &Client) -> f64 {
    let text = client.get("/metrics").expect_status(200).text();
    text.lines()
        .find_map(|l| l.strip_prefix("registry_uploads_in_progress "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn slow_uploads_hold_no_pool_connection(reg: &Registry, what: &str) {
    let client = Client::new(&reg.url());
    let port = reg.port();
    let mut stalled = Vec::new();
    let mut expected = Vec::new();
    for i in 0..SLOW {
        let body: Vec<u8> = format!("slow blob {i} ")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(BODY)
            .collect();
        let digest = digest_of(&body);
        let loc = client.start_upload("slow/app");
        let path = loc
            .split_once("127.0.0.1")
            .and_then(|(_, r)| r.split_once('/'))
            .map(|(_, p)| format!("/{p}"))
            .expect("a path in the Location");
        // Two in three: the single final PUT; else a PATCH (session lock).
        let s = if i % 3 != 2 {
            Stalled::start(
                port,
                "PUT",
                &with_query(&path, "digest", &digest),
                &body,
                "",
            )
        } else {
            let range = format!("Content-Range: 0-{}\r\n", BODY - 1);
            Stalled::start(port, "PATCH", &path, &body, &range)
        };
        stalled.push((s, i % 3 == 2, path, digest.clone(), body));
        expected.push(digest);
    }
    // Every stalled request is inside its handler, waiting for its body.
    let deadline = Instant::now() + Duration::from_secs(60);
    while uploads_in_progress(&client) < SLOW as f64 {
        assert!(
            Instant::now() < deadline,
            "{what}: the stalled uploads did not all reach their handlers"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Pushes meanwhile: each whole image well within the pool's timeout.
    for round in 0..5 {
        let img = oci::simple_image(&format!("{what}-{round}"));
        let started = Instant::now();
        client.push_image("busy/app", &format!("v{round}"), &img);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "{what}: a push took {took:?} while {SLOW} uploads stalled"
        );
    }
    assert_eq!(
        uploads_in_progress(&client),
        SLOW as f64,
        "{what}: the stalled uploads were still in flight during the pushes"
    );
    // The stalled clients finish: their uploads succeed.
    for (s, patched, path, digest, _) in stalled {
        let status = s.finish();
        if patched {
            assert!(status.contains(" 202 "), "{what}: PATCH answered {status}");
            let r = client.send(
                client
                    .request(reqwest::Method::PUT, &with_query(&path, "digest", &digest))
                    .header("Content-Length", "0"),
            );
            assert_eq!(r.status, 201, "{what}: {}", r.describe());
        } else {
            assert!(status.contains(" 201 "), "{what}: PUT answered {status}");
        }
    }
    for digest in expected {
        client.get_blob_verified("slow/app", &digest);
    }
}

#[test]
fn slow_uploads_on_postgresql_and_s3_leave_the_pool_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), &Bucket::shared(), &shared_database(), "", "");
    let reg = Registry::start_with(&["--config", config.to_str().unwrap()]);
    slow_uploads_hold_no_pool_connection(&reg, "postgresql+s3");
}

#[test]
fn slow_uploads_on_postgresql_and_local_disk_leave_the_pool_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("[metadata]\nurl = \"{}\"\n", shared_database()),
    )
    .unwrap();
    let reg = Registry::start_with(&["--config", config.to_str().unwrap()]);
    slow_uploads_hold_no_pool_connection(&reg, "postgresql+local");
}
