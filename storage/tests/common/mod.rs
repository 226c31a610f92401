//! The metadata backends every storage test runs against: SQLite, and
//! PostgreSQL from `REGISTRY_TEST_POSTGRES_URL` (a superuser URL; each test
//! gets a database of its own). Without that variable the suite fails:
//! `scripts/test-all.sh` starts PostgreSQL (`scripts/start-postgres.sh`).
//! `REGISTRY_TEST_SQLITE_ONLY=1` runs SQLite only, on purpose.

#![allow(dead_code)]

use sqlx::Connection;
use std::path::Path;
use storage::{MetaBackend, Policy, Registry};

pub struct Backend {
    pub name: &'static str,
    pub meta: MetaBackend,
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_postgres() -> String {
    let admin = std::env::var("REGISTRY_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "REGISTRY_TEST_POSTGRES_URL is not set: the storage suite runs against PostgreSQL too. \
             Start one with scripts/start-postgres.sh RUN_DIR and source RUN_DIR/postgres.env \
             (scripts/test-all.sh does), or set REGISTRY_TEST_SQLITE_ONLY=1 to run SQLite only"
        )
    });
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').expect("URL with a database").0;
    format!("{base}/{name}")
}

/// Each backend, fresh.
pub async fn backends() -> Vec<Backend> {
    let mut v = vec![Backend {
        name: "sqlite",
        meta: MetaBackend::Sqlite,
    }];
    if std::env::var("REGISTRY_TEST_SQLITE_ONLY").as_deref() != Ok("1") {
        v.push(Backend {
            name: "postgres",
            meta: MetaBackend::Postgres(fresh_postgres().await),
        });
    }
    v
}

pub async fn open_with(b: &Backend, dir: &Path, policy: Policy) -> Registry {
    Registry::open(dir, &b.meta, policy)
        .await
        .unwrap_or_else(|e| panic!("open the {} registry: {e}", b.name))
}

pub async fn open(b: &Backend, dir: &Path) -> Registry {
    open_with(b, dir, Policy::default()).await
}

/// Another client holding the database's write lock until `release`.
pub enum Locker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Locker {
    pub async fn hold(b: &Backend, dir: &Path) -> Locker {
        match &b.meta {
            MetaBackend::Sqlite => {
                let db = dir.join("registry.db");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                    .await
                    .unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                Locker::Sqlite(c)
            }
            MetaBackend::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut c).await.unwrap();
                sqlx::query("LOCK TABLE blobs, repo_blobs, uploads IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                Locker::Postgres(c)
            }
        }
    }

    pub async fn release(self) {
        match self {
            Locker::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Locker::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}
