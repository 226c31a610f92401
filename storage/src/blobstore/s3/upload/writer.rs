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
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        for h in &self.in_flight {
            h.abort();
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
        })
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
        if let Some(h) = self.in_flight.pop_front() {
            let part = h.await.map_err(Error::internal)?.map_err(s3_error)?;
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

    /// The request failed: stop its uploads, and abort a multipart upload
    /// only it knew of.
    pub(super) async fn abandon(&mut self) {
        for h in self.in_flight.drain(..) {
            h.abort();
        }
        if let Some(id) = self.created.take() {
            self.store.s3.abort_multipart(&self.object, &id).await.ok();
        }
    }
}
