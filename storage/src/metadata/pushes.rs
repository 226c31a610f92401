//! The writes every push makes: a new upload session, the link of a
//! committed blob, the manifest. They are the registry's hot path and
//! each dialect tunes them its own way, so each implements [`Pushes`] in
//! its `pushes.rs`: SQLite in one round trip to its single writer each
//! (multi-statement queries, new sessions written in groups), PostgreSQL
//! in transactions that hold what they check (`FOR SHARE`) against
//! concurrent collection and are retried after a deadlock. What they
//! share, how a manifest's references are judged, is here.

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{Described, ParsedManifest};
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
pub trait Pushes: Send + Sync {
    /// Record a new upload session; returns once its row is committed.
    async fn create_upload(&self, id: &str, repo: &str) -> Result<()>;
    /// Record a committed blob, link it into `repo` (creating the repo)
    /// and end upload session `upload`.
    async fn link_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
        upload: Option<&str>,
    ) -> Result<()>;
    /// Store a manifest (see [`NewManifest`]) after checking that all it
    /// references exists in the repository (unless `check_refs`). One
    /// transaction: a tag never points at a manifest that is not there.
    /// A tag kept (`keep_existing`) that points elsewhere refuses the whole
    /// write with [`crate::Error::tag_immutable`].
    async fn put_manifest(&self, m: &NewManifest<'_>) -> Result<()>;
}

/// A manifest to store, and the tag to point at it.
#[derive(Debug, Clone, Copy)]
pub struct NewManifest<'a> {
    pub repo: &'a str,
    pub digest: &'a Digest,
    pub parsed: &'a ParsedManifest,
    /// The exact bytes.
    pub content: &'a [u8],
    pub tag: Option<&'a str>,
    /// An immutable tag: created, never moved.
    pub keep_existing: bool,
    /// Check what the manifest names is in the repository (a pull-through
    /// cache stores what its upstream served before fetching what it names).
    pub check_refs: bool,
    /// Unix milliseconds by the registry's clock, which tests move.
    pub pushed_ms: i64,
    /// Who pushes (none with authentication off).
    pub actor: Option<&'a str>,
}

/// What a repository holds of a manifest's references: digest → size and
/// media type (blobs have none).
pub(crate) type Stored = HashMap<String, (u64, Option<String>)>;

/// The refusal of a manifest that names a `what` (blob or manifest) the
/// repository does not have.
pub(crate) fn missing(d: &Described, what: &str) -> Error {
    Error::new(
        ErrorCode::ManifestBlobUnknown,
        format!("{} references a {what} unknown to this repository", d.at),
    )
    .with_detail(serde_json::json!({ "digest": d.digest.to_string() }))
}

/// Each of `named` (a manifest's blobs or children: `what`) is `stored`,
/// with the size (and media type) its descriptor gives.
pub(crate) fn check_stored(named: &[Described], what: &str, stored: &Stored) -> Result<()> {
    for d in named {
        match stored.get(&d.digest.to_string()) {
            None => return Err(missing(d, what)),
            Some((size, media_type)) => d.check(*size, media_type.as_deref())?,
        }
    }
    Ok(())
}

/// A dialect's `manifest_repo`: the id of the repository a manifest goes
/// to, for its `put_manifest`.
macro_rules! impl_push_helpers {
    ($ty:ty) => {
        impl $ty {
            /// A repository without rows cannot hold what the manifest
            /// names: fail before creating it.
            async fn manifest_repo(
                &self,
                m: &$crate::metadata::NewManifest<'_>,
            ) -> $crate::error::Result<i64> {
                use $crate::metadata::pushes::missing;
                Ok(match self.repo_id(m.repo).await? {
                    Some(id) => id,
                    None if !m.check_refs => self.ensure_repo(m.repo).await?,
                    None => match (m.parsed.blobs.first(), m.parsed.children.first()) {
                        (Some(b), _) => return Err(missing(b, "blob")),
                        (None, Some(c)) => return Err(missing(c, "manifest")),
                        (None, None) => self.ensure_repo(m.repo).await?,
                    },
                })
            }
        }
    };
}
pub(crate) use impl_push_helpers;
