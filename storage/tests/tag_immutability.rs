//! Tag immutability on every backend pair: an immutable repository's tag
//! is created once and never moved (by a push, which is refused whole, or a
//! rollback), the same digest may be pushed again, excluded tags move, and
//! switching it off lets tags move again.

mod common;

use storage::metadata::Immutability;
use storage::{Digest, ErrorCode, Rollback};

use common::{image, OCI};

#[tokio::test]
async fn immutable_tags_are_created_once() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        assert_eq!(
            reg.immutability("team/app").await.unwrap_err().code,
            ErrorCode::NameUnknown
        );
        // Set before the first push (the repository is created).
        let setting = Immutability {
            immutable: true,
            exclude: vec!["latest".into(), "dev-*".into()],
        };
        reg.set_immutability("team/app", &setting).await.unwrap();
        assert_eq!(
            reg.immutability("team/app").await.unwrap(),
            setting,
            "{}",
            b.name
        );
        let v1 = image(&reg, "team/app", "one").await;
        let v2 = image(&reg, "team/app", "two").await;
        let d1 = reg
            .put_manifest("team/app", "v1", Some(OCI), &v1)
            .await
            .unwrap()
            .digest;
        let d2 = Digest::sha256_of(&v2);
        let e = reg
            .put_manifest("team/app", "v1", Some(OCI), &v2)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::TagInvalid, "{}: {e}", b.name);
        assert_eq!(
            e.message,
            "The image tag 'v1' already exists in the 'team/app' repository and cannot be \
             overwritten because the repository is immutable."
        );
        // Refused whole: the tag holds v1, and v2 was not stored.
        assert_eq!(
            reg.manifest("team/app", "v1").await.unwrap().digest,
            d1,
            "{}",
            b.name
        );
        assert_eq!(
            reg.manifest("team/app", &d2.to_string())
                .await
                .unwrap_err()
                .code,
            ErrorCode::ManifestUnknown,
            "{}",
            b.name
        );
        // The same digest again is fine; excluded tags move.
        reg.put_manifest("team/app", "v1", Some(OCI), &v1)
            .await
            .unwrap();
        for tag in ["latest", "dev-7"] {
            reg.put_manifest("team/app", tag, Some(OCI), &v1)
                .await
                .unwrap();
            reg.put_manifest("team/app", tag, Some(OCI), &v2)
                .await
                .unwrap();
            assert_eq!(reg.manifest("team/app", tag).await.unwrap().digest, d2);
        }
        // A rollback of a protected tag is refused; of an excluded one not.
        let e = reg
            .rollback_tag("team/app", "v1", Rollback::To(d2.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::TagInvalid, "{}", b.name);
        reg.rollback_tag("team/app", "latest", Rollback::Steps(1))
            .await
            .unwrap();
        assert_eq!(reg.manifest("team/app", "latest").await.unwrap().digest, d1);
        // Off again: tags move.
        reg.set_immutability("team/app", &Immutability::default())
            .await
            .unwrap();
        reg.put_manifest("team/app", "v1", Some(OCI), &v2)
            .await
            .unwrap();
        assert_eq!(
            reg.manifest("team/app", "v1").await.unwrap().digest,
            d2,
            "{}",
            b.name
        );
    }
}
