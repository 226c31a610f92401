//! Bad manifests: oversized (the refusal must reach a client still
//! sending), malformed, naming blobs the repository lacks, and Docker's
//! schema 1.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::oci::{self, Blob, MT_DOCKER_SCHEMA1_SIGNED, MT_OCI_MANIFEST};
use e2e::sha256_digest;
use serde_json::json;

use crate::{Ctx, REPO};

/// PUT `body` on a fresh connection the way RFC 9112 §9.5 asks of a client
/// sending content: watch for an early answer while writing, and stop
/// writing once there is one (Docker's and containerd's Go client does; a
/// registry may refuse an oversized body from its headers alone). Returns
/// the raw response; the request asks the server to close.
fn put_watching(port: u16, path: &str, content_type: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send the request head");
    for chunk in body.chunks(64 * 1024) {
        s.set_nonblocking(true).unwrap();
        let answered =
            !matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        // An answer, or a write the server no longer reads: stop sending.
        if answered || s.write_all(chunk).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no complete answer within 15 s (got {} bytes)", buf.len())
        }
        Err(e) => panic!("reading the answer failed: {e}"),
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn oversized_manifest(x: &Ctx) {
    let body = x.manifest_with_annotation("e2e.padding", &"x".repeat(4 * 1024 * 1024 + 1024));
    assert!(body.len() > 4 * 1024 * 1024);
    let digest = sha256_digest(&body);
    // Several times: the answer must reach the client every time, whether
    // the registry reads the body first or answers from the headers and
    // closes (then only a client that watches the connection sees it).
    for attempt in 1..=3 {
        let response = put_watching(
            x.reg.port(),
            &format!("/v2/{REPO}/manifests/huge"),
            MT_OCI_MANIFEST,
            &body,
        );
        let status = response.split_whitespace().nth(1).unwrap_or("");
        assert!(
            status == "413" || status == "400",
            "attempt {attempt}: an oversized manifest PUT must be refused with 413 (or 400) \
             and the client must see it; got:\n{response}"
        );
        let json = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| {
            panic!("attempt {attempt}: error body is not JSON ({e}):\n{response}")
        });
        let code = v["errors"][0]["code"].as_str().unwrap_or("");
        assert!(
            ["SIZE_INVALID", "MANIFEST_INVALID"].contains(&code),
            "attempt {attempt}: error code {code:?}:\n{response}"
        );
    }
    x.c.get(&format!("/v2/{REPO}/manifests/{digest}"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    x.c.get(&format!("/v2/{REPO}/manifests/huge"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
}

pub fn malformed_manifests(x: &Ctx) {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", br#"{"schemaVersion": 2, "mediaType": "#.to_vec()),
        ("not JSON", b"this is not json".to_vec()),
        ("empty body", Vec::new()),
        ("JSON array", b"[1,2,3]".to_vec()),
        (
            "missing config",
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MT_OCI_MANIFEST,
                "layers": [],
            }))
            .unwrap(),
        ),
        (
            "schemaVersion 3",
            serde_json::to_vec(&json!({
                "schemaVersion": 3,
                "mediaType": MT_OCI_MANIFEST,
                "config": x.good.config.descriptor(),
                "layers": [],
            }))
            .unwrap(),
        ),
        (
            "bad layer digest syntax",
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MT_OCI_MANIFEST,
                "config": x.good.config.descriptor(),
                "layers": [{"mediaType": oci::MT_OCI_LAYER_GZIP, "digest": "sha256:nothex", "size": 1}],
            }))
            .unwrap(),
        ),
    ];
    for (what, body) in cases {
        let r =
            x.c.put_manifest_raw(REPO, "malformed", MT_OCI_MANIFEST, body);
        assert!(r.status == 400, "{what}: expected 400:\n{}", r.describe());
        r.expect_error(&[400], &["MANIFEST_INVALID", "DIGEST_INVALID"]);
    }
    x.c.get(&format!("/v2/{REPO}/manifests/malformed"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
}

pub fn manifest_blob_unknown(x: &Ctx) {
    let missing_layer = Blob::new(oci::MT_OCI_LAYER_GZIP, b"never uploaded layer".to_vec());
    let missing_config = Blob::new(oci::MT_OCI_CONFIG, b"{\"never\":\"uploaded\"}".to_vec());
    let with_missing_layer = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": x.good.config.descriptor(),
        "layers": [x.good.layers[0].blob.descriptor(), missing_layer.descriptor()],
    });
    let with_missing_config = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": missing_config.descriptor(),
        "layers": [x.good.layers[0].blob.descriptor()],
    });
    for m in [with_missing_layer, with_missing_config] {
        let body = serde_json::to_vec(&m).unwrap();
        let digest = sha256_digest(&body);
        x.c.put_manifest_raw(REPO, "missing-blob", MT_OCI_MANIFEST, body)
            .expect_error(&[400], &["MANIFEST_BLOB_UNKNOWN"]);
        x.c.get(&format!("/v2/{REPO}/manifests/{digest}"))
            .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    }
    // Blobs in another repository do not count for this one: push a blob
    // elsewhere only.
    let elsewhere =
        x.c.push_blob("e2e/bad-elsewhere", b"layer only in another repo");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": x.good.config.descriptor(),
        "layers": [{"mediaType": oci::MT_OCI_LAYER_GZIP, "digest": elsewhere, "size": 26}],
    });
    x.c.put_manifest_raw(
        REPO,
        "missing-blob",
        MT_OCI_MANIFEST,
        serde_json::to_vec(&m).unwrap(),
    )
    .expect_error(&[400], &["MANIFEST_BLOB_UNKNOWN"]);
}

pub fn schema1_manifest(x: &Ctx) {
    let layer = &x.good.layers[0].blob.digest;
    let body = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 1,
        "name": REPO,
        "tag": "schema1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": layer}],
        "history": [{"v1Compatibility": "{\"id\":\"e2e\"}"}],
        "signatures": [{
            "header": {"jwk": {"crv": "P-256", "kid": "X", "kty": "EC", "x": "x", "y": "y"}, "alg": "ES256"},
            "signature": "c2lnbmF0dXJl",
            "protected": "e30"
        }],
    }))
    .unwrap();
    for ct in [
        MT_DOCKER_SCHEMA1_SIGNED,
        "application/vnd.docker.distribution.manifest.v1+json",
    ] {
        x.c.put_manifest_raw(REPO, "schema1", ct, body.clone())
            .expect_error(&[400], &["MANIFEST_INVALID"]);
    }
    x.c.get(&format!("/v2/{REPO}/manifests/schema1"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
}
