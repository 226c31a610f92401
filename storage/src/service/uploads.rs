//! Blob upload sessions: start, chunks, finish (digest checked, quota
//! applied, link committed), cancel, and the purge of abandoned ones.

use super::{ChunkSpec, Registry};
use crate::blobstore::{AppendLimits, BlobRef, ByteStream, Committed, SessionBook, SessionLock};
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{self, Metadata};
use crate::names::validate_name;
use std::time::Duration;

/// Upload-session state for the blob store, in the metadata database.
pub(super) struct MetaSessions(pub(super) Metadata);

#[async_trait::async_trait]
impl SessionBook for MetaSessions {
    async fn load(&self, key: &str) -> Result<Option<(Option<Vec<u8>>, i64)>> {
        self.0.upload_state(upload_id_of(key)).await
    }

    async fn save(&self, key: &str, version: i64, state: &[u8]) -> Result<bool> {
        self.0
            .save_upload_state(upload_id_of(key), version, state)
            .await
    }

    async fn try_lock(&self, key: &str) -> Result<Option<SessionLock>> {
        self.0.try_lock_upload(upload_id_of(key)).await
    }
}

impl Registry {
    pub async fn start_upload(&self, repo: &str) -> Result<String> {
        validate_name(repo)?;
        // A full namespace is refused before any byte is sent.
        self.check_new_repo(repo).await?;
        self.check_bytes(repo, None, 0).await?;
        self.wrote();
        let id = uuid::Uuid::new_v4().to_string();
        // Row before file: cleanup treats a file without a row as debris.
        self.meta.create_upload(&id, repo).await?;
        self.blobs.upload_create(&session_key(repo, &id)).await?;
        self.cache.add_upload(&id, repo);
        Ok(id)
    }

    /// The store's key of upload `id` of `repo`, if such a session exists.
    /// (The store has the last word: a session it has ended is unknown.)
    async fn session(&self, repo: &str, id: &str) -> Result<String> {
        validate_name(repo)?;
        if !self.cache.upload_in(id, repo) && !self.meta.upload_in_repo(id, repo).await? {
            return Err(Error::upload_unknown(id));
        }
        Ok(session_key(repo, id))
    }

    /// Bytes received so far.
    pub async fn upload_status(&self, repo: &str, id: &str) -> Result<u64> {
        let key = self.session(repo, id).await?;
        self.blobs.upload_size(&key).await
    }

    pub async fn upload_chunk(
        &self,
        repo: &str,
        id: &str,
        body: ByteStream,
        chunk: ChunkSpec,
    ) -> Result<u64> {
        let key = self.session(repo, id).await?;
        let size = match self
            .blobs
            .upload_append(&key, body, self.limits(chunk))
            .await
        {
            Ok(size) => size,
            Err(e) => {
                self.discard_if_too_large(repo, id, &e).await;
                return Err(e);
            }
        };
        self.meta.touch_upload(id).await?;
        Ok(size)
    }

    /// An upload over the blob size limit can never finish: it is
    /// discarded rather than left open and empty.
    async fn discard_if_too_large(&self, repo: &str, id: &str, e: &Error) {
        if e.code == ErrorCode::TooLarge {
            self.cancel_upload(repo, id).await.ok();
        }
    }

    fn limits(&self, chunk: ChunkSpec) -> AppendLimits {
        AppendLimits {
            expected_start: chunk.start,
            expected_len: chunk.len,
            max_total: self.policy.max_blob_bytes,
        }
    }

    /// Append an optional last chunk, verify the digest, make the blob
    /// visible in `repo` and end the session.
    pub async fn finish_upload(
        &self,
        repo: &str,
        id: &str,
        digest: &Digest,
        last_chunk: Option<(ByteStream, ChunkSpec)>,
    ) -> Result<()> {
        let key = self.session(repo, id).await?;
        // From here the row may go: later requests ask the database.
        self.cache.drop_upload(id);
        // The namespace's byte quota, checked before the commit when the
        // size is known (every chunk sent but an unsized last one).
        let quota = self.quota_of(repo).is_some();
        let known = match (&last_chunk, quota) {
            (_, false) => None,
            (None, true) => Some(self.blobs.upload_size(&key).await?),
            (Some((_, c)), true) => match c.len {
                Some(n) => Some(self.blobs.upload_size(&key).await? + n),
                None => None,
            },
        };
        let mut adds = match known {
            Some(n) => self.check_bytes(repo, Some(digest), n).await?,
            None => 0,
        };
        let new_repo = quota && !self.meta.repo_exists(repo).await?;
        let last = last_chunk.map(|(body, chunk)| (body, self.limits(chunk)));
        // The digest's fence is held from before the bytes are placed until
        // the link commits (a collection removing this digest meanwhile
        // would delete them); the store enters it once the body is in, so
        // nothing is held while a client sends (on PostgreSQL, a fence is a
        // connection).
        let meta = self.meta.clone();
        let fence_key = digest.to_string();
        let fence: crate::blobstore::Fence =
            Box::new(move || Box::pin(async move { meta.enter_fence(&fence_key).await }));
        // Commit ends the session whatever the outcome (a bad digest
        // discards it); a bad last chunk leaves it as it was. Bytes before
        // link: a crash in between leaves an unreferenced blob, never a link
        // to missing bytes.
        match self.blobs.upload_finish(&key, last, digest, fence).await {
            Ok((done, _fence)) => {
                if quota && known.is_none() {
                    // Sized only now: over quota, the bytes go again (ours
                    // alone: a blob linked before stays), unlinked.
                    match self.check_bytes(repo, Some(digest), done.size).await {
                        Ok(n) => adds = n,
                        Err(e) => {
                            let existed = self.meta.blob_any(&digest.to_string()).await?.is_some();
                            if !existed {
                                let ours = BlobRef {
                                    digest,
                                    location: done.location.as_deref(),
                                };
                                self.blobs.delete(ours).await.ok();
                            }
                            self.meta.delete_upload(id).await?;
                            return Err(e);
                        }
                    }
                }
                self.link_committed(repo, digest, done, Some(id)).await?;
                self.note_usage(repo, i64::from(new_repo), adds);
                Ok(())
            }
            Err(e) if e.code == ErrorCode::DigestInvalid => {
                self.meta.delete_upload(id).await?;
                Err(e)
            }
            Err(e) => {
                self.discard_if_too_large(repo, id, &e).await;
                Err(e)
            }
        }
    }

