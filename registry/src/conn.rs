//! Accepting and serving connections: the connection cap, per-connection
//! timeouts ([`crate::watch`]), HTTP/1.1 and h2c, and a graceful drain.

use crate::sendfile::SendfileStream;
use crate::watch::{ConnWatch, Guard, TimedIo, Timeouts};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What bounds the connections of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub timeouts: Timeouts,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

/// Serve `router` on `listener` until `shutdown` resolves, then stop
/// accepting and give open connections `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Our own watch times request heads and idle connections (hyper's timer
    // would count idle keep-alive time as header time).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(16 << 10);

    builder.http2().timer(TokioTimer::new());
    let mut full_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Logged once per minute at most while it lasts.
                if full_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until one closes \
                         (raise max_connections if clients are legitimate)"
                    );
                    full_logged = Some(Instant::now());
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let watch = ConnWatch::new(limits.timeouts);
        let io = TokioIo::new(TimedIo::new(SendfileStream::new(tcp), watch.clone()));
        let service = ConnService {
            router: router.clone(),
            watch,
            addr,
        };
        let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!(client = %addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        open = graceful.count(),
        "shutdown requested: draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("grace period over: exiting with requests still open");
        }
    }
}

/// Errors of `accept` that concern one connection are skipped; others (out
/// of file descriptors) are logged and retried after a pause, so the loop
/// does not spin while the condition lasts.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The router as one connection's hyper service: requests carry the client
/// address, and the connection's watch learns when each request, its body
/// and its response begin and end.
#[derive(Clone)]
struct ConnService {
    router: Router,
    watch: Arc<ConnWatch>,
    addr: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<WatchedBody<Body>>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send + 'static>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let (body_guard, response_guard) = self.watch.request(!req.body().is_end_stream());
        let mut req = req.map(|incoming| {
            Body::new(WatchedBody {
                inner: incoming,
                guard: body_guard,
            })
        });
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let router = self.router.clone();
        Box::pin(async move {
            let resp = router.oneshot(req).await?;
            Ok(resp.map(|body| WatchedBody {
                inner: body,
                guard: Some(response_guard),
            }))
        })
    }
}

/// A body that tells the connection's watch when it is over: its guard is
/// dropped at the end of the stream, on an error, or with the body.
pub struct WatchedBody<B> {
    inner: B,
    guard: Option<Guard>,
}

impl<B> HttpBody for WatchedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
