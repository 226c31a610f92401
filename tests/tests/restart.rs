//! An upload session survives a graceful restart of the registry; an
//! abandoned one is purged after the upload TTL.

use std::time::{Duration, Instant};

use e2e::http::with_query;
use e2e::{blob_files, oci, sha256_digest, Registry};
use reqwest::Method;

const MIB: usize = 1024 * 1024;

fn patch(c: &e2e::Client, loc: &str, start: usize, chunk: &[u8]) -> e2e::http::Resp {
    c.send(
        c.request(Method::PATCH, loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", chunk.len().to_string())
            .header(
                "Content-Range",
                format!("{}-{}", start, start + chunk.len() - 1),
            )
            .body(chunk.to_vec()),
    )
}

#[test]
fn chunked_upload_resumes_after_restart() {
    let mut reg = Registry::start();
    let c = reg.client();
    let repo = "e2e/restart";

    // Something committed before the restart must still be there afterwards.
    let image = oci::simple_image("restart");
    let image_digest = c.push_image(repo, "before", &image);

    let data: Vec<u8> = (0..5 * MIB as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let digest = sha256_digest(&data);
    let first = 3 * MIB;

    let loc = c.start_upload(repo);
    let r = patch(&c, &loc, 0, &data[..first]).expect_status(202);
    let expected_range = format!("0-{}", first - 1);
    assert_eq!(
        r.header("range").as_deref(),
        Some(expected_range.as_str()),
        "{}",
        r.describe()
    );
    let loc = r.location();
    let uuid = r.require_header("docker-upload-uuid");

    // Graceful stop.
    let status = reg.stop();
    assert!(
        status.success(),
        "registry did not exit cleanly on SIGTERM: {status}; log:\n{}",
        reg.log_tail(30)
    );
    assert!(!reg.is_running());

    reg.restart();

    // The session is still known, with the same offset.
    let st = c.get(&loc).expect_status(204);
    assert_eq!(
        st.header("range").as_deref(),
        Some(expected_range.as_str()),
        "upload Range after restart:\n{}",
        st.describe()
    );
    assert_eq!(
        st.require_header("docker-upload-uuid"),
        uuid,
        "Docker-Upload-UUID changed across restart"
    );
    let loc = st.location();

    let r = patch(&c, &loc, first, &data[first..]).expect_status(202);
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", data.len() - 1)),
        "{}",
        r.describe()
    );
    let loc = r.location();
    let r = c
        .send(
            c.request(Method::PUT, &with_query(&loc, "digest", &digest))
                .header("Content-Type", "application/octet-stream"),
        )
        .expect_status(201);
    assert_eq!(r.require_header("docker-content-digest"), digest);
    let got = c.get_blob_verified(repo, &digest);
    assert!(got == data, "blob bytes differ after resumed upload");
    let head = c
        .head(&format!("/v2/{repo}/blobs/{digest}"))
        .expect_status(200);
    assert_eq!(
        head.header("content-length"),
        Some(data.len().to_string()),
        "{}",
        head.describe()
    );

    // The image pushed before the restart is intact.
    let m = c.get_manifest(repo, "before");
    assert_eq!(
        m.header("docker-content-digest").as_deref(),
        Some(image_digest.as_str())
    );
    assert_eq!(m.body, image.manifest.data);
    for b in image.blobs() {
        c.get_blob_verified(repo, &b.digest);
    }

    // And a second restart keeps the completed blob.
    reg.restart();
    assert!(c.get_blob_verified(repo, &digest) == data);
}

#[test]
fn abandoned_upload_is_unknown_after_delete_and_restart() {
    let mut reg = Registry::start();
    let c = reg.client();
    let repo = "e2e/restart-cancel";
    let loc = c.start_upload(repo);
    let r = patch(&c, &loc, 0, &[7u8; 1000]).expect_status(202);
    let loc = r.location();
    c.delete(&loc).expect_status(204);
    reg.restart();
    c.get(&loc).expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
}

/// Files under `data/uploads/` (in-progress upload bytes).
fn upload_files(reg: &Registry) -> Vec<String> {
    match std::fs::read_dir(reg.data_dir().join("uploads")) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("uploads entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list uploads/: {e}"),
    }
}

#[test]
fn idle_upload_is_purged_after_its_ttl() {
    // The purger runs every max(ttl/4, 1 s) and drops sessions idle > ttl.
    let reg = Registry::start_with(&["--upload-ttl-secs", "2"]);
    let c = reg.client();
    let repo = "e2e/upload-ttl";

    // Something completed must survive the purge.
    let kept = c.push_blob(repo, b"completed before the purge");
    let loc = c.start_upload(repo);
    let r = patch(&c, &loc, 0, &[9u8; 4096]).expect_status(202);
    let loc = r.location();
    let uuid = r.require_header("docker-upload-uuid");
    c.get(&loc).expect_status(204);
    assert!(
        upload_files(&reg).iter().any(|f| f.starts_with(&uuid)),
        "no staging file for upload {uuid} under uploads/: {:?}",
        upload_files(&reg)
    );

    // Poll (no fixed sleep) until the registry forgets the session.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = c.get(&loc);
        if st.status == 404 {
            st.expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
            break;
        }
        assert_eq!(st.status, 204, "{}", st.describe());
        assert!(
            Instant::now() < deadline,
            "upload {uuid} still known 30 s after a 2 s TTL; log:\n{}",
            reg.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !upload_files(&reg).iter().any(|f| f.starts_with(&uuid)),
        "the purged upload's bytes are still under uploads/: {:?}",
        upload_files(&reg)
    );
    // The purge went through the server's purger, which logs it (its line
    // is written a moment after the row went, off the purge's path).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reg
        .log_text()
        .contains("discarded abandoned upload sessions")
    {
        assert!(
            Instant::now() < deadline,
            "no purge in the log:\n{}",
            reg.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    patch(&c, &loc, 4096, &[9u8; 10]).expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    assert_eq!(
        c.get_blob_verified(repo, &kept),
        b"completed before the purge"
    );
    assert!(blob_files(reg.data_dir())
        .iter()
        .any(|(_, n)| format!("sha256:{n}") == kept));
}
