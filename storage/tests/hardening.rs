//! Findings of outside testing and code review, each pinned by a test over
//! the real local blob store and SQLite database.

use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;
use storage::blobstore::ByteStream;
use storage::{ChunkSpec, Digest, ErrorCode, Policy, Registry};

mod common;
use common::Backend;

fn body(data: &[u8]) -> ByteStream {
    futures::stream::iter([Ok(Bytes::copy_from_slice(data))]).boxed()
}

async fn push_blob(reg: &Registry, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    reg.upload_monolithic(repo, &d, body(data), Some(data.len() as u64))
        .await
        .unwrap();
    d
}

fn image(config: &Digest, config_size: usize, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}],
    }))
    .unwrap()
}

fn index(child: &Digest, media_type: &str, size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media_type, "digest": child.to_string(), "size": size,
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap()
}

#[tokio::test]
async fn unparseable_reference_reads_as_unknown_but_push_refuses_it() {
    for b in common::backends().await {
        unparseable_reference_reads_as_unknown_but_push_refuses_it_on(&b).await;
    }
}

async fn unparseable_reference_reads_as_unknown_but_push_refuses_it_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    for reference in [
        ".INVALID_MANIFEST_NAME",
        "sha256:xyz",
        "-x",
        &"a".repeat(200),
    ] {
        let e = reg.manifest("app", reference).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestUnknown, "{reference}");
    }
    let e = reg
        .put_manifest("app", ".INVALID_MANIFEST_NAME", None, b"{}")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TagInvalid);
}

#[tokio::test]
async fn descriptors_must_describe_the_stored_content() {
    for b in common::backends().await {
        descriptors_must_describe_the_stored_content_on(&b).await;
    }
}

async fn descriptors_must_describe_the_stored_content_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let layer_bytes = vec![7u8; 2 << 20];
    let cfg = push_blob(&reg, "app", b"{}").await;
    let layer = push_blob(&reg, "app", &layer_bytes).await;

    // A layer claiming 1 byte for a 2 MiB blob: every pull would fail.
    let e = reg
        .put_manifest("app", "v1", None, &image(&cfg, 2, &layer, 1))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ManifestInvalid);
    assert!(e.message.contains("layers[0]"), "{}", e.message);
    assert_eq!(e.detail.as_ref().unwrap()["stored_size"], 2 << 20);
    // So is a config claiming the wrong size.
    let e = reg
        .put_manifest("app", "v1", None, &image(&cfg, 3, &layer, 2 << 20))
        .await
        .unwrap_err();
    assert!(e.message.contains("config"), "{}", e.message);
    assert_eq!(
        reg.tags("app", None, None).await.unwrap(),
        Vec::<String>::new()
    );

    let good = image(&cfg, 2, &layer, 2 << 20);
    let child = reg.put_manifest("app", "v1", None, &good).await.unwrap();
    // An index must describe its children as they are stored: type and size.
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let e = reg
        .put_manifest(
            "app",
            "multi",
            None,
            &index(&child.digest, docker, good.len()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ManifestInvalid);
    assert!(e.message.contains("media type"), "{}", e.message);
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let e = reg
        .put_manifest("app", "multi", None, &index(&child.digest, oci, 10))
        .await
        .unwrap_err();
    assert!(e.message.contains("manifests[0]"), "{}", e.message);
    reg.put_manifest("app", "multi", None, &index(&child.digest, oci, good.len()))
        .await
        .unwrap();
}

#[tokio::test]
async fn identical_final_puts_at_once_both_succeed_or_one_is_unknown() {
    for b in common::backends().await {
        identical_final_puts_at_once_both_succeed_or_one_is_unknown_on(&b).await;
    }
}

