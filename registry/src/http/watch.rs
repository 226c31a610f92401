//! Connection timeouts: what separates a slow client from a stalled one.
//!
//! hyper's own header timer starts as soon as it waits for the next request,
//! so it cannot tell an idle keep-alive connection from a slow request head.
//! Here every connection carries a [`ConnWatch`] that the service updates
//! (a request started, its body ended, its response ended) and that the
//! connection's I/O ([`TimedIo`]) consults whenever a read or write has to
//! wait:
//! - no request yet on a new connection: the head must arrive within the
//!   header timeout of the accept;
//! - between requests: the next one must start within the idle timeout, and
//!   once its first byte is in, its head within the header timeout;
//! - while a request body is being received: some bytes every body timeout
//!   (a 1 GiB push at 1 MB/s never waits that long for a byte);
//! - while a response is being sent: the client must accept some bytes
//!   every body timeout.
//!
//! A connection past its deadline gets an I/O error (`TimedOut`), which
//! makes hyper close it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
}

#[derive(Debug)]
struct State {
    /// Requests whose response has not been sent in full.
    active: usize,
    /// Request bodies still being received.
    bodies: usize,
    /// No request has started on this connection yet.
    fresh: bool,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    /// When the first byte of the next request arrived, while idle.
    head_since: Option<Instant>,
    /// When a read last returned bytes.
    last_read: Instant,
    /// The task of a read that is waiting without a deadline: woken when
    /// the connection goes idle, so that the read arms the idle timer
    /// (hyper would not poll it again before the client sends something).
    reader: Option<std::task::Waker>,
}

#[derive(Debug)]
pub struct ConnWatch {
    timeouts: Timeouts,
    state: Mutex<State>,
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Header,
    Idle,
    Body,
}

impl Expiry {
    fn describe(self) -> &'static str {
        match self {
            Expiry::Header => "request head not received within the header timeout",
            Expiry::Idle => "idle keep-alive connection past the idle timeout",
            Expiry::Body => "request body stalled past the body timeout",
        }
    }
}

impl ConnWatch {
    pub fn new(timeouts: Timeouts) -> Arc<ConnWatch> {
        let now = Instant::now();
        Arc::new(ConnWatch {
            timeouts,
            state: Mutex::new(State {
                active: 0,
                bodies: 0,
                fresh: true,
                idle_since: now,
                head_since: None,
                last_read: now,
                reader: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The deadline for the next byte from the client, if one applies;
    /// without one, `waker` is kept to be woken when one starts to apply.
    fn read_deadline(&self, waker: &std::task::Waker) -> Option<(Instant, Expiry)> {
        let mut s = self.lock();
        let t = &self.timeouts;
        if s.active == 0 {
            Some(match s.head_since {
                Some(since) => (since + t.header, Expiry::Header),
                None if s.fresh => (s.idle_since + t.header, Expiry::Header),
                None => (s.idle_since + t.idle, Expiry::Idle),
            })
        } else if s.bodies > 0 {
            Some((s.last_read + t.body, Expiry::Body))
        } else {
            // A response is being prepared or sent: hyper reads only to
            // notice the client going away.
            s.reader = Some(waker.clone());
            None
        }
    }

    fn bytes_read(&self) {
        let mut s = self.lock();
        s.last_read = Instant::now();
        if s.active == 0 && s.head_since.is_none() {
            s.head_since = Some(s.last_read);
        }
    }

    /// A request's head has been parsed. The guards mark the end of its body
    /// (if it has one) and of its response when dropped.
    pub fn request(self: &Arc<Self>, has_body: bool) -> (Option<Guard>, Guard) {
        let mut s = self.lock();
        s.active += 1;
        s.fresh = false;
        s.head_since = None;
        s.last_read = Instant::now();
        if has_body {
            s.bodies += 1;
        }
        (
            has_body.then(|| Guard::Body(self.clone())),
            Guard::Response(self.clone()),
        )
    }
}

/// The end of a request body or of a response on a watched connection,
/// when dropped.
#[derive(Debug)]
pub enum Guard {
    Body(Arc<ConnWatch>),
    Response(Arc<ConnWatch>),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Body(w) => w.lock().bodies -= 1,
            Guard::Response(w) => {
                let mut s = w.lock();
                s.active -= 1;
                if s.active == 0 {
                    s.idle_since = Instant::now();
                    if let Some(reader) = s.reader.take() {
                        reader.wake();
                    }
                }
            }
        }
    }
}

/// A connection's I/O under its [`ConnWatch`]'s deadlines.
pub struct TimedIo<S> {
    inner: S,
    watch: Arc<ConnWatch>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    /// Since when writes have been waiting for the client without progress.
    write_stalled: Option<Instant>,
}

impl<S> TimedIo<S> {
    pub fn new(inner: S, watch: Arc<ConnWatch>) -> TimedIo<S> {
        let far = Instant::now() + Duration::from_secs(86400);
        TimedIo {
            inner,
            watch,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_stalled: None,
        }
    }

    /// Whether `deadline` has passed. The timer is kept armed no later
    /// than the deadline, and re-armed only when it must fire sooner or
    /// has fired before a deadline that moved on: a stream of `Pending`s
    /// whose deadline keeps moving forward (a download waiting for socket
    /// space) costs no timer-wheel work each.
    fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return true;
            }
            timer.as_mut().reset(deadline);
        }
        false
    }

