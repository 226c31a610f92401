//! What a pull-through cache stores, on every backend pair: a manifest as
//! the upstream served it before its blobs are fetched, blobs linked from
//! another repository without a second fetch, and eviction of images not
//! pulled for N days by a lifecycle policy and the collector.

mod common;

use common::{body, OCI};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use storage::{Digest, ErrorCode, GcOptions};

const DAY: i64 = 86_400;
const START: i64 = 1_700_000_000;

fn manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256_of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::sha256_of(layer).to_string(), "size": layer.len()}],
    }))
    .unwrap()
}

async fn fetch(reg: &storage::Registry, repo: &str, data: &[u8]) {
    reg.upload_monolithic(
        repo,
        &Digest::sha256_of(data),
        body(data),
        Some(data.len() as u64),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn cached_images_are_stored_shared_and_evicted() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = common::open(&b, dir.path()).await;
        let clock = Arc::new(AtomicI64::new(START));
        let c = clock.clone();
        reg.set_clock(Arc::new(move || c.load(Ordering::Relaxed) * 1000));
        let (config, layer) = (b"{}".as_slice(), format!("layer {}", b.name).into_bytes());
        let m = manifest(config, &layer);
        let md = Digest::sha256_of(&m);

        // A push of it is refused (its blobs are not here); the cache
        // stores it as served.
        let e = reg
            .put_manifest("hub/app", "1", Some(OCI), &m)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestBlobUnknown, "{}", b.name);
        let wrong = Digest::sha256_of(b"something else");
        let e = reg
            .put_cached_manifest("hub/app", "1", Some(OCI), &m, Some(&wrong))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::DigestInvalid, "{}", b.name);
        assert!(reg.manifest("hub/app", "1").await.is_err(), "{}", b.name);
        let d = reg
            .put_cached_manifest("hub/app", "1", Some(OCI), &m, Some(&md))
            .await
            .unwrap();
        assert_eq!(d, md, "{}", b.name);
        assert_eq!(reg.manifest("hub/app", "1").await.unwrap().content, m);
        let history = reg.tag_history("hub/app", "1", 10).await.unwrap();
        assert_eq!(history[0].actor.as_deref(), Some("pull-through"));
        // By digest too (a platform manifest of an index).
        let other = manifest(config, b"platform layer");
        let od = Digest::sha256_of(&other);
        reg.put_cached_manifest("hub/app", &od.to_string(), Some(OCI), &other, None)
            .await
            .unwrap();

        // Its blobs arrive on their first pull.
        assert!(!reg.blob_stored(&Digest::sha256_of(&layer)).await.unwrap());
        fetch(&reg, "hub/app", config).await;
        fetch(&reg, "hub/app", &layer).await;
        let ld = Digest::sha256_of(&layer);
        assert_eq!(
            reg.blob_size("hub/app", &ld).await.unwrap(),
            layer.len() as u64
        );
        // Another cached repository sharing the layer links it, unfetched.
        assert!(reg.blob("hub/other", &ld).await.is_err());
        assert!(
            reg.adopt_blob("hub/other", &ld).await.unwrap(),
            "{}",
            b.name
        );
        assert_eq!(
            reg.blob_size("hub/other", &ld).await.unwrap(),
            layer.len() as u64
        );
        assert!(!reg
            .adopt_blob("hub/other", &Digest::sha256_of(b"never stored"))
            .await
            .unwrap());

        // Collections keep the tagged image and what it names.
        let now = storage::metadata::now();
        let opts = |ahead: i64| GcOptions {
            grace: Duration::ZERO,
            retention: Duration::ZERO,
            dry_run: false,
            now: Some(now + ahead),
        };
        reg.gc(opts(1), &|_| {}).await.unwrap();
        reg.gc(opts(2), &|_| {}).await.unwrap();
        assert_eq!(reg.manifest("hub/app", "1").await.unwrap().digest, md);
        assert!(reg.blob_stored(&ld).await.unwrap(), "{}", b.name);
        // A link no manifest of its repository names is not kept.
        assert!(reg.blob("hub/other", &ld).await.is_err(), "{}", b.name);

        // Pulled today, then not for 31 days: the eviction policy expires
        // it and the collector frees its bytes.
        reg.note_pull("hub/app", &md);
        reg.flush_pulls().await.unwrap();
        reg.set_lifecycle_policy(
            "hub/app",
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any",
                "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30},
                "action": {"type": "expire"}}]}"#,
        )
        .await
        .unwrap();
        clock.store(START + 29 * DAY, Ordering::Relaxed);
        assert!(reg.lifecycle_run("hub/app").await.unwrap().is_empty());
        clock.store(START + 31 * DAY, Ordering::Relaxed);
        let expired = reg.lifecycle_run("hub/app").await.unwrap();
        let expired: Vec<&str> = expired.iter().map(|e| e.digest.as_str()).collect();
        assert!(
            expired.contains(&md.to_string().as_str()),
            "{}: {expired:?}",
            b.name
        );
        for ahead in 1..6 {
            reg.gc(opts(ahead), &|_| {}).await.unwrap();
        }
        assert!(reg.manifest("hub/app", "1").await.is_err(), "{}", b.name);
        assert!(
            !reg.blob_stored(&ld).await.unwrap(),
            "{}: the evicted image's layer is freed",
            b.name
        );
    }
}
