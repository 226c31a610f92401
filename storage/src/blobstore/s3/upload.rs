//! Uploads into S3, continued by any node.
//!
//! A session's bytes go into one S3 multipart upload, in parts of
//! `part_size` cut from whatever chunks clients send, at most
//! [`PARTS_IN_FLIGHT`] at once; bytes that do not fill a part when a
//! request ends wait in a small "tail" object, and are sent again as the
//! start of the next part. The session's state (size, SHA-256 state,
//! multipart id, part ETags, tail) is saved in the database at the end of
//! each request, under the session's writer lock and a version check, so:
//! - a request that fails midway saves nothing: the session is as before
//!   (parts it sent are overwritten by the next request, or left out of
//!   the final assembly, which S3 then discards);
//! - two requests never write one session at once (the second waits for
//!   the first, up to a limit, then gets 416);
//! - a node that dies mid-request loses only that request.
//!
//! Memory per upload: one part being filled plus the parts in flight.

use super::{s3_error, S3BlobStore};
use crate::blobstore::pipeline::{check_complete, check_received, interrupted};
use crate::blobstore::{digest_key, AppendLimits, ByteStream, Committed, Fence, SessionLock};
use crate::digest::{Algorithm, Digest, Hasher, ResumableSha256};
use crate::error::{Error, ErrorCode, Result};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use tokio::task::JoinHandle;

mod writer;
use writer::Writer;

/// Parts uploading at once per session: two keep the link busy while the
/// next part fills, without more memory than the speed needs.
const PARTS_IN_FLIGHT: usize = 2;

/// How long a request waits for another request of its session to end.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the database holds for a session (JSON, a few hundred bytes plus
/// one ETag per part).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct SessionState {
    /// Bytes received.
    pub size: u64,
    /// [`ResumableSha256`] of those bytes, hex; empty while none came.
    #[serde(default)]
    hash: String,
    /// The S3 multipart upload, once a part was sent.
    #[serde(default)]
    multipart: Option<String>,
    /// ETags of parts 1..=n, in order.
    #[serde(default)]
    parts: Vec<String>,
    /// The bytes after the parts, in `uploads/<session>/tail-<n>`.
    #[serde(default)]
    tail: Option<Tail>,
    /// Set once the blob is assembled: a repeated final request (whose
    /// answer was lost) gets the same answer instead of a broken session.
    #[serde(default)]
    done: Option<Done>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tail {
    n: i64,
    len: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    digest: String,
    size: u64,
    location: Option<String>,
}

impl SessionState {
    fn hasher(&self) -> Result<ResumableSha256> {
        if self.hash.is_empty() {
            return Ok(ResumableSha256::new());
        }
        hex::decode(&self.hash)
            .ok()
            .and_then(|b| ResumableSha256::from_bytes(&b))
            .ok_or_else(|| Error::internal("upload session: unreadable hash state"))
    }
}

/// The database id of a session key (`<uuid>-<repo hash>`), for messages.
fn session_id(key: &str) -> &str {
    key.get(..36).unwrap_or(key)
}

fn range_conflict(size: u64, why: &str) -> Error {
    Error::new(ErrorCode::RangeInvalid, why.to_owned())
        .with_detail(serde_json::json!({ "size": size }))
}

fn digest_mismatch(expected: &Digest, actual: &Digest) -> Error {
    Error::new(
        ErrorCode::DigestInvalid,
        "provided digest did not match uploaded content",
    )
    .with_detail(
        serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
    )
}

impl S3BlobStore {
    fn object_of(&self, key: &str) -> ObjectPath {
        self.path(&format!("blobs/by-upload/{key}"))
    }

    fn tail_path(&self, key: &str, n: i64) -> ObjectPath {
        self.path(&format!("uploads/{key}/tail-{n}"))
    }

