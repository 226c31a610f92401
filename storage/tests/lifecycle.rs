//! ECR lifecycle policies on every backend pair, on a test clock: thirty
//! tags pushed over simulated days, ECR's documented examples with ECR's
//! documented results, `sinceImagePulled` from batched pull times, and
//! the images policies never touch on their own (index children,
//! referrers). Every preview equals what the run then removes.

mod common;

use common::{body, image, OCI};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use storage::{Digest, Registry};

const DAY: i64 = 86_400;
const START: i64 = 1_700_000_000;

/// A registry on a clock the test moves (`clock.store(...)`).
async fn on_clock(b: &common::Backend, dir: &std::path::Path) -> (Registry, Arc<AtomicI64>) {
    let mut reg = common::open(b, dir).await;
    let clock = Arc::new(AtomicI64::new(START));
    let c = clock.clone();
    reg.set_clock(Arc::new(move || c.load(Ordering::Relaxed) * 1000));
    (reg, clock)
}

/// Push an image (unique by `salt`) with `tags` (none: by digest); its digest.
async fn push(reg: &Registry, repo: &str, salt: &str, tags: &[&str]) -> String {
    let m = image(reg, repo, salt).await;
    let d = Digest::sha256_of(&m).to_string();
    if tags.is_empty() {
        reg.put_manifest(repo, &d, Some(OCI), &m).await.unwrap();
    }
    for t in tags {
        reg.put_manifest(repo, t, Some(OCI), &m).await.unwrap();
    }
    d
}

async fn tags(reg: &Registry, repo: &str) -> BTreeSet<String> {
    reg.tags(repo, None, None)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Preview, run, and check the run removed exactly the preview; the digests.
async fn preview_then_run(reg: &Registry, repo: &str, name: &str) -> BTreeSet<String> {
    let preview: Vec<_> = reg.lifecycle_preview(repo, None).await.unwrap();
    let run = reg.lifecycle_run(repo).await.unwrap();
    assert_eq!(preview, run, "{name}: the preview is what the run expires");
    for e in &run {
        assert!(
            reg.manifest(repo, &e.digest).await.is_err(),
            "{name}: {} is gone",
            e.digest
        );
    }
    run.into_iter().map(|e| e.digest).collect()
}

#[tokio::test]
async fn thirty_tags_over_thirty_days() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let (reg, clock) = on_clock(&b, dir.path()).await;
        let mut builds = Vec::new();
        // Day n: build-n; every tenth day also a release; untagged
        // digests on days 3, 13, 23.
        for n in 0..30 {
            clock.store(START + n * DAY, Ordering::Relaxed);
            let mut t = vec![format!("build-{n}")];
            if n % 10 == 0 {
                t.push(format!("release-{n}"));
            }
            let refs: Vec<&str> = t.iter().map(String::as_str).collect();
            builds.push(push(&reg, "ci/app", &format!("b{n}"), &refs).await);
            if n % 10 == 3 {
                push(&reg, "ci/app", &format!("u{n}"), &[]).await;
            }
        }
        clock.store(START + 30 * DAY, Ordering::Relaxed);
        reg.set_lifecycle_policy(
            "ci/app",
            r#"{"rules": [
              {"rulePriority": 1, "description": "releases stay",
               "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"], "countType": "imageCountMoreThan", "countNumber": 9999},
               "action": {"type": "expire"}},
              {"rulePriority": 2, "description": "the last 5 builds",
               "selection": {"tagStatus": "tagged", "tagPatternList": ["build-*"], "countType": "imageCountMoreThan", "countNumber": 5},
               "action": {"type": "expire"}},
              {"rulePriority": 3, "description": "untagged for a week",
               "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
               "action": {"type": "expire"}}
            ]}"#,
        )
        .await
        .unwrap();
        let gone = preview_then_run(&reg, "ci/app", b.name).await;
        // Builds 0..24 go except the releases (0, 10, 20); the untagged
        // from days 3 and 13 (older than a week), not 23.
        let kept: BTreeSet<String> = tags(&reg, "ci/app").await;
        let mut want = BTreeSet::new();
        for n in [0, 10, 20] {
            want.insert(format!("build-{n}"));
            want.insert(format!("release-{n}"));
        }
        for n in 25..30 {
            want.insert(format!("build-{n}"));
        }
        assert_eq!(kept, want, "{}", b.name);
        assert_eq!(gone.len(), 22 + 2, "{}: {gone:?}", b.name);
        // Nothing more: a second run is a no-op.
        assert!(reg.lifecycle_run("ci/app").await.unwrap().is_empty());
        // The history names the deletes.
        let h = reg.tag_history("ci/app", "build-1", 10).await.unwrap();
        assert_eq!(h[0].action, "delete", "{}", b.name);
    }
}