    /// Link a blob just committed. If another upload of the same digest
    /// got there first (under another name), this copy is redundant: the
    /// recorded one serves, and this one goes.
    async fn link_committed(
        &self,
        repo: &str,
        digest: &Digest,
        done: Committed,
        upload: Option<&str>,
    ) -> Result<()> {
        self.wrote();
        self.meta
            .link_blob(repo, digest, done.size, done.location.as_deref(), upload)
            .await?;
        if let Some(ours) = &done.location {
            let recorded = self.meta.blob_any(&digest.to_string()).await?;
            if recorded.as_ref().and_then(|(_, l)| l.as_ref()) != Some(ours) {
                let duplicate = BlobRef {
                    digest,
                    location: Some(ours),
                };
                if let Err(e) = self.blobs.delete(duplicate).await {
                    tracing::warn!(error = %e, location = %ours, "could not remove a duplicate blob object");
                }
            }
        }
        Ok(())
    }

    /// One-request upload (`POST ?digest=`).
    pub async fn upload_monolithic(
        &self,
        repo: &str,
        digest: &Digest,
        body: ByteStream,
        len: Option<u64>,
    ) -> Result<()> {
        let id = self.start_upload(repo).await?;
        let result = self
            .finish_upload(
                repo,
                &id,
                digest,
                Some((body, ChunkSpec { start: None, len })),
            )
            .await;
        if result.is_err() {
            self.cancel_upload(repo, &id).await.ok();
        }
        result
    }

    pub async fn cancel_upload(&self, repo: &str, id: &str) -> Result<()> {
        let key = self.session(repo, id).await?;
        self.cache.drop_upload(id);
        self.blobs.upload_abort(&key).await?;
        self.meta.delete_upload(id).await?;
        Ok(())
    }

    /// Remove upload sessions idle for longer than `ttl`, and staging files
    /// no session owns (left by a crash). Returns how many went.
    pub async fn purge_uploads(&self, ttl: Duration) -> Result<usize> {
        self.purge_uploads_idle_since(metadata::now() - ttl.as_secs() as i64)
            .await
    }

    /// [`Registry::purge_uploads`] with an explicit cut-off (unix seconds).
    pub async fn purge_uploads_idle_since(&self, before: i64) -> Result<usize> {
        // Files first, rows second: a session created in between has its row
        // before its file, so it is never mistaken for debris.
        let files = self.blobs.upload_list().await?;
        let known: std::collections::HashSet<String> = self
            .meta
            .uploads(None)
            .await?
            .iter()
            .map(|(id, repo)| session_key(repo, id))
            .collect();
        let mut purged = 0;
        for (key, _) in files.iter().filter(|(key, _)| !known.contains(key)) {
            self.blobs.upload_abort(key).await?;
            purged += 1;
        }
        for (id, repo) in self.meta.uploads(Some(before)).await? {
            self.cache.drop_upload(&id);
            self.blobs.upload_abort(&session_key(&repo, &id)).await?;
            self.meta.delete_upload(&id).await?;
            purged += 1;
        }
        Ok(purged)
    }
}

/// The blob store's name for upload `id` of `repo`: it binds the staging
/// file to its repository too, so an id used under another repository
/// names no bytes even without the database.
pub(crate) fn session_key(repo: &str, id: &str) -> String {
    let repo_hash = Digest::sha256_of(repo.as_bytes());
    format!("{id}-{}", &repo_hash.hex()[..16])
}

/// The upload id in a [`session_key`].
fn upload_id_of(key: &str) -> &str {
    key.rsplit_once('-').map_or(key, |(id, _)| id)
}
