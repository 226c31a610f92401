//! Malformed and hostile requests over plain HTTP. Every rejection must carry
//! a distribution error body, and none of them may disturb a good image that
//! was pushed first.
//!
//! All cases run against one registry; each case runs under `catch_unwind` so
//! that one failure does not hide the others, and the test fails at the end
//! with the list of failed cases.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use e2e::http::{with_query, Client, Resp};
use e2e::oci::{self, Blob, Image, MT_DOCKER_SCHEMA1_SIGNED, MT_OCI_MANIFEST};
use e2e::{blob_files, sha256_digest, Registry};
use reqwest::Method;
use serde_json::json;

const REPO: &str = "e2e/bad";

struct Ctx<'a> {
    reg: &'a Registry,
    c: Client,
    good: Image,
}

impl Ctx<'_> {
    fn patch(&self, loc: &str, range: Option<&str>, body: Vec<u8>) -> Resp {
        let mut rb = self
            .c
            .request(Method::PATCH, loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", body.len().to_string());
        if let Some(r) = range {
            rb = rb.header("Content-Range", r);
        }
        self.c.send(rb.body(body))
    }

    fn put_digest(&self, loc: &str, digest: &str, body: Vec<u8>) -> Resp {
        self.c.send(
            self.c
                .request(Method::PUT, &with_query(loc, "digest", digest))
                .header("Content-Type", "application/octet-stream")
                .body(body),
        )
    }

    fn assert_blob_absent(&self, digest: &str) {
        let r = self.c.head(&format!("/v2/{REPO}/blobs/{digest}"));
        assert_eq!(
            r.status,
            404,
            "blob {digest} should not exist:\n{}",
            r.describe()
        );
        let hex = digest.trim_start_matches("sha256:");
        let files = blob_files(self.reg.data_dir());
        // The scan must see the blobs that are there, or finding no file
        // for the rejected one proves nothing.
        for b in self.good.blobs() {
            assert!(
                files.iter().any(|(_, n)| n == b.hex()),
                "the good blob {} is not where the scan looks ({}/blobs): the on-disk \
                 layout changed",
                b.digest,
                self.reg.data_dir().display()
            );
        }
        assert!(
            !files.iter().any(|(_, n)| n == hex),
            "a file for rejected blob {digest} exists under blobs/"
        );
    }

    /// The upload's state: `None` if the registry forgot it (404
    /// BLOB_UPLOAD_UNKNOWN), else the end of its `Range` (`0-<end>`), which
    /// a 204 must carry.
    fn upload_range(&self, loc: &str) -> Option<String> {
        let st = self.c.get(loc);
        match st.status {
            204 => {
                let range = st.require_header("range");
                assert!(
                    range
                        .strip_prefix("0-")
                        .is_some_and(|end| end.parse::<u64>().is_ok()),
                    "Range {range:?} is not 0-<end>:\n{}",
                    st.describe()
                );
                Some(range)
            }
            404 => {
                st.expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
                None
            }
            _ => panic!("unexpected upload status:\n{}", st.describe()),
        }
    }

    /// Proves an upload session holds no bytes: a chunk starting at 0 is
    /// taken (it would be 416 otherwise) and the blob completes intact.
    fn assert_resumes_from_zero(&self, loc: &str, data: &[u8]) {
        let r = self
            .patch(loc, Some(&format!("0-{}", data.len() - 1)), data.to_vec())
            .expect_status(202);
        assert_eq!(
            r.require_header("range"),
            format!("0-{}", data.len() - 1),
            "{}",
            r.describe()
        );
        let digest = sha256_digest(data);
        self.put_digest(&r.location(), &digest, Vec::new())
            .expect_status(201);
        assert_eq!(self.c.get_blob_verified(REPO, &digest), data);
    }

    /// A manifest over the good image's blobs with extra `annotations`.
    fn manifest_with_annotation(&self, key: &str, value: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": self.good.config.descriptor(),
            "layers": self.good.layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
            "annotations": {key: value},
        }))
        .unwrap()
    }
}