async fn identical_final_puts_at_once_both_succeed_or_one_is_unknown_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    for round in 0..20u32 {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + round) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let id = reg.start_upload("app").await.unwrap();
        reg.upload_chunk("app", &id, body(&data[..100_000]), ChunkSpec::default())
            .await
            .unwrap();
        let last = || {
            Some((
                body(&data[100_000..]),
                ChunkSpec {
                    start: Some(100_000),
                    len: Some(200_000),
                },
            ))
        };
        let (ra, rb) = tokio::join!(
            reg.finish_upload("app", &id, &digest, last()),
            reg.finish_upload("app", &id, &digest, last())
        );
        for r in [&ra, &rb] {
            if let Err(e) = r {
                assert_eq!(e.code, ErrorCode::BlobUploadUnknown, "round {round}: {e}");
            }
        }
        assert!(ra.is_ok() || rb.is_ok(), "round {round}: one must win");
        assert_eq!(reg.blob_size("app", &digest).await.unwrap(), 300_000);
        let left = b.objects(dir.path()).list("uploads").await;
        assert!(
            left.is_empty(),
            "{} round {round}: debris left: {left:?}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_patch_racing_the_final_put_leaves_nothing_behind() {
    for b in common::backends().await {
        a_patch_racing_the_final_put_leaves_nothing_behind_on(&b).await;
    }
}

async fn a_patch_racing_the_final_put_leaves_nothing_behind_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    for round in 0..20u32 {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + round) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let id = reg.start_upload("app").await.unwrap();
        reg.upload_chunk("app", &id, body(&data), ChunkSpec::default())
            .await
            .unwrap();
        let (finished, patched) = tokio::join!(
            reg.finish_upload("app", &id, &digest, None),
            reg.upload_chunk("app", &id, body(b"late"), ChunkSpec::default())
        );
        match patched {
            // The PATCH went first: its bytes broke the digest, and the
            // session was discarded.
            Ok(_) => assert_eq!(finished.unwrap_err().code, ErrorCode::DigestInvalid),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::BlobUploadUnknown, "round {round}: {e}");
                finished.unwrap();
            }
        }
        let left = b.objects(dir.path()).list("uploads").await;
        assert!(
            left.is_empty(),
            "{} round {round}: orphan staging object: {left:?}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_retry_after_the_database_failed_the_link_succeeds() {
    for b in common::backends().await {
        a_retry_after_the_database_failed_the_link_succeeds_on(&b).await;
    }
}

async fn a_retry_after_the_database_failed_the_link_succeeds_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        db_busy_timeout: Duration::from_millis(200),
        ..Policy::default()
    };
    let reg = common::open_with(b, dir.path(), policy).await;
    let data = vec![3u8; 1 << 20];
    let digest = Digest::sha256_of(&data);
    let id = reg.start_upload("app").await.unwrap();
    reg.upload_chunk("app", &id, body(&data), ChunkSpec::default())
        .await
        .unwrap();

    // Another client holds the database's write lock past the timeout.
    let locker = common::Locker::hold(b, dir.path()).await;
    let e = reg
        .finish_upload("app", &id, &digest, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable, "{}: {e}", b.name);
    locker.release().await;

    // The bytes were committed before the link failed: the retry finds them.
    reg.finish_upload("app", &id, &digest, None).await.unwrap();
    assert_eq!(reg.blob_size("app", &digest).await.unwrap(), 1 << 20);
    assert_eq!(
        reg.upload_status("app", &id).await.unwrap_err().code,
        ErrorCode::BlobUploadUnknown
    );
}

#[tokio::test]
async fn purge_counts_only_what_it_removes() {
    for b in common::backends().await {
        purge_counts_only_what_it_removes_on(&b).await;
    }
}

async fn purge_counts_only_what_it_removes_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    // Not a session name: not ours to remove, and never counted.
    let objects = b.objects(dir.path());
    objects.put("uploads/notes.txt", b"x").await;
    for _ in 0..3 {
        assert_eq!(
            reg.purge_uploads(Duration::from_secs(3600)).await.unwrap(),
            0
        );
    }
    assert_eq!(objects.list("uploads").await, ["notes.txt"], "{}", b.name);
}
