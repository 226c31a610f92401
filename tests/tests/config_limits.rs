//! Configured limits (deletes, blob size), over HTTP: with deletes disabled
//! every DELETE of content answers 405 UNSUPPORTED and deletes nothing; a
//! blob over `--max-blob-bytes` answers 413 and is not stored, whichever way
//! it is sent.

use e2e::http::{with_query, Client, Resp};
use e2e::{blob_files, oci, sha256_digest, Registry};
use reqwest::Method;

fn put_blob(c: &Client, loc: &str, data: &[u8]) -> Resp {
    c.send(
        c.request(
            Method::PUT,
            &with_query(loc, "digest", &sha256_digest(data)),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec()),
    )
}

fn patch(c: &Client, loc: &str, start: usize, chunk: &[u8]) -> Resp {
    c.send(
        c.request(Method::PATCH, loc)
            .header("Content-Type", "application/octet-stream")
            .header(
                "Content-Range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec()),
    )
}

/// The refused bytes were dropped: the upload is gone (404), or it holds
/// nothing (204, `Range: 0-0`) and can start over.
fn assert_upload_dropped(c: &Client, loc: &str) {
    let st = c.get(loc);
    match st.status {
        404 => st.expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]),
        204 => assert_eq!(
            st.require_header("range"),
            "0-0",
            "the upload kept refused bytes:\n{}",
            st.describe()
        ),
        _ => panic!("unexpected upload status:\n{}", st.describe()),
    }
}

/// The blob is neither served nor on disk.
fn assert_absent(reg: &Registry, repo: &str, data: &[u8]) {
    let digest = sha256_digest(data);
    reg.client()
        .head(&format!("/v2/{repo}/blobs/{digest}"))
        .expect_status(404);
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        !blob_files(reg.data_dir()).iter().any(|(_, n)| n == hex),
        "a file for the refused blob {digest} is under blobs/"
    );
}

#[test]
fn deletes_disabled_answer_405_and_delete_nothing() {
    let reg = Registry::start_with(&["--delete-enabled", "false"]);
    let c = reg.client();
    let repo = "e2e/no-delete";
    let image = oci::simple_image("limits-no-delete");
    let digest = c.push_image(repo, "v1", &image);
    let layer = &image.layers[0].blob.digest;

    for path in [
        format!("/v2/{repo}/manifests/v1"),
        format!("/v2/{repo}/manifests/{digest}"),
        format!("/v2/{repo}/blobs/{layer}"),
    ] {
        c.delete(&path).expect_error(&[405], &["UNSUPPORTED"]);
    }

    let m = c.get_manifest(repo, "v1");
    assert_eq!(m.body, image.manifest.data);
    assert_eq!(c.get_manifest(repo, &digest).body, image.manifest.data);
    for b in image.blobs() {
        assert_eq!(c.get_blob_verified(repo, &b.digest), b.data);
    }
    assert_eq!(c.tags(repo), ["v1"]);
}

#[test]
fn blobs_over_the_limit_answer_413_and_are_not_stored() {
    const LIMIT: usize = 64 * 1024;
    let reg = Registry::start_with(&["--max-blob-bytes", &LIMIT.to_string()]);
    let c = reg.client();
    let repo = "e2e/blob-limit";

    // At the limit: accepted.
    let at_limit: Vec<u8> = (0..LIMIT).map(|i| (i % 241) as u8).collect();
    c.push_blob(repo, &at_limit);
    assert_eq!(
        c.get_blob_verified(repo, &sha256_digest(&at_limit)),
        at_limit
    );

    // One byte over, POST then PUT: 413, and nothing kept.
    let over: Vec<u8> = (0..=LIMIT).map(|i| (i % 239) as u8).collect();
    let loc = c.start_upload(repo);
    put_blob(&c, &loc, &over).expect_error(&[413], &["SIZE_INVALID"]);
    assert_upload_dropped(&c, &loc);
    assert_absent(&reg, repo, &over);

    // The same in a single POST.
    c.send(
        c.request(
            Method::POST,
            &with_query(
                &format!("/v2/{repo}/blobs/uploads/"),
                "digest",
                &sha256_digest(&over),
            ),
        )
        .header("Content-Type", "application/octet-stream")
        .body(over.clone()),
    )
    .expect_error(&[413], &["SIZE_INVALID"]);
    assert_absent(&reg, repo, &over);

    // In chunks: the chunk that crosses the limit is refused, and the
    // upload cannot be completed with it.
    let loc = c.start_upload(repo);
    let half = LIMIT / 2 + 1;
    let r = patch(&c, &loc, 0, &over[..half]).expect_status(202);
    let loc = r.location();
    patch(&c, &loc, half, &over[half..]).expect_error(&[413], &["SIZE_INVALID"]);
    let st = c.get(&loc);
    if st.status == 204 {
        // Kept: only the first chunk, which was within the limit.
        assert_eq!(st.require_header("range"), format!("0-{}", half - 1));
        let r = c.send(
            c.request(
                Method::PUT,
                &with_query(&st.location(), "digest", &sha256_digest(&over)),
            )
            .header("Content-Type", "application/octet-stream"),
        );
        assert!((400..500).contains(&r.status), "{}", r.describe());
    } else {
        st.expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"]);
    }
    assert_absent(&reg, repo, &over);

    // The blob at the limit is untouched.
    assert_eq!(
        c.get_blob_verified(repo, &sha256_digest(&at_limit)),
        at_limit
    );
}
