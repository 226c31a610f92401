//! The backends every storage test runs against: metadata in SQLite and in
//! PostgreSQL (`REGISTRY_TEST_POSTGRES_URL`, a superuser URL; each test gets
//! a database of its own), blobs on local disk and in S3 (moto at
//! `REGISTRY_TEST_S3_MOTO_URL`, s3s-fs at `REGISTRY_TEST_S3_S3S_URL`, bucket
//! `REGISTRY_TEST_S3_BUCKET`; each test gets a key prefix of its own). The
//! four pairs: SQLite + disk (the default), PostgreSQL + disk, PostgreSQL +
//! S3 on moto (the several-node setup), SQLite + S3 on s3s-fs (which checks
//! request signatures). Without those variables the suite fails:
//! `scripts/test-all.sh` starts the servers (`scripts/start-postgres.sh`,
//! `scripts/start-s3.sh`). `REGISTRY_TEST_SQLITE_ONLY=1` runs SQLite + disk
//! only, on purpose; each test prints the pairs it ran (see [`Pairs`]), and
//! `scripts/test-all.sh` refuses that variable and checks those lines.

#![allow(dead_code)]

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{MetaBackend, Policy, Registry, S3Config, StorageBackend};

pub struct Backend {
    pub name: &'static str,
    pub meta: MetaBackend,
    pub storage: StorageBackend,
}

fn required(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: the storage suite runs against {what} too. Start the servers \
             with scripts/start-postgres.sh RUN_DIR and scripts/start-s3.sh RUN_DIR and source \
             RUN_DIR/postgres.env and RUN_DIR/s3.env (scripts/test-all.sh does), or set \
             REGISTRY_TEST_SQLITE_ONLY=1 to run SQLite on local disk only"
        )
    })
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_postgres() -> String {
    let admin = required("REGISTRY_TEST_POSTGRES_URL", "PostgreSQL");
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

/// S3 at the endpoint in `var`, under a prefix no other test uses.
pub fn fresh_s3(var: &str, what: &str) -> S3Config {
    S3Config {
        bucket: required("REGISTRY_TEST_S3_BUCKET", "S3"),
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
        region: Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())),
        endpoint: Some(required(var, what)),
        path_style: true,
        allow_http: true,
        ..S3Config::default()
    }
}

/// The four backend pairs, in the order tests run them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    SqliteLocal,
    PostgresLocal,
    PostgresMoto,
    SqliteS3s,
}

impl Pair {
    pub const ALL: [Pair; 4] = [
        Pair::SqliteLocal,
        Pair::PostgresLocal,
        Pair::PostgresMoto,
        Pair::SqliteS3s,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pair::SqliteLocal => "sqlite+local",
            Pair::PostgresLocal => "postgres+local",
            Pair::PostgresMoto => "postgres+s3(moto)",
            Pair::SqliteS3s => "sqlite+s3(s3s-fs)",
        }
    }

    pub fn postgres(self) -> bool {
        matches!(self, Pair::PostgresLocal | Pair::PostgresMoto)
    }

    pub fn s3(self) -> bool {
        matches!(self, Pair::PostgresMoto | Pair::SqliteS3s)
    }

    async fn open(self) -> Backend {
        let (meta, storage) = match self {
            Pair::SqliteLocal => (MetaBackend::Sqlite, StorageBackend::Local),
            Pair::PostgresLocal => (
                MetaBackend::Postgres(fresh_postgres().await),
                StorageBackend::Local,
            ),
            Pair::PostgresMoto => (
                MetaBackend::Postgres(fresh_postgres().await),
                StorageBackend::S3(fresh_s3("REGISTRY_TEST_S3_MOTO_URL", "S3 (moto)")),
            ),
            Pair::SqliteS3s => (
                MetaBackend::Sqlite,
                StorageBackend::S3(fresh_s3("REGISTRY_TEST_S3_S3S_URL", "S3 (s3s-fs)")),
            ),
        };
        Backend {
            name: self.name(),
            meta,
            storage,
        }
    }
}

/// Each backend pair, fresh.
pub async fn backends() -> Pairs {
    backends_where(|_| true).await
}

/// The pairs a test is about (`wanted`: two nodes need PostgreSQL, say),
/// fresh. `REGISTRY_TEST_SQLITE_ONLY=1` leaves SQLite + disk only.
pub async fn backends_where(wanted: impl Fn(Pair) -> bool) -> Pairs {
    let sqlite_only = std::env::var("REGISTRY_TEST_SQLITE_ONLY").as_deref() == Ok("1");
    let wanted: Vec<Pair> = Pair::ALL.into_iter().filter(|p| wanted(*p)).collect();
    let mut items = Vec::new();
    for p in &wanted {
        if !sqlite_only || *p == Pair::SqliteLocal {
            items.push(p.open().await);
        }
    }
    Pairs {
        items: items.into_iter(),
        wanted: wanted.len(),
        ran: Vec::new(),
    }
}

/// The backend pairs of one test. Iterated, it counts the pairs the test's
/// loop ran; when the loop is done it prints them, past the test harness's
/// capture, so that CI can check every test ran on all the pairs it wants
/// (a test whose loop runs zero times passes without testing anything):
///
/// `storage backend pairs: gc::name ran 4 of 4 wanted (of 4): sqlite+local, ...`
pub struct Pairs {
    items: std::vec::IntoIter<Backend>,
    wanted: usize,
    ran: Vec<&'static str>,
}

impl Iterator for Pairs {
    type Item = Backend;

