//! Blobs in an S3 bucket (AWS, or anything speaking its protocol), through
//! `object_store`'s `AmazonS3`.
//!
//! Layout under the configured prefix:
//! - `blobs/<alg>/<xx>/<hex>`: a blob under its digest (as on local disk);
//!   small blobs sent whole, and blobs copied in by `registry migrate`.
//! - `blobs/by-upload/<session>`: a blob assembled by a multipart upload.
//!   It stays under that name, and the database maps its digest to it:
//!   renaming an S3 object copies every byte, and committing must not.
//! - `uploads/<session>/tail-<n>`: the last bytes of an unfinished upload
//!   that do not yet fill a part (S3 parts must be at least 5 MiB, clients'
//!   chunks may be any size).
//! - `quarantine/...`: blobs `registry check --repair` took out of service.
//!
//! Upload sessions keep their state (size, SHA-256 state, multipart id and
//! parts) in the metadata database through a [`SessionBook`], so any node
//! continues any session; see `upload.rs`.

mod upload;

use super::{
    digest_key, parse_digest_key, AppendLimits, BlobListing, BlobRef, BlobStore, ByteStream,
    Committed, Fence, Listed, SessionBook, SessionLock,
};
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Downloads read objects in parts of this size ...
const READ_PART: u64 = 4 << 20;
/// ... this many at once (memory per download: their sum).
const READS_IN_FLIGHT: usize = 4;

