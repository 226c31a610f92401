//! Domain-level flows over the real local blob store and SQLite database.

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

fn image_manifest(config: &Digest, layer: &Digest, subject: Option<&Digest>) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}],
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s.to_string(), "size": 1});
        m["artifactType"] = "application/x.test".into();
    }
    serde_json::to_vec(&m).unwrap()
}

#[tokio::test]
async fn blobs_are_per_repository_until_mounted() {
    for b in common::backends().await {
        blobs_are_per_repository_until_mounted_on(&b).await;
    }
}

async fn blobs_are_per_repository_until_mounted_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let d = push_blob(&reg, "team/a", b"layer").await;
    assert_eq!(reg.blob_size("team/a", &d).await.unwrap(), 5);
    let err = reg.blob_size("team/b", &d).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BlobUnknown);
    assert!(!reg.mount("team/b", &d, "team/c").await.unwrap());
    assert!(reg.mount("team/b", &d, "team/a").await.unwrap());
    assert_eq!(reg.blob_size("team/b", &d).await.unwrap(), 5);
    // Stored once whatever the number of repositories.
    let stored = b.objects(dir.path()).list("blobs").await;
    assert_eq!(stored.len(), 1, "{}: {stored:?}", b.name);
}

#[tokio::test]
async fn manifests_tags_referrers_and_deletes() {
    for b in common::backends().await {
        manifests_tags_referrers_and_deletes_on(&b).await;
    }
}

async fn manifests_tags_referrers_and_deletes_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let cfg = push_blob(&reg, "app", b"{}").await;
    let layer = push_blob(&reg, "app", b"layer").await;
    let missing = Digest::sha256_of(b"missing");

    let err = reg
        .put_manifest("app", "v1", None, &image_manifest(&cfg, &missing, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ManifestBlobUnknown);

    let bytes = image_manifest(&cfg, &layer, None);
    let pushed = reg.put_manifest("app", "v1", None, &bytes).await.unwrap();
    assert_eq!(pushed.digest, Digest::sha256_of(&bytes));
    reg.put_manifest("app", "v2", None, &bytes).await.unwrap();
    let got = reg.manifest("app", "v1").await.unwrap();
    assert_eq!(got.content, bytes);
    assert_eq!(reg.tags("app", None, None).await.unwrap(), ["v1", "v2"]);
    assert_eq!(reg.tags("app", Some("v1"), Some(5)).await.unwrap(), ["v2"]);

    let wrong = format!("{}", Digest::sha256_of(b"other"));
    let err = reg
        .put_manifest("app", &wrong, None, &bytes)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DigestInvalid);

    let sig = image_manifest(&cfg, &layer, Some(&pushed.digest));
    let sig_pushed = reg.put_manifest("app", "sig", None, &sig).await.unwrap();
    assert_eq!(sig_pushed.subject.as_ref(), Some(&pushed.digest));
    let refs = reg.referrers("app", &pushed.digest, None).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].artifact_type.as_deref(), Some("application/x.test"));
    assert!(reg
        .referrers("app", &pushed.digest, Some("application/other"))
        .await
        .unwrap()
        .is_empty());

    // Deleting a tag keeps the manifest; deleting the manifest drops its tags.
    reg.delete_manifest("app", "v2").await.unwrap();
    assert!(reg
        .manifest("app", &pushed.digest.to_string())
        .await
        .is_ok());
    reg.delete_manifest("app", &pushed.digest.to_string())
        .await
        .unwrap();
    assert_eq!(reg.tags("app", None, None).await.unwrap(), ["sig"]);
    let err = reg.manifest("app", "v1").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ManifestUnknown);
    assert_eq!(
        reg.tags("nope", None, None).await.unwrap_err().code,
        ErrorCode::NameUnknown
    );
}

#[tokio::test]
async fn oversized_manifest_and_disabled_deletes() {
    for b in common::backends().await {
        oversized_manifest_and_disabled_deletes_on(&b).await;
    }
}

async fn oversized_manifest_and_disabled_deletes_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        max_manifest_bytes: 100,
        delete_enabled: false,
        ..Policy::default()
    };
    let reg = common::open_with(b, dir.path(), policy).await;
    let err = reg
        .put_manifest("app", "v1", None, &[b' '; 101])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooLarge);
    let d = push_blob(&reg, "app", b"x").await;
    assert_eq!(
        reg.delete_blob("app", &d).await.unwrap_err().code,
        ErrorCode::Unsupported
    );
}

#[tokio::test]
async fn abandoned_uploads_are_purged() {
    for b in common::backends().await {
        abandoned_uploads_are_purged_on(&b).await;
    }
}

async fn abandoned_uploads_are_purged_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let id = reg.start_upload("app").await.unwrap();
    reg.upload_chunk("app", &id, body(b"partial"), ChunkSpec::default())
        .await
        .unwrap();
    // An upload belongs to its repository only.
    assert_eq!(
        reg.upload_status("other", &id).await.unwrap_err().code,
        ErrorCode::BlobUploadUnknown
    );
    // A staging file no session owns (a crash between steps) is debris; a
    // session active within the TTL stays, and survives a restart.
    let objects = b.objects(dir.path());
    objects.put(&objects.session_key("orphan"), b"x").await;
    assert_eq!(
        reg.purge_uploads(Duration::from_secs(3600)).await.unwrap(),
        1
    );
    drop(reg);
    let reg = common::open(b, dir.path()).await;
    assert_eq!(reg.upload_status("app", &id).await.unwrap(), 7);
    // Once idle past the cut-off, the session and its bytes are gone.
    assert_eq!(reg.purge_uploads_idle_since(i64::MAX).await.unwrap(), 1);
    assert_eq!(
        reg.upload_status("app", &id).await.unwrap_err().code,
        ErrorCode::BlobUploadUnknown
    );
    assert_eq!(
        objects.list("uploads").await,
        Vec::<String>::new(),
        "{}",
        b.name
    );
}

#[tokio::test]
async fn manifest_with_more_references_than_one_batch() {
    for b in common::backends().await {
        manifest_with_more_references_than_one_batch_on(&b).await;
    }
}

async fn manifest_with_more_references_than_one_batch_on(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::open(b, dir.path()).await;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cfg = push_blob(&reg, "big", config).await;
    let mut layers = Vec::new();
    for i in 0..650u32 {
        let d = push_blob(&reg, "big", &i.to_le_bytes()).await;
        layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": 4}));
    }
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.to_string(), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    reg.put_manifest("big", "v1", None, &m).await.unwrap();
    // Re-pushing the same manifest under another tag is a no-op for its rows.
    reg.put_manifest("big", "v2", None, &m).await.unwrap();
    let tags = reg.tag_summaries("big", None, 10).await.unwrap();
    assert_eq!(tags.len(), 2);
    // Every reference row was written (config + 650 layers of 4 bytes).
    assert_eq!(tags[0].size, config.len() as i64 + 650 * 4);
    let detail = reg.image_detail("big", "v1").await.unwrap();
    assert_eq!(detail.images[0].layers.len(), 650);
}
