//! Quotas per namespace on every backend pair: bytes of distinct blobs and
//! repository count, refused with `DENIED` naming the quota before anything
//! is kept (sized uploads before their commit, unsized ones right after,
//! mounts), blobs the namespace already has free of charge, other
//! namespaces untouched, and the usage the API reports.

mod common;

use common::body;
use storage::check::CheckOptions;
use storage::{Digest, ErrorCode, Policy, Quota};

fn quota_policy() -> Policy {
    Policy {
        quotas: vec![Quota {
            namespace: "small".into(),
            bytes: Some(100),
            repositories: Some(2),
        }],
        ..Policy::default()
    }
}

fn blob(fill: u8) -> (Vec<u8>, Digest) {
    let data = vec![fill; 60];
    let d = Digest::sha256_of(&data);
    (data, d)
}

#[tokio::test]
async fn pushes_over_a_namespace_quota_are_denied_and_keep_nothing() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open_with(&b, dir.path(), quota_policy()).await;
        let (one, d1) = blob(1);
        let (two, d2) = blob(2);
        reg.upload_monolithic("small/a", &d1, body(&one), Some(60))
            .await
            .unwrap();
        // 60 + 60 > 100: refused before the commit.
        let e = reg
            .upload_monolithic("small/a", &d2, body(&two), Some(60))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied, "{}: {e}", b.name);
        assert!(
            e.message
                .contains("namespace small may hold 100 B (100 bytes)"),
            "{}: {}",
            b.name,
            e.message
        );
        // Unsized (no Content-Length): refused right after, bytes removed.
        let e = reg
            .upload_monolithic("small/a", &d2, body(&two), None)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied, "{}", b.name);
        // A blob the namespace has already costs nothing, in a second
        // repository too.
        reg.upload_monolithic("small/b", &d1, body(&one), Some(60))
            .await
            .unwrap();
        // A third repository is one too many.
        let e = reg.start_upload("small/c").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied, "{}", b.name);
        assert!(
            e.message.contains("may hold 2 repositories and holds 2"),
            "{}: {}",
            b.name,
            e.message
        );
        // A mount that would add bytes is refused too.
        reg.upload_monolithic("other/x", &d2, body(&two), Some(60))
            .await
            .unwrap();
        let e = reg.mount("small/a", &d2, "other/x").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied, "{}", b.name);
        // Other namespaces have no limit.
        let (three, d3) = blob(3);
        reg.upload_monolithic("other/x", &d3, body(&three), Some(60))
            .await
            .unwrap();

        let usage = reg.quota_usage().await.unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!(
            (usage[0].repositories, usage[0].bytes),
            (2, 60),
            "{}",
            b.name
        );
        // Nothing refused was kept: the store holds d1, d2 (other/x), d3.
        let report = reg
            .check(
                CheckOptions {
                    repair: false,
                    jobs: 2,
                    cached_prefixes: Vec::new(),
                },
                &|_| {},
            )
            .await
            .unwrap();
        let findings: Vec<_> = report.findings.iter().map(|f| f.what.clone()).collect();
        assert!(findings.is_empty(), "{}: {findings:#?}", b.name);
        assert_eq!(report.blobs, 3, "{}", b.name);
        assert!(reg.blob("small/a", &d2).await.is_err(), "{}", b.name);
    }
}