/// `[storage]` with `kind = "s3"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket (several registries may share one).
    pub prefix: String,
    /// Default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub region: Option<String>,
    /// An S3-compatible server's URL (MinIO, Ceph, ...); default: AWS.
    pub endpoint: Option<String>,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`.
    pub path_style: bool,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
    /// Answer blob GETs with a 307 to a presigned S3 URL.
    pub redirect: bool,
    /// Lifetime of presigned URLs.
    pub redirect_ttl_secs: u64,
    /// Size of multipart-upload parts, in MiB (5 to 64).
    pub part_size_mib: u64,
    /// Credentials in the configuration file (better: the environment, the
    /// ECS task role or EKS web identity, which `object_store` reads when
    /// these are absent).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: false,
            allow_http: false,
            redirect: true,
            redirect_ttl_secs: 1200,
            part_size_mib: 8,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl S3Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.bucket.len() < 3 {
            return Err("storage.bucket: an S3 bucket name has at least 3 characters".into());
        }
        if !(5..=64).contains(&self.part_size_mib) {
            return Err("storage.part_size_mib: between 5 and 64".into());
        }
        if self.redirect && self.redirect_ttl_secs == 0 {
            return Err("storage.redirect_ttl_secs: must be positive".into());
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err("storage.access_key_id and storage.secret_access_key go together".into());
        }
        Ok(())
    }
}

/// Requests to S3 give up after this long in all, retries included: a
/// client waiting longer would rather get a 503 and retry itself.
const RETRY_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RETRIES: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One request (a part, a small object) must be done within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3BlobStore {
    /// Everything but streamed reads.
    s3: Arc<AmazonS3>,
    /// Streamed reads: no overall timeout, as a download to a slow client
    /// may take hours (the HTTP layer abandons stalled ones).
    reader: Arc<AmazonS3>,
    prefix: String,
    redirect_ttl: Option<Duration>,
    part_size: usize,
    sessions: Arc<dyn SessionBook>,
}

impl S3BlobStore {
    pub fn open(cfg: &S3Config, sessions: Arc<dyn SessionBook>) -> Result<S3BlobStore> {
        cfg.validate()
            .map_err(|e| Error::new(ErrorCode::Internal, format!("invalid configuration: {e}")))?;
        let build = |client: ClientOptions| -> Result<AmazonS3> {
            // The standard AWS chain: environment, web identity (EKS), the
            // ECS container endpoint, instance metadata.
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(&cfg.bucket)
                .with_allow_http(cfg.allow_http)
                .with_virtual_hosted_style_request(!cfg.path_style)
                // The registry verifies every byte against its digest; a
                // second SHA-256 pass to sign each payload would double
                // the CPU an upload costs. TLS protects the transfer.
                .with_unsigned_payload(true)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: MAX_RETRIES,
                    retry_timeout: RETRY_TIMEOUT,
                })
                .with_client_options(client.with_allow_http(cfg.allow_http));
            if let Some(r) = &cfg.region {
                b = b.with_region(r);
            }
            if let Some(e) = &cfg.endpoint {
                b = b.with_endpoint(e);
            }
            if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
            }
            b.build()
                .map_err(|e| Error::new(ErrorCode::Internal, format!("S3 configuration: {e}")))
        };
        let base = ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT);
        let s3 = build(base.clone().with_timeout(REQUEST_TIMEOUT))?;
        let reader = build(base.with_timeout_disabled())?;
        Ok(S3BlobStore {
            s3: Arc::new(s3),
            reader: Arc::new(reader),
            prefix: cfg.prefix.trim_matches('/').to_owned(),
            redirect_ttl: cfg
                .redirect
                .then(|| Duration::from_secs(cfg.redirect_ttl_secs)),
            part_size: (cfg.part_size_mib as usize) << 20,
            sessions,
        })
    }

    /// The object path of `key` (relative to the prefix).
    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// `path` relative to the prefix.
    fn relative<'a>(&self, path: &'a ObjectPath) -> &'a str {
        let p = path.as_ref();
        if self.prefix.is_empty() {
            p
        } else {
            p.strip_prefix(&self.prefix)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(p)
        }
    }

    fn blob_key(blob: BlobRef<'_>) -> String {
        match blob.location {
            Some(l) => l.to_owned(),
            None => digest_key(blob.digest),
        }
    }

    /// Every object under `key_prefix` (relative), paged through.
    async fn list_under(&self, key_prefix: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.path(key_prefix);
        self.s3
            .list(Some(&prefix))
            .map_err(s3_error)
            .try_collect()
            .await
    }
}

/// What an S3 failure means for the request. A missing object is the
/// caller's to interpret; anything else is S3 out of reach, throttling or
/// failing, after `object_store`'s retries: 503, retry later.
pub(crate) fn s3_error(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { path, .. } => {
            Error::new(ErrorCode::NotFound, format!("no such object in S3: {path}"))
        }
        e => Error::new(
            ErrorCode::Unavailable,
            format!("blob storage (S3) unavailable, retry later: {e}"),
        ),
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn ping(&self) -> Result<()> {
        // A HEAD of a key that need not exist: 404 proves the bucket
        // answers (and that we may read it).
        match self.s3.head(&self.path("registry-ping")).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(s3_error(e)),
        }
    }

    async fn stat(&self, blob: BlobRef<'_>) -> Result<Option<u64>> {
        match self.s3.head(&self.path(&Self::blob_key(blob))).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_error(e)),
        }
    }

    async fn get(&self, blob: BlobRef<'_>, range: Option<Range<u64>>) -> Result<ByteStream> {
        // The empty blob is the one object with no bytes (its digest says
        // so): nothing to fetch, and S3 refuses any range of it.
        if *blob.digest == Digest::of(blob.digest.algorithm(), b"") {
            return Ok(futures::stream::empty().boxed());
        }
        let path = self.path(&Self::blob_key(blob));
        // The first part on its own: its answer gives the object's size.
        let start = range.as_ref().map_or(0, |r| r.start);
        let first_end = range
            .as_ref()
            .map_or(start + READ_PART, |r| r.end.min(start + READ_PART));
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..first_end)),
            ..Default::default()
        };
        let first = match self.reader.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Err(Error::blob_unknown(blob.digest)),
            Err(e) => return Err(s3_error(e)),
        };
        let end = range.map_or(first.meta.size, |r| r.end.min(first.meta.size));
        let io = |e: object_store::Error| std::io::Error::other(format!("reading from S3: {e}"));
        let head = first.into_stream().map_err(io);
        if end <= first_end {
            return Ok(head.boxed());
        }
        // The rest in parts, several requests at once, in order: one GET
        // stream is bounded by one connection's speed (on AWS about 100 MB/s),
        // and a pull through a node should go at the bucket's.
        let parts = (first_end..end)
            .step_by(READ_PART as usize)
            .map(move |at| at..(at + READ_PART).min(end));
        let reader = self.reader.clone();
        let rest = futures::stream::iter(parts)
            .map(move |r| {
                let reader = reader.clone();
                let path = path.clone();
                async move { reader.get_range(&path, r).await }
            })
            .buffered(READS_IN_FLIGHT)
            .map_err(io);
        Ok(head.chain(rest).boxed())
    }

    async fn redirect(&self, blob: BlobRef<'_>) -> Result<Option<String>> {
        let Some(ttl) = self.redirect_ttl else {
            return Ok(None);
        };
        let path = self.path(&Self::blob_key(blob));
        // Signing is local computation (no request to S3).
        let url = self
            .s3
            .signed_url(http::Method::GET, &path, ttl)
            .await
            .map_err(s3_error)?;
        Ok(Some(url.to_string()))
    }

    async fn delete(&self, blob: BlobRef<'_>) -> Result<()> {
        match self.s3.delete(&self.path(&Self::blob_key(blob))).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(s3_error(e)),
        }
    }

    /// S3's bulk delete: up to 1000 objects per request.
    async fn delete_many(&self, blobs: &[BlobRef<'_>]) -> Vec<Result<()>> {
        let paths: Vec<object_store::Result<object_store::path::Path>> = blobs
            .iter()
            .map(|b| Ok(self.path(&Self::blob_key(*b))))
            .collect();
        let outcomes: Vec<object_store::Result<object_store::path::Path>> = self
            .s3
            .delete_stream(futures::stream::iter(paths).boxed())
            .collect()
            .await;
        let mut out: Vec<Result<()>> = outcomes
            .into_iter()
            .map(|o| match o {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(s3_error(e)),
            })
            .collect();
        // A failed bulk request reports once for all its objects.
        out.resize_with(blobs.len(), || {
            Err(Error::internal(
                "the bulk delete did not report this object",
            ))
        });
        out
    }

    async fn upload_create(&self, _id: &str) -> Result<()> {
        // The session's database row is its whole state until bytes come.
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<u64> {
        Ok(self.load_session(id).await?.0.size)
    }

    async fn upload_append(&self, id: &str, body: ByteStream, limits: AppendLimits) -> Result<u64> {
        self.append(id, body, limits).await
    }

    async fn upload_finish(
        &self,
        id: &str,
        last: Option<(ByteStream, AppendLimits)>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)> {
        self.finish(id, last, expected, fence).await
    }

    async fn upload_abort(&self, id: &str) -> Result<()> {
        self.abort(id).await
    }

    async fn upload_list(&self) -> Result<Vec<(String, i64)>> {
        // Sessions with bytes in S3 are those with tail objects; a session
        // whose bytes are all in multipart parts is known by its row.
        let mut latest: std::collections::BTreeMap<String, i64> = Default::default();
        for meta in self.list_under("uploads/").await? {
            let rel = self.relative(&meta.location);
            // Only `uploads/<session>/tail-<n>`: anything else someone put
            // there is not ours to remove (as on local disk).
            let session = rel
                .strip_prefix("uploads/")
                .and_then(|r| r.split_once('/'))
                .filter(|(s, tail)| super::LocalBlobStore::valid_id(s) && tail.starts_with("tail-"))
                .map(|(s, _)| s);
            if let Some(session) = session {
                let t = meta.last_modified.timestamp();
                let e = latest.entry(session.to_owned()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        Ok(latest.into_iter().collect())
    }

    async fn list(&self) -> Result<BlobListing> {
        let mut out = BlobListing::default();
        for meta in self.list_under("blobs/").await? {
            let key = self.relative(&meta.location).to_owned();
            if let Some(digest) = parse_digest_key(&key) {
                out.blobs.push(Listed {
                    key,
                    digest: Some(digest),
                    size: meta.size,
                });
            } else if key.starts_with("blobs/by-upload/") {
                out.blobs.push(Listed {
                    key,
                    digest: None,
                    size: meta.size,
                });
            } else {
                out.strays.push(key);
            }
        }
        Ok(out)
    }

    fn key_of(&self, blob: BlobRef<'_>) -> String {
        Self::blob_key(blob)
    }

    async fn quarantine(&self, blob: BlobRef<'_>) -> Result<()> {
        let key = Self::blob_key(blob);
        let from = self.path(&key);
        let to = self.path(&format!("quarantine/{key}"));
        match self.s3.copy(&from, &to).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(s3_error(e)),
        }
        self.delete(blob).await
    }
}
