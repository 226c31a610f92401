//! Connections whose blob bytes leave through `sendfile(2)`.
//!
//! hyper writes a response body by handing its `Bytes` to the connection's
//! `poll_write_vectored`. Blob downloads are `Bytes` pointing into mapped
//! windows of the blob file (`storage::blobstore::file_source` finds them),
//! so this connection type sends those from the file with `sendfile`
//! instead of copying them out of the mapping: the page cache goes to the
//! socket with no copy in this process, as nginx serves static files.
//! Everything else (headers, manifests, JSON) is written as usual.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

pub struct SendfileStream(TcpStream);

impl SendfileStream {
    pub fn new(tcp: TcpStream) -> SendfileStream {
        SendfileStream(tcp)
    }
}

/// Bytes sent with `sendfile` since start (read by tests).
static SENT_FROM_FILES: AtomicU64 = AtomicU64::new(0);

impl SendfileStream {
    /// Send `bytes` (which mirror `file` from `offset` on) from the file.
    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            let sent = self.0.try_io(Interest::WRITABLE, || {
                let mut off = offset as libc::off_t;
                // SAFETY: both descriptors are open for the whole call.
                let n =
                    unsafe { libc::sendfile(self.0.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(n) => {
                    SENT_FROM_FILES.fetch_add(n as u64, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(i) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        // A partial write is fine: hyper calls again with what is left.
        if let Some((file, offset)) = storage::blobstore::file_source(&bufs[i]) {
            return self.poll_sendfile(cx, &file, offset, bufs[i].len());
        }
        let plain = bufs[i..]
            .iter()
            .take_while(|b| storage::blobstore::file_source(b).is_none())
            .count();
        Pin::new(&mut self.0).poll_write_vectored(cx, &bufs[i..i + plain])
    }

    fn is_write_vectored(&self) -> bool {
        // hyper then queues body chunks as they are instead of copying them
        // into its own buffer, so the mapped windows reach us intact.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use storage::blobstore::{AppendLimits, BlobRef, BlobStore, LocalBlobStore};
    use storage::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Blob bytes written through a `SendfileStream` arrive whole, in
    /// order, mixed with ordinary writes, and the mapped ones went through
    /// `sendfile`.
    #[tokio::test]
    async fn mapped_blob_bytes_go_through_sendfile() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        let digest = Digest::sha256_of(&data);
        store.upload_create("s1").await.unwrap();
        let body = futures::stream::iter(vec![Ok(bytes::Bytes::from(data.clone()))]).boxed();
        store
            .upload_append("s1", body, AppendLimits::default())
            .await
            .unwrap();
        store.upload_commit("s1", &digest).await.unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = SendfileStream(tcp);
        let before = SENT_FROM_FILES.load(Ordering::Relaxed);
        // A header, the whole blob, a separator, then an unaligned range.
        let range = 1000..4_500_000u64;
        conn.write_all(b"head\n").await.unwrap();
        let mut whole = store.get(BlobRef::of(&digest), None).await.unwrap();
        while let Some(chunk) = whole.next().await {
            conn.write_all(&chunk.unwrap()).await.unwrap();
        }
        conn.write_all(b"--").await.unwrap();
        let mut part = store
            .get(BlobRef::of(&digest), Some(range.clone()))
            .await
            .unwrap();
        while let Some(chunk) = part.next().await {
            conn.write_all(&chunk.unwrap()).await.unwrap();
        }
        conn.shutdown().await.unwrap();
        drop(conn);
        let got = reader.await.unwrap();
        let want = [
            &b"head\n"[..],
            &data,
            b"--",
            &data[range.start as usize..range.end as usize],
        ]
        .concat();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
        let via_sendfile = SENT_FROM_FILES.load(Ordering::Relaxed) - before;
        // Everything from the mappings (all but the small reads at the
        // ends of the range) went through sendfile.
        assert!(
            via_sendfile >= 8_000_000,
            "only {via_sendfile} bytes went through sendfile"
        );
    }
}
