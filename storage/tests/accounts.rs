//! Accounts on every metadata backend: each account has a credential
//! generation (refresh tokens are bound to it), new when the account is
//! made, its password changed or its secret rotated; `migrate` carries
//! accounts over as they are, generation and times included.

mod common;

use storage::{MetaBackend, Policy, Registry, StorageBackend};

#[tokio::test]
async fn credential_generations_change_with_the_credentials() {
    for b in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let reg = common::open(&b, dir.path()).await;
        let acc = reg.accounts();
        let name = b.name;

        assert!(acc
            .add_user("alice", "$argon2id$h1", false, &[])
            .await
            .unwrap());
        let a1 = acc.user("alice").await.unwrap().unwrap();
        assert_eq!(a1.credential_gen.len(), 32, "{name}: {a1:?}");
        assert!(acc.set_password("alice", "$argon2id$h2").await.unwrap());
        let a2 = acc.user("alice").await.unwrap().unwrap();
        assert_eq!(a2.password_hash, "$argon2id$h2");
        assert_ne!(
            a2.credential_gen, a1.credential_gen,
            "{name}: password change"
        );
        // Deleted and made again: a new account, a new generation.
        assert!(acc.delete_user("alice").await.unwrap());
        assert!(acc
            .add_user("alice", "$argon2id$h2", false, &[])
            .await
            .unwrap());
        let a3 = acc.user("alice").await.unwrap().unwrap();
        assert!(
            a3.credential_gen != a1.credential_gen && a3.credential_gen != a2.credential_gen,
            "{name}: re-created user"
        );

        let scopes = vec!["repository:team/*:pull".to_string()];
        assert!(acc
            .add_robot("ci", "$argon2id$s1", &scopes, Some(4_000_000_000))
            .await
            .unwrap());
        let r1 = acc.robot("ci").await.unwrap().unwrap();
        assert!(acc.rotate_robot("ci", "$argon2id$s2").await.unwrap());
        let r2 = acc.robot("ci").await.unwrap().unwrap();
        assert_eq!(r2.secret_hash, "$argon2id$s2", "{name}");
        assert_ne!(r2.credential_gen, r1.credential_gen, "{name}: rotation");
        assert_eq!(
            (&r2.scopes, r2.expires_at, r2.created_at),
            (&r1.scopes, r1.expires_at, r1.created_at),
            "{name}: rotation keeps the rest"
        );
        assert!(!acc.rotate_robot("nobody", "$argon2id$x").await.unwrap());
        assert!(acc.delete_robot("ci").await.unwrap());
        assert!(acc
            .add_robot("ci", "$argon2id$s1", &scopes, None)
            .await
            .unwrap());
        let r3 = acc.robot("ci").await.unwrap().unwrap();
        assert!(
            r3.credential_gen != r1.credential_gen && r3.credential_gen != r2.credential_gen,
            "{name}: re-created robot"
        );
        // Two accounts never share one.
        acc.add_user("bob", "$argon2id$h", false, &[])
            .await
            .unwrap();
        let bob = acc.user("bob").await.unwrap().unwrap();
        assert_ne!(bob.credential_gen, a3.credential_gen);
    }
}

async fn open(dir: &std::path::Path, meta: MetaBackend) -> Registry {
    Registry::open_with(dir, &meta, &StorageBackend::Local, Policy::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_copies_accounts_as_they_are() {
    // From SQLite into PostgreSQL: the pair's database is the target.
    for b in common::backends_where(|p| p == common::Pair::PostgresLocal).await {
        migrate_accounts(b.meta.clone()).await;
    }
}

async fn migrate_accounts(target: MetaBackend) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = open(d1.path(), MetaBackend::Sqlite).await;
    let to = open(d2.path(), target).await;
    let acc = from.accounts();
    acc.add_user("alice", "$argon2id$h1", true, &["team".into()])
        .await
        .unwrap();
    acc.set_password("alice", "$argon2id$h2").await.unwrap();
    acc.add_robot(
        "ci",
        "$argon2id$s",
        &["repository:a/*:pull".into()],
        Some(5),
    )
    .await
    .unwrap();
    acc.rotate_robot("ci", "$argon2id$s2").await.unwrap();
    let report = storage::migrate::migrate(&from, &to, 2, &|_| {})
        .await
        .unwrap();
    assert_eq!((report.users, report.robots), (1, 1));
    assert_eq!(
        to.accounts().users().await.unwrap(),
        from.accounts().users().await.unwrap(),
        "users, generation and times included"
    );
    assert_eq!(
        to.accounts().robots().await.unwrap(),
        from.accounts().robots().await.unwrap()
    );
}
