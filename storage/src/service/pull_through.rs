//! What a pull-through cache stores: manifests as its upstream served them
//! (before the blobs they name are fetched) and blobs already stored under
//! another repository, linked without a second fetch.

use super::Registry;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{self, ParsedManifest};
use crate::metadata::NewManifest;
use crate::names::{validate_name, Reference};

/// Who the tag history names for changes the cache makes.
pub const CACHE_ACTOR: &str = "pull-through";

impl Registry {
    /// Store `body`, fetched from an upstream for `reference` of `repo`.
    /// The digest is checked (against `reference` when it is one, and
    /// against `served`, what the upstream said it sent); a tag is moved to
    /// it. Its references are recorded but not required: its blobs come
    /// later, on their first pull.
    pub async fn put_cached_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        body: &[u8],
        served: Option<&Digest>,
    ) -> Result<Digest> {
        validate_name(repo)?;
        self.wrote();
        let reference = Reference::parse(reference)?;
        let algorithm = match (&reference, served) {
            (Reference::Digest(d), _) | (_, Some(d)) => d.algorithm(),
            _ => Algorithm::Sha256,
        };
        let digest = Digest::of(algorithm, body);
        let expected = match &reference {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => served,
        };
        if let Some(expected) = expected.filter(|e| **e != digest) {
            return Err(Error::new(
                ErrorCode::DigestInvalid,
                format!("the upstream sent a manifest whose digest is {digest}, not {expected}"),
            ));
        }
        let parsed: ParsedManifest = manifest::parse(content_type, body)?;
        let tag = match &reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        // What the manifest names is fetched after: no reference check.
        self.meta
            .put_manifest(&NewManifest {
                repo,
                digest: &digest,
                parsed: &parsed,
                content: body,
                tag,
                keep_existing: false,
                check_refs: false,
                pushed_ms: self.now_ms(),
                actor: Some(CACHE_ACTOR),
            })
            .await?;
        if let Some(tag) = tag {
            self.cache.set_tag(repo, tag, &digest);
        }
        Ok(digest)
    }

    /// Link `digest` into `repo` if its bytes are stored (under any
    /// repository); `false` if they are not. The caller vouches that
    /// `repo` may read it (its upstream has it).
    pub async fn adopt_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        validate_name(repo)?;
        let _fence = self.meta.enter_fence(&digest.to_string()).await?;
        let Some((size, location)) = self.meta.blob_any(&digest.to_string()).await? else {
            return Ok(false);
        };
        let blob = crate::blobstore::BlobRef {
            digest,
            location: location.as_deref(),
        };
        if self.blobs.stat(blob).await?.is_none() {
            return Ok(false);
        }
        self.wrote();
        self.meta
            .link_blob(repo, digest, size as u64, location.as_deref(), None)
            .await?;
        Ok(true)
    }

    /// Whether the bytes of `digest` are stored (under any repository).
    pub async fn blob_stored(&self, digest: &Digest) -> Result<bool> {
        Ok(self.meta.blob_any(&digest.to_string()).await?.is_some())
    }
}
