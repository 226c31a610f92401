//! One request's writes to an S3 upload session: parts cut from the body,
//! at most [`PARTS_IN_FLIGHT`] uploading, the tail kept for the next request.

use super::*;

/// One request's writes to a session.
pub(super) struct Writer<'a> {
    store: &'a S3BlobStore,
    key: &'a str,
    pub(super) object: ObjectPath,
    pub(super) state: SessionState,
    pub(super) hasher: ResumableSha256,
    /// Bytes after the sent parts (starting with the old tail).
    pub(super) buf: BytesMut,
    in_flight: VecDeque<JoinHandle<object_store::Result<PartId>>>,
    /// A multipart upload this request created (aborted if it fails, as
    /// no saved state names it).
    pub(super) created: Option<String>,
    start: u64,
    /// The session's writer lock, held as long as anything this request
    /// started may still write (see `Drop`).
    lock: Option<SessionLock>,
}

/// A request's future can be dropped at any `.await` (the client went
/// away). Its part uploads run as tasks of their own and may still be
/// sending; the next request of the session writes the same part numbers,
/// so these must have ended before it starts, or one of them could land
/// after (and in place of) its part. So the lock goes to a task that lets
/// them end, aborts a multipart upload only this request knew of (none is
/// left billed), and only then unlocks.
impl Drop for Writer<'_> {
    fn drop(&mut self) {
        let in_flight: Vec<_> = self.in_flight.drain(..).collect();
        let created = self.created.take();
        let lock = self.lock.take();
        if in_flight.is_empty() && created.is_none() {
            return;
        }
        let s3 = self.store.s3.clone();
        let sessions = self.store.sessions.clone();
        let object = self.object.clone();
        let key = self.key.to_owned();
        let cleanup = async move {
            for h in in_flight {
                let _ = h.await;
            }
            if let Some(id) = created {
                // Dropped while saving: the state may name it by now.
                let saved = match sessions.load(&key).await {
                    Ok(Some((Some(raw), _))) => serde_json::from_slice::<SessionState>(&raw)
                        .map_or(true, |s| s.multipart.as_deref() == Some(&id)),
                    Ok(_) => false,
                    // Unsure: keep it (the bucket's abort-incomplete rule
                    // is the backstop), rather than break a live session.
                    Err(_) => true,
                };
                if !saved {
                    s3.abort_multipart(&object, &id).await.ok();
                }
            }
            drop(lock);
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(cleanup);
        }
    }
}

impl<'a> Writer<'a> {
    /// Continue from `state`: check where the chunk starts and fetch the
    /// tail bytes back.
    pub(super) async fn resume(
        store: &'a S3BlobStore,
        key: &'a str,
        state: SessionState,
        limits: &AppendLimits,
        lock: SessionLock,
    ) -> Result<Writer<'a>> {
        if let Some(expected) = limits.expected_start {
            if expected != state.size {
                return Err(range_conflict(
                    state.size,
                    &format!(
                        "chunk starts at {expected}, upload has {} bytes",
                        state.size
                    ),
                ));
            }
        }
        let mut buf = BytesMut::with_capacity(store.part_size);
        if let Some(t) = &state.tail {
            let bytes = store
                .s3
                .get(&store.tail_path(key, t.n))
                .await
                .map_err(s3_error)?
                .bytes()
                .await
                .map_err(s3_error)?;
            if bytes.len() as u64 != t.len {
                return Err(Error::internal(format_args!(
                    "upload {}: tail object has {} bytes, {} recorded",
                    session_id(key),
                    bytes.len(),
                    t.len
                )));
            }
            buf.extend_from_slice(&bytes);
        }
        Ok(Writer {
            store,
            key,
            object: store.object_of(key),
            hasher: state.hasher()?,
            start: state.size,
            state,
            buf,
            in_flight: VecDeque::new(),
            created: None,
            lock: Some(lock),
        })
    }

    /// The saved state names this request's multipart upload now (or it
    /// was assembled): nothing is left to abort.
    pub(super) fn settled(&mut self) {
        self.created = None;
    }

    /// Take in a request body: hash it, cut it into parts, send them.
    pub(super) async fn pump(&mut self, mut body: ByteStream, limits: &AppendLimits) -> Result<()> {
        let part = self.store.part_size;
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(interrupted)?;
            received += chunk.len() as u64;
            check_received(limits, self.start, received)?;
            self.hasher.update(&chunk);
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let n = (part - self.buf.len()).min(rest.len());
                self.buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if self.buf.len() == part {
                    let full = std::mem::replace(&mut self.buf, BytesMut::with_capacity(part));
                    self.send_part(full.freeze()).await?;
                }
            }
        }
        check_complete(limits, received)?;
        self.state.size = self.start + received;
        Ok(())
    }

    /// Send the next part (waiting for a slot among those in flight).
    pub(super) async fn send_part(&mut self, data: Bytes) -> Result<()> {
        let id = match &self.state.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .s3
                    .create_multipart(&self.object)
                    .await
                    .map_err(s3_error)?;
                self.state.multipart = Some(id.clone());
                self.created = Some(id.clone());
                id
            }
        };
        if self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.collect_one().await?;
        }
        let idx = self.state.parts.len() + self.in_flight.len();
        let s3 = self.store.s3.clone();
        let path = self.object.clone();
        self.in_flight.push_back(tokio::spawn(async move {
            s3.put_part(&path, &id, idx, data.into()).await
        }));
        Ok(())
    }

    async fn collect_one(&mut self) -> Result<()> {
        // Popped only once it has ended: a drop while waiting leaves it to
        // `Drop`, which waits for it too.
        if let Some(h) = self.in_flight.front_mut() {
            let done = h.await;
            self.in_flight.pop_front();
            let part = done.map_err(Error::internal)?.map_err(s3_error)?;
            self.state.parts.push(part.content_id);
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        Ok(())
    }

    /// End of a request that does not finish the upload: wait for the
    /// parts, put the remaining bytes in tail object `n`, and return the
    /// state to save.
    pub(super) async fn park(&mut self, n: i64) -> Result<SessionState> {
        self.flush().await?;
        let mut state = self.state.clone();
        state.hash = hex::encode(self.hasher.to_bytes());
        state.tail = None;
        if !self.buf.is_empty() {
            let len = self.buf.len() as u64;
            let data = std::mem::take(&mut self.buf).freeze();
            self.store
                .s3
                .put(&self.store.tail_path(self.key, n), data.into())
                .await
                .map_err(s3_error)?;
            state.tail = Some(Tail { n, len });
        }
        Ok(state)
    }

    /// The request failed: let its part uploads end (none may land after
    /// it), and abort a multipart upload only it knew of.
    pub(super) async fn abandon(&mut self) {
        while let Some(h) = self.in_flight.front_mut() {
            let _ = h.await;
            self.in_flight.pop_front();
        }
        if let Some(id) = self.created.clone() {
            self.store.s3.abort_multipart(&self.object, &id).await.ok();
            self.created = None;
        }
    }
}
