//! Lingering reads: a request answered before its body was read whole (a
//! manifest over the limit refused by its `Content-Length`, a `PATCH` to an
//! unknown upload, ...) has the rest of its body read and discarded after
//! the answer, within bounds, as nginx does (`lingering_close`). Closing a
//! socket with unread bytes in it sends a TCP reset, which can destroy the
//! answer before the client reads it; a proxy that is still sending the
//! body (nginx with `proxy_request_buffering off`, an ALB) then reports 502
//! instead of the registry's 413, and may mark the node as failed.

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// At most this much of an unread body is read after the answer.
const LINGER_BYTES: u64 = 16 << 20;
/// For at most this long.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// A request body that, dropped before its end, is drained in the
/// background.
pub struct Lingering {
    inner: Option<Body>,
    ended: bool,
}

impl Lingering {
    pub fn wrap(body: Body) -> Body {
        Body::new(Lingering {
            inner: Some(body),
            ended: false,
        })
    }
}

impl HttpBody for Lingering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = &polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if self.ended || body.is_end_stream() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(drain(body));
        }
    }
}

/// Read and discard `body` until its end or the bounds; then drop it (the
/// connection closes if bytes remain).
async fn drain(body: Body) {
    let mut body = body;
    let mut read = 0u64;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > LINGER_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_body_dropped_early_is_drained_within_bounds() {
        // A body of 4 chunks whose reading is observed.
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let chunks = futures::stream::iter(0..4).map(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1024]))
        });
        let (tx, done) = tokio::sync::oneshot::channel::<()>();
        let tail = futures::stream::once(async move {
            let _ = tx.send(());
            Ok::<_, std::io::Error>(Bytes::new())
        });
        let body = Lingering::wrap(Body::from_stream(chunks.chain(tail)));
        drop(body);
        tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .expect("drained to the end")
            .unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_is_not_drained_again() {
        let mut body = Lingering::wrap(Body::from("abc"));
        let mut n = 0;
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            n += f.unwrap().into_data().map_or(0, |d| d.len());
        }
        assert_eq!(n, 3);
        assert!(body.is_end_stream());
    }
}