#[tokio::test]
async fn ecr_examples_give_ecr_results() {
    let example = |first: &str, second: &str| {
        format!(
            r#"{{"rules": [
              {{"rulePriority": 1, "description": "Rule 1", "selection": {{"tagStatus": "tagged", "tagPrefixList": {first}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}},
              {{"rulePriority": 2, "description": "Rule 2", "selection": {{"tagStatus": "tagged", "tagPrefixList": {second}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}}
            ]}}"#
        )
    };
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let (reg, clock) = on_clock(&b, dir.path()).await;
        // Example A: A [beta-1, prod-1] 10 days ago, B [beta-2, prod-2] 9,
        // C [beta-3] 8. Result: Image A is expired.
        // Example B: the same but C [beta-3, prod-3], rules on [beta,
        // prod] then [beta]. Result: Images A and B are expired.
        let mut digests = Vec::new();
        for (repo, c_tags) in [("ex/a", vec!["beta-3"]), ("ex/b", vec!["beta-3", "prod-3"])] {
            let mut d = Vec::new();
            for (i, (salt, t, days)) in [
                ("A", vec!["beta-1", "prod-1"], 10),
                ("B", vec!["beta-2", "prod-2"], 9),
                ("C", c_tags, 8),
            ]
            .into_iter()
            .enumerate()
            {
                clock.store(START + (10 - days) * DAY + i as i64, Ordering::Relaxed);
                d.push(push(&reg, repo, &format!("{repo}{salt}"), &t).await);
            }
            digests.push(d);
        }
        clock.store(START + 10 * DAY, Ordering::Relaxed);
        reg.set_lifecycle_policy("ex/a", &example(r#"["prod"]"#, r#"["beta"]"#))
            .await
            .unwrap();
        reg.set_lifecycle_policy("ex/b", &example(r#"["beta", "prod"]"#, r#"["beta"]"#))
            .await
            .unwrap();
        let a = preview_then_run(&reg, "ex/a", b.name).await;
        assert_eq!(
            a,
            BTreeSet::from([digests[0][0].clone()]),
            "{}: example A",
            b.name
        );
        let bb = preview_then_run(&reg, "ex/b", b.name).await;
        assert_eq!(
            bb,
            BTreeSet::from([digests[1][0].clone(), digests[1][1].clone()]),
            "{}: example B",
            b.name
        );
    }
}

#[tokio::test]
async fn since_pulled_uses_batched_pull_times_and_leaves_children_and_referrers() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let (reg, clock) = on_clock(&b, dir.path()).await;
        let pulled = push(&reg, "p/app", "pulled", &["a"]).await;
        let idle = push(&reg, "p/app", "idle", &["b"]).await;
        // An index (tagged) over two children pushed by digest: the
        // children are not images of their own.
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let m = image(&reg, "p/app", &format!("child-{arch}")).await;
            let d = Digest::sha256_of(&m);
            reg.put_manifest("p/app", &d.to_string(), Some(OCI), &m)
                .await
                .unwrap();
            children.push(
                serde_json::json!({"mediaType": OCI, "digest": d.to_string(), "size": m.len(),
                "platform": {"os": "linux", "architecture": arch}}),
            );
        }
        let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}))
        .unwrap();
        reg.put_manifest(
            "p/app",
            "multi",
            Some("application/vnd.oci.image.index.v1+json"),
            &index,
        )
        .await
        .unwrap();
        let cfg = Digest::sha256_of(b"{}");
        reg.upload_monolithic("p/app", &cfg, body(b"{}"), None)
            .await
            .unwrap();
        // A signature of the pulled image: untagged and never pulled, it is
        // no image of its own and lives with its subject.
        let pulled_bytes = reg.manifest("p/app", &pulled).await.unwrap().content;
        let sig = common::referrer(&reg, "p/app", &pulled_bytes).await;
        clock.store(START + 20 * DAY, Ordering::Relaxed);
        reg.note_pull("p/app", &pulled.parse().unwrap());
        reg.note_pull("p/app", &Digest::sha256_of(&index));
        clock.store(START + 25 * DAY, Ordering::Relaxed);
        let policy = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any",
            "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 10}, "action": {"type": "expire"}}]}"#;
        reg.set_lifecycle_policy("p/app", policy).await.unwrap();
        let gone = preview_then_run(&reg, "p/app", b.name).await;
        assert_eq!(gone, BTreeSet::from([idle]), "{}", b.name);
        for c in &children {
            let d = c["digest"].as_str().unwrap();
            assert!(
                reg.manifest("p/app", d).await.is_ok(),
                "{}: children stay",
                b.name
            );
        }
        assert!(
            reg.manifest("p/app", &sig.to_string()).await.is_ok(),
            "{}: the referrer stays",
            b.name
        );
        let listed = reg
            .referrers("p/app", &pulled.parse().unwrap(), None)
            .await
            .unwrap();
        assert!(
            listed.iter().any(|r| r.digest == sig.to_string()),
            "{}: the referrer is still listed: {listed:?}",
            b.name
        );
        // The policy reads back as set; a bad one is refused and changes
        // nothing.
        let stored = reg.lifecycle_policy("p/app").await.unwrap().unwrap();
        assert_eq!(stored.rules.len(), 1);
        let bad = reg
            .set_lifecycle_policy(
                "p/app",
                r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
                              {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#,
            )
            .await
            .unwrap_err();
        assert!(
            bad.message.contains("highest rulePriority"),
            "{}",
            bad.message
        );
        assert_eq!(
            reg.lifecycle_policy("p/app").await.unwrap().unwrap(),
            stored
        );
        reg.delete_lifecycle_policy("p/app").await.unwrap();
        assert!(reg.lifecycle_policy("p/app").await.unwrap().is_none());
        assert!(reg.lifecycle_policy("no/such").await.is_err());
    }
}