    fn write_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let since = *self.write_stalled.get_or_insert_with(Instant::now);
        let deadline = since + self.watch.timeouts.body;
        if Self::expired(&mut self.write_timer, deadline, cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading the response past the body timeout",
            )));
        }
        Poll::Pending
    }

    fn write_done<T>(
        &mut self,
        r: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.write_pending(cx),
            ready => {
                self.write_stalled = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.watch.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some((deadline, why)) = this.watch.read_deadline(cx.waker()) {
                    if Self::expired(&mut this.read_timer, deadline, cx) {
                        tracing::debug!(reason = why.describe(), "closing connection");
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            why.describe(),
                        )));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_done(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_done(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_done(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Arc<ConnWatch> {
        ConnWatch::new(Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_connection_phase() {
        let w = watch();
        let start = Instant::now();
        // A new connection must send its head within the header timeout.
        assert_eq!(
            w.read_deadline(std::task::Waker::noop()),
            Some((start + Duration::from_secs(10), Expiry::Header))
        );
        let (body, response) = w.request(true);
        tokio::time::advance(Duration::from_secs(5)).await;
        w.bytes_read();
        let t = Instant::now();
        assert_eq!(
            w.read_deadline(std::task::Waker::noop()),
            Some((t + Duration::from_secs(30), Expiry::Body))
        );
        drop(body);
        assert_eq!(
            w.read_deadline(std::task::Waker::noop()),
            None,
            "response phase: no read deadline"
        );
        drop(response);
        let idle = Instant::now();
        assert_eq!(
            w.read_deadline(std::task::Waker::noop()),
            Some((idle + Duration::from_secs(60), Expiry::Idle))
        );
        tokio::time::advance(Duration::from_secs(50)).await;
        w.bytes_read();
        let head = Instant::now();
        assert_eq!(
            w.read_deadline(std::task::Waker::noop()),
            Some((head + Duration::from_secs(10), Expiry::Header)),
            "the first byte of the next request starts the header timer"
        );
        let (body, response) = w.request(false);
        assert!(body.is_none());
        assert_eq!(w.read_deadline(std::task::Waker::noop()), None);
        drop(response);
        assert_eq!(w.lock().active, 0);
        assert_eq!(w.lock().bodies, 0);
    }

    /// A read that waited without a deadline while a response was sent is
    /// woken when the connection goes idle, to arm the idle timer.
    #[tokio::test(start_paused = true)]
    async fn going_idle_wakes_the_waiting_read() {
        let (_client, server) = tokio::io::duplex(64);
        let w = watch();
        let (_, response) = w.request(false);
        let mut io = TimedIo::new(server, w.clone());
        let mut buf = [0u8; 8];
        let mut read = std::pin::pin!(tokio::io::AsyncReadExt::read(&mut io, &mut buf));
        assert!(futures::poll!(read.as_mut()).is_pending());
        drop(response);
        let err = read.await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_times_out() {
        let (client, server) = tokio::io::duplex(64);
        let w = watch();
        let mut io = TimedIo::new(server, w);
        let mut buf = [0u8; 8];
        let read = tokio::io::AsyncReadExt::read(&mut io, &mut buf);
        let err = read.await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }
}