    fn next(&mut self) -> Option<Backend> {
        let b = self.items.next()?;
        self.ran.push(b.name);
        Some(b)
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let thread = std::thread::current();
        let line = format!(
            "storage backend pairs: {}::{} ran {} of {} wanted (of {}): {}\n",
            env!("CARGO_CRATE_NAME"),
            thread.name().unwrap_or("unknown"),
            self.ran.len(),
            self.wanted,
            Pair::ALL.len(),
            self.ran.join(", ")
        );
        // Written to the process's stderr itself: `eprint!` would be
        // captured by the harness and shown only for failing tests.
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

pub async fn open_with(b: &Backend, dir: &Path, policy: Policy) -> Registry {
    Registry::open_with(dir, &b.meta, &b.storage, policy)
        .await
        .unwrap_or_else(|e| panic!("open the {} registry: {e}", b.name))
}

pub async fn open(b: &Backend, dir: &Path) -> Registry {
    open_with(b, dir, Policy::default()).await
}

/// The objects a backend's blob store keeps, to look at them from outside:
/// files under the data directory, or keys under the S3 prefix.
pub enum Objects {
    Local(PathBuf),
    S3(Arc<AmazonS3>, String),
}

impl Backend {
    pub fn is_local(&self) -> bool {
        matches!(self.storage, StorageBackend::Local)
    }

    pub fn objects(&self, dir: &Path) -> Objects {
        match &self.storage {
            StorageBackend::Local => Objects::Local(dir.to_owned()),
            StorageBackend::S3(c) => {
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(&c.bucket)
                    .with_endpoint(c.endpoint.clone().expect("test endpoint"))
                    .with_region(c.region.clone().unwrap_or_default())
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(true)
                    .build()
                    .expect("an S3 client for the test");
                Objects::S3(Arc::new(s3), c.prefix.clone())
            }
        }
    }
}

impl Objects {
    /// Keys under `under` (`blobs`, `uploads`), relative to it, sorted.
    pub async fn list(&self, under: &str) -> Vec<String> {
        let mut out = match self {
            Objects::Local(root) => {
                let mut out = Vec::new();
                walk(&root.join(under), "", &mut out);
                out
            }
            Objects::S3(s3, prefix) => {
                use futures::TryStreamExt;
                let base = format!("{prefix}/{under}/");
                let listed: Vec<_> = s3
                    .list(Some(&ObjectPath::from(format!("{prefix}/{under}"))))
                    .try_collect()
                    .await
                    .expect("list the test prefix");
                listed
                    .into_iter()
                    .filter_map(|m| m.location.as_ref().strip_prefix(&base).map(str::to_owned))
                    .collect()
            }
        };
        out.sort();
        out
    }

    /// Put a stray object at `key` (relative to the store's root).
    pub async fn put(&self, key: &str, data: &[u8]) {
        match self {
            Objects::Local(root) => std::fs::write(root.join(key), data).unwrap(),
            Objects::S3(s3, prefix) => {
                s3.put(
                    &ObjectPath::from(format!("{prefix}/{key}")),
                    PutPayload::from(data.to_vec()),
                )
                .await
                .unwrap();
            }
        }
    }

    /// Where staged bytes of a session named `name` live, in this store's
    /// layout (a file on disk, a tail object in S3).
    pub fn session_key(&self, name: &str) -> String {
        match self {
            Objects::Local(_) => format!("uploads/{name}"),
            Objects::S3(..) => format!("uploads/{name}/tail-1"),
        }
    }
}

fn walk(p: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(p) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), &rel, out);
        } else {
            out.push(rel);
        }
    }
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

/// The media type of the test images.
pub const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// A request body of `data`.
pub fn body(data: &[u8]) -> storage::blobstore::ByteStream {
    use futures::StreamExt;
    futures::stream::iter([Ok(bytes::Bytes::copy_from_slice(data))]).boxed()
}

/// An image whose one layer holds `salt`, its blobs pushed to `repo`; its
/// manifest bytes.
pub async fn image(reg: &Registry, repo: &str, salt: &str) -> Vec<u8> {
    use storage::Digest;
    let config = b"{}";
    let cd = Digest::sha256_of(config);
    reg.upload_monolithic(repo, &cd, body(config), Some(2))
        .await
        .unwrap();
    let ld = Digest::sha256_of(salt.as_bytes());
    reg.upload_monolithic(repo, &ld, body(salt.as_bytes()), Some(salt.len() as u64))
        .await
        .unwrap();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": salt.len()}],
    }))
    .unwrap()
}

/// An artifact whose subject is `subject` (a signature, say), pushed by
/// digest; its digest.
pub async fn referrer(reg: &Registry, repo: &str, subject: &[u8]) -> storage::Digest {
    use storage::Digest;
    let cfg = b"{}";
    let cd = Digest::sha256_of(cfg);
    reg.upload_monolithic(repo, &cd, body(cfg), None)
        .await
        .unwrap();
    let sig = b"signature bytes";
    let sd = Digest::sha256_of(sig);
    reg.upload_monolithic(repo, &sd, body(sig), None)
        .await
        .unwrap();
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sd.to_string(), "size": sig.len()}],
        "subject": {"mediaType": OCI, "digest": Digest::sha256_of(subject).to_string(), "size": subject.len()},
    }))
    .unwrap();
    let d = Digest::sha256_of(&m);
    reg.put_manifest(repo, &d.to_string(), Some(OCI), &m)
        .await
        .unwrap();
    d
}