/// Send raw bytes on a fresh connection, half-close, and read until the
/// server closes it. A server that neither answers nor closes within 15 s
/// hangs the client: that panics.
fn raw_http(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may stop reading early; what it answers is what counts.
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        // Closed with unread input: the connection ended, which is the point.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
            "the server neither answered nor closed the connection within 15 s (got {} bytes)",
            buf.len()
        ),
        Err(e) => panic!("reading the response failed: {e}"),
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn path_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/')
                .map_or("/".to_string(), |j| rest[j..].to_string())
        }
        None => url.to_string(),
    }
}

fn wrong_digest_on_put(x: &Ctx) {
    let data = b"some blob data for a wrong digest".to_vec();
    let claimed = sha256_digest(b"something else entirely");
    let loc = x.c.start_upload(REPO);
    let r = x.put_digest(&loc, &claimed, data.clone());
    r.expect_error(&[400], &["DIGEST_INVALID"]);
    x.assert_blob_absent(&claimed);
    x.assert_blob_absent(&sha256_digest(&data));

    // Syntactically invalid digests.
    for bad in ["sha256:zzzz", "sha256:abc", "nonsense"] {
        let loc = x.c.start_upload(REPO);
        let r = x.put_digest(&loc, bad, data.clone());
        r.expect_error(&[400], &["DIGEST_INVALID"]);
    }
    // Monolithic POST ?digest= with a wrong digest.
    let r = x.c.send(
        x.c.request(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?digest={claimed}"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data),
    );
    r.expect_error(&[400], &["DIGEST_INVALID"]);
    x.assert_blob_absent(&claimed);
}

fn partial_upload_then_full_digest(x: &Ctx) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let full = sha256_digest(&data);
    let half = data.len() / 2;
    let loc = x.c.start_upload(REPO);
    let r = x
        .patch(
            &loc,
            Some(&format!("0-{}", half - 1)),
            data[..half].to_vec(),
        )
        .expect_status(202);
    assert_eq!(
        r.header("range").as_deref(),
        Some(format!("0-{}", half - 1).as_str()),
        "Range after first chunk:\n{}",
        r.describe()
    );
    let loc = r.location();
    // Close the upload claiming the digest of the full data: must fail.
    let r = x.put_digest(&loc, &full, Vec::new());
    r.expect_error(
        &[400],
        &["DIGEST_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID"],
    );
    x.assert_blob_absent(&full);
}

fn content_range_claims_more_than_body(x: &Ctx) {
    let loc = x.c.start_upload(REPO);
    let r = x.patch(&loc, Some("0-1023"), vec![1u8; 512]);
    r.expect_error(
        &[400, 416],
        &["BLOB_UPLOAD_INVALID", "SIZE_INVALID", "RANGE_INVALID"],
    );
    // The short chunk is rolled back whole: the session is empty (or gone).
    if let Some(range) = x.upload_range(&loc) {
        assert_eq!(range, "0-0", "upload recorded bytes of a rejected chunk");
        let data: Vec<u8> = (0..1024u32).map(|i| (i % 7) as u8).collect();
        x.assert_resumes_from_zero(&loc, &data);
    }
}

fn truncated_body_connection_closed(x: &Ctx) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
    let full = sha256_digest(&data);
    let send_half = |loc: &str| {
        let path = path_of(loc);
        let mut req = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nContent-Range: 0-{}\r\nConnection: close\r\n\r\n",
            x.reg.host(),
            data.len(),
            data.len() - 1
        )
        .into_bytes();
        req.extend_from_slice(&data[..data.len() / 2]);
        let response = raw_http(x.reg.port(), &req);
        // Either no answer (the body never completed) or a refusal.
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 4"),
            "a truncated PATCH must not succeed; got:\n{response}"
        );
    };

    // Completing a truncated upload must fail and store nothing.
    let loc = x.c.start_upload(REPO);
    send_half(&loc);
    let r = x.put_digest(&loc, &full, Vec::new());
    assert!(
        (400..500).contains(&r.status),
        "completing a truncated upload must fail:\n{}",
        r.describe()
    );
    r.error_codes();
    x.assert_blob_absent(&full);

    // Nothing of the half chunk is kept: the upload resumes from 0.
    let loc = x.c.start_upload(REPO);
    send_half(&loc);
    if let Some(range) = x.upload_range(&loc) {
        assert_eq!(range, "0-0", "upload kept part of a truncated chunk");
        x.assert_resumes_from_zero(&loc, &data);
    }
}

