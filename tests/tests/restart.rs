//! An upload session survives a graceful restart of the registry.

use e2e::http::with_query;
use e2e::{oci, sha256_digest, Registry};
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
    let loc = c.url(&r.header("location").unwrap_or(loc));
    let uuid = r.header("docker-upload-uuid");

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
    if let (Some(before), Some(after)) = (uuid, st.header("docker-upload-uuid")) {
        assert_eq!(before, after, "Docker-Upload-UUID changed across restart");
    }
    let loc = c.url(&st.header("location").unwrap_or(loc));

    let r = patch(&c, &loc, first, &data[first..]).expect_status(202);
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", data.len() - 1)),
        "{}",
        r.describe()
    );
    let loc = c.url(&r.header("location").unwrap_or(loc));
    let r = c
        .send(
            c.request(Method::PUT, &with_query(&loc, "digest", &digest))
                .header("Content-Type", "application/octet-stream"),
        )
        .expect_status(201);
    if let Some(d) = r.header("docker-content-digest") {
        assert_eq!(d, digest);
    }
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
    let loc = c.url(&r.header("location").unwrap_or(loc));
    c.delete(&loc).expect_status(204);
    reg.restart();
    c.get(&loc).expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
}
