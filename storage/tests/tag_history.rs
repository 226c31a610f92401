//! The tag history on every backend pair: pushes that move a tag, a push of
//! the same digest (no change), a tag delete, and a manifest delete that
//! takes its tags, each recorded once, newest first.

mod common;

use storage::{Digest, ErrorCode};

use common::{image, OCI};

fn change(
    old: Option<&Digest>,
    new: Option<&Digest>,
    action: &str,
) -> (Option<String>, Option<String>, String) {
    (
        old.map(Digest::to_string),
        new.map(Digest::to_string),
        action.to_owned(),
    )
}

#[tokio::test]
async fn every_change_of_a_tag_is_recorded_once() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let v1 = image(&reg, "team/app", "one").await;
        let v2 = image(&reg, "team/app", "two").await;
        let d1 = reg
            .put_manifest("team/app", "prod", Some(OCI), &v1)
            .await
            .unwrap()
            .digest;
        let d2 = reg
            .put_manifest("team/app", "prod", Some(OCI), &v2)
            .await
            .unwrap()
            .digest;
        // The same digest again is no change.
        reg.put_manifest("team/app", "prod", Some(OCI), &v2)
            .await
            .unwrap();
        reg.put_manifest("team/app", "prod", Some(OCI), &v1)
            .await
            .unwrap();
        // A tag deleted, and a manifest deleted with the tag on it.
        reg.put_manifest("team/app", "canary", Some(OCI), &v2)
            .await
            .unwrap();
        reg.delete_manifest("team/app", "canary").await.unwrap();
        reg.delete_manifest("team/app", &d1.to_string())
            .await
            .unwrap();

        let seen = |h: Vec<storage::metadata::TagChange>| {
            h.into_iter()
                .map(|c| (c.old_digest, c.new_digest, c.action))
                .collect::<Vec<_>>()
        };
        let prod = seen(reg.tag_history("team/app", "prod", 100).await.unwrap());
        assert_eq!(
            prod,
            [
                change(Some(&d1), None, "delete"),
                change(Some(&d2), Some(&d1), "push"),
                change(Some(&d1), Some(&d2), "push"),
                change(None, Some(&d1), "push"),
            ],
            "{}",
            b.name
        );
        let canary = seen(reg.tag_history("team/app", "canary", 100).await.unwrap());
        assert_eq!(
            canary,
            [
                change(Some(&d2), None, "delete"),
                change(None, Some(&d2), "push")
            ],
            "{}",
            b.name
        );
        // The limit keeps the newest; times never go backwards.
        let last = reg.tag_history("team/app", "prod", 1).await.unwrap();
        assert_eq!(last.len(), 1);
        let all = reg.tag_history("team/app", "prod", 100).await.unwrap();
        assert!(
            all.windows(2).all(|w| w[0].at >= w[1].at),
            "{}: {all:?}",
            b.name
        );
        assert!(reg
            .tag_history("team/app", "never", 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            reg.tag_history("no/such", "prod", 10)
                .await
                .unwrap_err()
                .code,
            ErrorCode::NameUnknown
        );
    }
}

#[tokio::test]
async fn a_tag_rolls_back_and_forward_and_the_history_says_so() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let v1 = image(&reg, "app", "blue").await;
        let v2 = image(&reg, "app", "green").await;
        let v3 = image(&reg, "app", "teal").await;
        let d1 = reg
            .put_manifest("app", "prod", Some(OCI), &v1)
            .await
            .unwrap()
            .digest;
        let d2 = reg
            .put_manifest("app", "prod", Some(OCI), &v2)
            .await
            .unwrap()
            .digest;
        // Blue/green: back one step, to v1.
        let (from, to) = reg
            .rollback_tag("app", "prod", storage::Rollback::Steps(1))
            .await
            .unwrap();
        assert_eq!(
            (from.as_deref(), to.as_str()),
            (Some(d2.to_string().as_str()), d1.to_string().as_str())
        );
        assert_eq!(
            reg.manifest("app", "prod").await.unwrap().digest,
            d1,
            "{}",
            b.name
        );
        // Again: forward to v2 (the change before the rollback was to v2).
        reg.rollback_tag("app", "prod", storage::Rollback::Steps(1))
            .await
            .unwrap();
        assert_eq!(
            reg.manifest("app", "prod").await.unwrap().digest,
            d2,
            "{}",
            b.name
        );
        // To a named digest.
        let d3 = reg
            .put_manifest("app", &Digest::sha256_of(&v3).to_string(), Some(OCI), &v3)
            .await
            .unwrap()
            .digest;
        reg.rollback_tag("app", "prod", storage::Rollback::To(d3.clone()))
            .await
            .unwrap();
        assert_eq!(reg.manifest("app", "prod").await.unwrap().digest, d3);
        let h = reg.tag_history("app", "prod", 10).await.unwrap();
        let actions: Vec<&str> = h.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(
            actions,
            ["rollback", "rollback", "rollback", "push", "push"],
            "{}",
            b.name
        );
        // Not to a manifest that is gone, nor further back than there is.
        reg.delete_manifest("app", &d1.to_string()).await.unwrap();
        let e = reg
            .rollback_tag("app", "prod", storage::Rollback::To(d1.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestUnknown, "{}: {e}", b.name);
        let e = reg
            .rollback_tag("app", "prod", storage::Rollback::Steps(50))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestUnknown, "{}: {e}", b.name);
        assert_eq!(
            reg.manifest("app", "prod").await.unwrap().digest,
            d3,
            "{}",
            b.name
        );
    }
}