fn bad_repository_names(x: &Ctx) {
    let names = [
        "Upper/case",
        "e2e/UPPER",
        "e2e/a..b",
        "e2e/-lead",
        "e2e/trail-",
        "e2e/a___b",
        "e2e/.hidden",
        "e2e/trail_",
        "e2e/sp%20ace",
    ];
    for name in names {
        let r =
            x.c.send(x.c.request(Method::POST, &format!("/v2/{name}/blobs/uploads/")));
        r.expect_error(&[400], &["NAME_INVALID"]);
        let r =
            x.c.put_manifest_raw(name, "v1", MT_OCI_MANIFEST, x.good.manifest.data.clone());
        r.expect_error(&[400], &["NAME_INVALID"]);
    }
    // A long but valid multi-component name works.
    let ok = "e2e/a-b_c.d/e__f/g0";
    x.c.push_image(ok, "v1", &x.good);
}

fn bad_tags(x: &Ctx) {
    let repo = "e2e/bad-tags";
    for b in x.good.blobs() {
        x.c.push_blob(repo, &b.data);
    }
    let long_bad = "a".repeat(129);
    for tag in ["-lead", ".dot", long_bad.as_str(), "bad%21tag", "bad%20tag"] {
        let r =
            x.c.put_manifest_raw(repo, tag, MT_OCI_MANIFEST, x.good.manifest.data.clone());
        r.expect_error(&[400], &["TAG_INVALID", "MANIFEST_INVALID", "NAME_INVALID"]);
    }
    let long_ok = format!("_{}", "a".repeat(127));
    x.c.push_manifest(repo, &long_ok, &x.good.manifest);
    assert_eq!(x.c.tags(repo), vec![long_ok]);
}

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

fn oversized_manifest(x: &Ctx) {
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

fn malformed_manifests(x: &Ctx) {
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

fn chunks_out_of_order(x: &Ctx) {
    let data: Vec<u8> = (0..30u8).collect();
    let loc = x.c.start_upload(REPO);
    let r = x
        .patch(&loc, Some("0-9"), data[..10].to_vec())
        .expect_status(202);
    let loc = r.location();
    // Skips 10..19.
    let r = x.patch(&loc, Some("20-29"), data[20..].to_vec());
    r.expect_error(
        &[416],
        &["BLOB_UPLOAD_INVALID", "RANGE_INVALID", "SIZE_INVALID"],
    );
    // Overlaps what was already written.
    let r = x.patch(&loc, Some("5-14"), data[5..15].to_vec());
    r.expect_error(
        &[416],
        &["BLOB_UPLOAD_INVALID", "RANGE_INVALID", "SIZE_INVALID"],
    );
    // The session is intact and continues where it was.
    let st = x.c.get(&loc).expect_status(204);
    assert_eq!(
        st.header("range").as_deref(),
        Some("0-9"),
        "{}",
        st.describe()
    );
    let r = x
        .patch(&loc, Some("10-19"), data[10..20].to_vec())
        .expect_status(202);
    let loc = r.location();
    let r = x
        .patch(&loc, Some("20-29"), data[20..].to_vec())
        .expect_status(202);
    let loc = r.location();
    let digest = sha256_digest(&data);
    x.put_digest(&loc, &digest, Vec::new()).expect_status(201);
    assert_eq!(x.c.get_blob_verified(REPO, &digest), data);
}

fn unknown_upload_id(x: &Ctx) {
    let id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let path = format!("/v2/{REPO}/blobs/uploads/{id}");
    x.c.get(&path)
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    x.patch(&path, Some("0-3"), b"data".to_vec())
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    x.put_digest(&path, &sha256_digest(b"data"), b"data".to_vec())
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    x.c.delete(&path)
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);

    // An upload id from one repository is unknown in another.
    let loc = x.c.start_upload("e2e/bad-other");
    let foreign =
        x.c.url(&loc)
            .replacen("/e2e/bad-other/", &format!("/{REPO}/"), 1);
    assert_ne!(
        foreign,
        x.c.url(&loc),
        "Location does not contain the repository: {loc}"
    );
    x.c.get(&foreign)
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    x.put_digest(&foreign, &sha256_digest(b"x"), b"x".to_vec())
        .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);

    // After a completed upload, its id is no longer usable.
    let loc = x.c.start_upload(REPO);
    let d = sha256_digest(b"once");
    x.put_digest(&loc, &d, b"once".to_vec()).expect_status(201);
    x.c.get(&loc).expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
}

