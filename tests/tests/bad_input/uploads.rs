//! Bad uploads: wrong or invalid digests, a partial upload closed with the
//! full digest, a Content-Range beyond the body, a body cut short by a
//! closed connection, chunks out of order, and unknown upload ids.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::sha256_digest;
use reqwest::Method;

use crate::{Ctx, REPO};

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

pub fn wrong_digest_on_put(x: &Ctx) {
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

pub fn partial_upload_then_full_digest(x: &Ctx) {
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

pub fn content_range_claims_more_than_body(x: &Ctx) {
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

pub fn truncated_body_connection_closed(x: &Ctx) {
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

pub fn chunks_out_of_order(x: &Ctx) {
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

pub fn unknown_upload_id(x: &Ctx) {
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
