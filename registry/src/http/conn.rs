//! Accepting and serving connections: the connection cap, per-connection
//! timeouts ([`crate::http::watch`]), HTTP/1.1 and h2c, and a graceful drain.

use crate::http::forwarded::TrustedProxies;
use crate::http::sendfile::SendfileStream;
use crate::http::watch::{ConnWatch, Guard, TimedIo, Timeouts};
use crate::observe::access::{self, AccessRecord};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::HeaderName;
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What bounds the connections of one listener, and whom they come from.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub timeouts: Timeouts,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Whose forwarding headers name the client (see [`crate::http::forwarded`]).
    pub proxies: Arc<TrustedProxies>,
}

/// How a connection's bytes are carried.
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls(crate::http::tls::Tls),
}

/// Serve `router` on `listener` until `shutdown` resolves, then stop
/// accepting and give open connections `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    transport: Transport,
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
        let service = ConnService {
            router: router.clone(),
            watch: watch.clone(),
            addr,
            proxies: limits.proxies.clone(),
        };
        match &transport {
            Transport::Plain => {
                let io = TokioIo::new(TimedIo::new(SendfileStream::new(tcp), watch));
                let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = conn.await {
                        tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                    }
                });
            }
            Transport::Tls(tls) => {
                let acceptor = tls.acceptor();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let handshake_timeout = limits.timeouts.header;
                tokio::spawn(async move {
                    let _permit = permit;
                    // The handshake is part of the head: a client that stalls
                    // in it is cut off like one that stalls in its headers.
                    let tls =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(client = %addr, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(client = %addr, "TLS handshake timed out");
                                return;
                            }
                        };
                    let io = TokioIo::new(TimedIo::new(tls, watch));
                    let conn = watcher.watch(builder.serve_connection(io, service).into_owned());
                    if let Err(e) = conn.await {
                        tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                    }
                });
            }
        }
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
/// address, the connection's watch learns when each request, its body and
/// its response begin and end, and each request gets its access-log line
/// and its request id.
#[derive(Clone)]
struct ConnService {
    router: Router,
    watch: Arc<ConnWatch>,
    addr: SocketAddr,
    proxies: Arc<TrustedProxies>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<ResponseBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send + 'static>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        let (body_guard, response_guard) = self.watch.request(!req.body().is_end_stream());
        let request_id = access::request_id(req.headers());
        // Before anything reads them: the forwarding headers say who the
        // client is only if a trusted proxy wrote them.
        let origin = self.proxies.apply(self.addr, req.headers_mut());
        crate::http::forwarded::ensure_host(&mut req);
        let record = AccessRecord::new(
            origin.peer,
            origin.via_proxy.then_some(origin.client),
            req.method(),
            req.uri(),
            req.headers(),
            request_id.clone(),
        );
        let received = record.bytes_in.clone();
        let mut req = req.map(|incoming| {
            Body::new(RequestBody {
                inner: incoming,
                guard: body_guard,
                received,
            })
        });
        req.extensions_mut()
            .insert(ConnectInfo(origin.client_socket()));
        let router = self.router.clone();
        Box::pin(async move {
            // hyper drops this future when the client goes away before the
            // response (a reset stream, a closed connection): the line is
            // written then too.
            let mut unanswered = Unanswered(Some(record));
            let mut resp = router.oneshot(req).await?;
            let mut record = unanswered.0.take().expect("taken once");
            resp.headers_mut()
                .insert(HeaderName::from_static(access::REQUEST_ID), request_id);
            record.status = resp.status().as_u16();
            record.error = resp.extensions().get::<access::OciCode>().map(|c| c.0);
            record.user = resp.extensions().get::<access::User>().map(|u| u.0.clone());
            if let Some(r) = resp.extensions().get::<access::RouteOverride>() {
                record.route = r.route;
                record.repository = r.repository.clone();
            }
            let expected = resp
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            Ok(resp.map(|body| ResponseBody {
                inner: body,
                expected,
                done: Some((response_guard, record)),
            }))
        })
    }
}

/// The access record of a request whose handler is still running; if the
/// handler is dropped (the client left), the line says so: status 499
/// (nginx's "client closed request"), `complete: false`.
struct Unanswered(Option<AccessRecord>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut record) = self.0.take() {
            record.status = CLIENT_CLOSED;
            record.emit(false);
        }
    }
}

/// The status logged for a request whose client left before its answer.
const CLIENT_CLOSED: u16 = 499;

/// A request body that counts its bytes and tells the connection's watch
/// when it is over (at its end, on an error, or when dropped unread).
struct RequestBody {
    inner: Incoming,
    guard: Option<Guard>,
    received: Arc<AtomicU64>,
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.guard = None,
            Poll::Pending => {}
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

/// A response body that counts its bytes and, when it is over (sent whole,
/// failed, or dropped because the client went away), writes the request's
/// access-log line and tells the connection's watch.
pub struct ResponseBody {
    inner: Body,
    /// `Content-Length`: hyper stops reading a body once it has that many
    /// bytes, without waiting for its end.
    expected: Option<u64>,
    done: Option<(Guard, AccessRecord)>,
}

impl ResponseBody {
    fn finish(&mut self, complete: bool) {
        if let Some((guard, record)) = self.done.take() {
            record.emit(complete);
            drop(guard);
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper drops a body of known length once it has all of it.
        let sent = self.done.as_ref().map(|(_, r)| r.bytes_out);
        let complete = self.inner.is_end_stream() || (sent.is_some() && sent == self.expected);
        self.finish(complete);
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((_, record))) = (frame.data_ref(), self.done.as_mut()) {
                    record.bytes_out += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
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