fn manifest_blob_unknown(x: &Ctx) {
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

fn schema1_manifest(x: &Ctx) {
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

fn not_found_codes(x: &Ctx) {
    let unknown = sha256_digest(b"unknown blob");
    x.c.get(&format!("/v2/{REPO}/blobs/{unknown}"))
        .expect_error(&[404], &["BLOB_UNKNOWN"]);
    x.c.get(&format!("/v2/{REPO}/manifests/no-such-tag"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    x.c.get(&format!("/v2/{REPO}/manifests/{unknown}"))
        .expect_error(&[404], &["MANIFEST_UNKNOWN"]);
    x.c.get("/v2/e2e/no-such-repo/tags/list")
        .expect_error(&[404], &["NAME_UNKNOWN"]);
}

#[test]
fn bad_input_is_rejected_and_good_image_survives() {
    let reg = Registry::start();
    let c = reg.client();
    let good = oci::simple_image("bad-input-good");
    let good_digest = c.push_image(REPO, "v1", &good);
    let x = Ctx { reg: &reg, c, good };

    type Case = fn(&Ctx);
    let cases: &[(&str, Case)] = &[
        ("wrong_digest_on_put", wrong_digest_on_put),
        (
            "partial_upload_then_full_digest",
            partial_upload_then_full_digest,
        ),
        (
            "content_range_claims_more_than_body",
            content_range_claims_more_than_body,
        ),
        (
            "truncated_body_connection_closed",
            truncated_body_connection_closed,
        ),
        ("bad_repository_names", bad_repository_names),
        ("bad_tags", bad_tags),
        ("oversized_manifest", oversized_manifest),
        ("malformed_manifests", malformed_manifests),
        ("chunks_out_of_order", chunks_out_of_order),
        ("unknown_upload_id", unknown_upload_id),
        ("manifest_blob_unknown", manifest_blob_unknown),
        ("schema1_manifest", schema1_manifest),
        ("not_found_codes", not_found_codes),
    ];
    let mut failed: Vec<String> = Vec::new();
    let mut seen_server_errors = 0;
    for (name, case) in cases {
        eprintln!("--- case {name}");
        if catch_unwind(AssertUnwindSafe(|| case(&x))).is_err() {
            failed.push(name.to_string());
        }
        // Every request of the case is in the log before it is scanned.
        reg.log_barrier();
        let server_errors: Vec<String> = reg
            .requests()
            .iter()
            .filter(|r| r.status >= 500)
            .map(|r| format!("{} {} -> {}", r.method, r.raw_uri, r.status))
            .collect();
        if server_errors.len() > seen_server_errors {
            eprintln!(
                "case {name} caused server errors: {:?}",
                &server_errors[seen_server_errors..]
            );
            failed.push(format!("{name} (5xx)"));
            seen_server_errors = server_errors.len();
        }
    }

    // The good image is intact.
    let m = x.c.get_manifest(REPO, "v1");
    assert_eq!(m.body, x.good.manifest.data, "manifest bytes changed");
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(good_digest.as_str()),
        "tag v1 no longer resolves to the good manifest"
    );
    assert_eq!(
        x.c.get_manifest(REPO, &good_digest).body,
        x.good.manifest.data
    );
    for b in x.good.blobs() {
        assert_eq!(x.c.get_blob_verified(REPO, &b.digest), b.data);
    }
    let tags = x.c.tags(REPO);
    assert_eq!(tags, vec!["v1".to_string()], "unexpected tags in {REPO}");

    assert!(
        failed.is_empty(),
        "failed cases: {failed:?} (details above)"
    );
}