    /// A session's state and its version; an unknown session is 404.
    pub(super) async fn load_session(&self, key: &str) -> Result<(SessionState, i64)> {
        let Some((raw, version)) = self.sessions.load(key).await? else {
            return Err(Error::upload_unknown(session_id(key)));
        };
        let state = match raw {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::internal(format_args!("upload session state: {e}")))?,
            None => SessionState::default(),
        };
        Ok((state, version))
    }

    async fn save_session(&self, key: &str, version: i64, state: &SessionState) -> Result<bool> {
        let raw = serde_json::to_vec(state).map_err(Error::internal)?;
        self.sessions.save(key, version, &raw).await
    }

    /// The session's writer lock, waiting a while for another request of
    /// the same session to end (a retried final `PUT` racing the first, a
    /// `PATCH` racing the `PUT`): then this one sees what that one did, as
    /// on local disk. Still held after [`LOCK_WAIT`]: 416.
    async fn lock_session(&self, key: &str) -> Result<crate::blobstore::SessionLock> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if let Some(l) = self.sessions.try_lock(key).await? {
                return Ok(l);
            }
            if tokio::time::Instant::now() + pause > deadline {
                let size = self.load_session(key).await?.0.size;
                return Err(range_conflict(
                    size,
                    "another request is writing to this upload right now",
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(200));
        }
    }

    pub(super) async fn append(
        &self,
        key: &str,
        body: ByteStream,
        limits: AppendLimits,
    ) -> Result<u64> {
        let lock = self.lock_session(key).await?;
        let (state, version) = self.load_session(key).await?;
        if state.done.is_some() {
            // Ended by a final request: as good as gone (as on local disk).
            return Err(Error::upload_unknown(session_id(key)));
        }
        let mut w = Writer::resume(self, key, state, &limits, lock).await?;
        if let Err(e) = w.pump(body, &limits).await {
            w.abandon().await;
            return Err(e);
        }
        let old_tail = w.state.tail.clone();
        let parked = w.park(version + 1).await;
        let state = match parked {
            Ok(s) => s,
            Err(e) => {
                w.abandon().await;
                return Err(e);
            }
        };
        if !self.save_session(key, version, &state).await? {
            // Cannot happen under the lock unless the session was ended
            // (cancelled, purged) meanwhile.
            if let Some(t) = &state.tail {
                self.s3.delete(&self.tail_path(key, t.n)).await.ok();
            }
            w.abandon().await;
            return Err(Error::upload_unknown(session_id(key)));
        }
        w.settled();
        if let Some(t) = old_tail {
            self.s3.delete(&self.tail_path(key, t.n)).await.ok();
        }
        Ok(state.size)
    }

    pub(super) async fn finish(
        &self,
        key: &str,
        last: Option<(ByteStream, AppendLimits)>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)> {
        let lock = self.lock_session(key).await?;
        let (state, version) = self.load_session(key).await?;
        if let Some(done) = &state.done {
            if done.digest == expected.to_string() {
                let committed = Committed {
                    size: done.size,
                    location: done.location.clone(),
                };
                return Ok((committed, fence().await?));
            }
            return Err(Error::upload_unknown(session_id(key)));
        }
        let fresh = state.size == 0 && state.multipart.is_none();
        if let Some((body, limits)) = last {
            let small = limits
                .expected_len
                .is_some_and(|n| n <= self.part_size as u64);
            if fresh && small && limits.expected_start.unwrap_or(0) == 0 {
                return self.put_whole(body, &limits, expected, fence).await;
            }
            let mut w = Writer::resume(self, key, state, &limits, lock).await?;
            if let Err(e) = w.pump(body, &limits).await {
                w.abandon().await;
                return Err(e);
            }
            return self.assemble(key, version, w, expected, fence).await;
        }
        if state.multipart.is_none() && expected.algorithm() == Algorithm::Sha256 {
            // Everything is in the tail (or nothing came): verify by the
            // saved hash and copy it into place inside S3.
            let actual = state.hasher()?.finish();
            if &actual != expected {
                self.abort(key).await?;
                return Err(digest_mismatch(expected, &actual));
            }
            let fenced = fence().await?;
            let to = self.path(&digest_key(expected));
            match &state.tail {
                // Create if absent: a blob stored under its digest is
                // shared, and only ever written once.
                _ if self.exists(&to).await? => {}
                Some(t) => {
                    let from = self.tail_path(key, t.n);
                    let len = self.s3.head(&from).await.map_err(s3_error)?.size;
                    if len != state.size {
                        return Err(Error::internal(format_args!(
                            "upload {}: tail object has {len} bytes, {} were received",
                            session_id(key),
                            state.size
                        )));
                    }
                    self.s3.copy(&from, &to).await.map_err(s3_error)?
                }
                None => {
                    self.s3
                        .put(&to, PutPayload::default())
                        .await
                        .map_err(s3_error)?;
                }
            }
            let committed = Committed {
                size: state.size,
                location: None,
            };
            self.conclude(key, version, state, &committed, expected)
                .await;
            drop(lock);
            return Ok((committed, fenced));
        }
        let limits = AppendLimits::default();
        let w = Writer::resume(self, key, state, &limits, lock).await?;
        self.assemble(key, version, w, expected, fence).await
    }

    /// Whether an object exists.
    async fn exists(&self, path: &ObjectPath) -> Result<bool> {
        match self.s3.head(path).await {
            Ok(_) => Ok(true),
            Err(e) if super::is_not_found(&e) => Ok(false),
            Err(e) => Err(s3_error(e)),
        }
    }

    /// A blob sent whole in one request, small enough to hold: hashed in
    /// memory and written under its digest in one PUT, unless it is there.
    async fn put_whole(
        &self,
        body: ByteStream,
        limits: &AppendLimits,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)> {
        let data = gather(body, limits).await?;
        let actual = Digest::of(expected.algorithm(), &data);
        if &actual != expected {
            return Err(digest_mismatch(expected, &actual));
        }
        let size = data.len() as u64;
        let fenced = fence().await?;
        let to = self.path(&digest_key(expected));
        if !self.exists(&to).await? {
            self.s3.put(&to, data.into()).await.map_err(s3_error)?;
        }
        let committed = Committed {
            size,
            location: None,
        };
        Ok((committed, fenced))
    }

    /// The last bytes are in: verify, then make the parts one object.
    async fn assemble(
        &self,
        key: &str,
        version: i64,
        mut w: Writer<'_>,
        expected: &Digest,
        fence: Fence,
    ) -> Result<(Committed, SessionLock)> {
        let outcome = async {
            w.flush().await?;
            let actual = match expected.algorithm() {
                Algorithm::Sha256 => Some(w.hasher.clone().finish()),
                _ => None,
            };
            if let Some(actual) = actual.as_ref().filter(|a| *a != expected) {
                return Ok(Err(digest_mismatch(expected, actual)));
            }
            Ok(Ok(actual.is_none()))
        }
        .await;
        let rehash = match outcome {
            Ok(Ok(rehash)) => rehash,
            Ok(Err(mismatch)) => {
                w.abandon().await;
                self.abort(key).await?;
                return Err(mismatch);
            }
            Err(e) => {
                w.abandon().await;
                return Err(e);
            }
        };
        let size = w.state.size;
        let fenced = fence().await?;
        let committed = if w.state.multipart.is_none() {
            // It all fit in one part's buffer: one PUT under the digest,
            // verified before (a digest's own name never holds other bytes).
            let data = std::mem::take(&mut w.buf).freeze();
            if rehash {
                let actual = Digest::of(expected.algorithm(), &data);
                if &actual != expected {
                    self.abort(key).await?;
                    return Err(digest_mismatch(expected, &actual));
                }
            }
            let to = self.path(&digest_key(expected));
            if !self.exists(&to).await? {
                self.s3.put(&to, data.into()).await.map_err(s3_error)?;
            }
            Committed {
                size,
                location: None,
            }
        } else {
            if !w.buf.is_empty() {
                let data = std::mem::take(&mut w.buf).freeze();
                w.send_part(data).await?;
            }
            w.flush().await?;
            let parts = w
                .state
                .parts
                .iter()
                .map(|p| PartId {
                    content_id: p.clone(),
                })
                .collect();
            let id = w.state.multipart.clone().expect("multipart");
            self.s3
                .complete_multipart(&w.object, &id, parts)
                .await
                .map_err(s3_error)?;
            let location = format!("blobs/by-upload/{key}");
            if rehash {
                if let Err(e) = self.verify_object(&w.object, expected).await {
                    // The parts are one object now (gone if it was wrong):
                    // only the tail objects are left to remove.
                    self.delete_tails(key).await;
                    return Err(e);
                }
            }
            Committed {
                size,
                location: Some(location),
            }
        };
        let state = w.state.clone();
        w.settled(); // assembled: nothing to abort
        self.conclude(key, version, state, &committed, expected)
            .await;
        Ok((committed, fenced))
    }

    /// Record the outcome (for a repeated final request), then remove the
    /// tail objects. Best-effort: the blob is already whole.
    async fn conclude(
        &self,
        key: &str,
        version: i64,
        mut state: SessionState,
        committed: &Committed,
        expected: &Digest,
    ) {
        state.done = Some(Done {
            digest: expected.to_string(),
            size: committed.size,
            location: committed.location.clone(),
        });
        state.tail = None;
        match self.save_session(key, version, &state).await {
            Ok(true) => self.delete_tails(key).await,
            // Unrecorded (the database is busy): the tail stays, so a retry
            // of the final request, which finds the session as it was, can
            // do the same again. It goes when the session ends.
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record a finished upload"),
        }
    }

    /// For digests other than SHA-256 (the running hash is SHA-256): read
    /// an assembled multipart object (this upload's own) back and hash it;
    /// on mismatch it goes.
    async fn verify_object(&self, path: &ObjectPath, expected: &Digest) -> Result<()> {
        let mut stream = self.reader.get(path).await.map_err(s3_error)?.into_stream();
        let mut hasher = Hasher::new(expected.algorithm());
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(s3_error)?);
        }
        let actual = hasher.finish();
        if &actual != expected {
            self.s3.delete(path).await.ok();
            return Err(digest_mismatch(expected, &actual));
        }
        Ok(())
    }

    async fn delete_tails(&self, key: &str) {
        if let Ok(tails) = self.list_under(&format!("uploads/{key}/")).await {
            for t in tails {
                self.s3.delete(&t.location).await.ok();
            }
        }
    }

    /// End a session: its multipart upload and tail objects go.
    pub(super) async fn abort(&self, key: &str) -> Result<()> {
        let state = match self.load_session(key).await {
            Ok((s, _)) => Some(s),
            Err(e) if e.code == ErrorCode::BlobUploadUnknown => None,
            Err(e) => return Err(e),
        };
        if let Some(id) = state.as_ref().and_then(|s| s.multipart.clone()) {
            if state.as_ref().is_some_and(|s| s.done.is_none()) {
                match self.s3.abort_multipart(&self.object_of(key), &id).await {
                    Ok(()) => {}
                    Err(e) if super::is_not_found(&e) => {}
                    Err(e) => return Err(s3_error(e)),
                }
            }
        }
        self.delete_tails(key).await;
        Ok(())
    }
}

/// Gather a small body whole, held to `limits`.
async fn gather(mut body: ByteStream, limits: &AppendLimits) -> Result<Bytes> {
    let mut all = BytesMut::with_capacity(limits.expected_len.unwrap_or(0) as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(interrupted)?;
        all.extend_from_slice(&chunk);
        check_received(limits, 0, all.len() as u64)?;
    }
    check_complete(limits, all.len() as u64)?;
    Ok(all.freeze())
}
