//! A lean HTTP/1.1 client for load generation: one hyper connection per
//! worker (no pool, no redirects), bodies drained and counted without being
//! kept. hyper knows that a response to HEAD has no body, so HEAD is timed
//! correctly (wrk, for one, waits for a body that never comes).

use super::data::PrngBody;
use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_LENGTH, HOST, LOCATION};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// A registry (or any HTTP server) under test.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

/// Request bodies: none, one buffer, or a PRNG stream.
pub enum ReqBody {
    Empty,
    Full(Option<Bytes>),
    Prng(PrngBody),
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Prng(p) => Pin::new(p).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Prng(p) => p.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Prng(p) => p.size_hint(),
        }
    }
}

impl ReqBody {
    pub fn bytes(b: impl Into<Bytes>) -> ReqBody {
        ReqBody::Full(Some(b.into()))
    }
}

/// A response read to the end: status, headers, and either the body or
/// only its length.
#[derive(Debug)]
pub struct Done {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub len: u64,
    pub body: Bytes,
}

impl Done {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` header as a path (the reference answers absolute URLs).
    pub fn location(&self) -> Result<String> {
        let loc = self
            .header(LOCATION.as_str())
            .ok_or_else(|| anyhow!("{}: no Location header", self.status))?;
        Ok(path_of(loc))
    }

    pub fn expect(self, what: &str, ok: &[u16]) -> Result<Done> {
        if ok.contains(&self.status.as_u16()) {
            Ok(self)
        } else {
            bail!(
                "{what}: status {} ({})",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        }
    }
}

/// `http://host:port/p?q` -> `/p?q`; paths stay as they are.
pub fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None => url.to_string(),
    }
}

/// Append `key=value` to a path that may already have a query.
pub fn with_param(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}

/// One keep-alive connection. Reconnects (before sending) if the server
/// closed it.
pub struct Conn {
    tx: SendRequest<ReqBody>,
    addr: SocketAddr,
    host: HeaderValue,
}

impl Conn {
    pub async fn open(target: &Target) -> Result<Conn> {
        let host = HeaderValue::from_str(&target.addr.to_string())?;
        let tx = Self::connect(target.addr).await?;
        Ok(Conn {
            tx,
            addr: target.addr,
            host,
        })
    }

    async fn connect(addr: SocketAddr) -> Result<SendRequest<ReqBody>> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::Builder::new()
            .max_buf_size(4 << 20)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }

    pub fn request(&self, method: Method, path: &str, body: ReqBody) -> Request<ReqBody> {
        let len = match &body {
            ReqBody::Empty => None,
            b => b.size_hint().exact(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(len) = len {
            req = req.header(CONTENT_LENGTH, len);
        }
        req.body(body).expect("valid request")
    }

    /// Send a request and return the response head (body not read yet).
    pub async fn send(&mut self, req: Request<ReqBody>) -> Result<Response<Incoming>> {
        if self.tx.ready().await.is_err() {
            self.tx = Self::connect(self.addr).await?;
        }
        Ok(self.tx.send_request(req).await?)
    }

    /// Send and read the response, keeping the body only if `keep`.
    pub async fn call(&mut self, req: Request<ReqBody>, keep: bool) -> Result<Done> {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = self.send(req).await.with_context(|| what.clone())?;
        let (parts, mut body) = resp.into_parts();
        // Error bodies are small and make messages useful.
        let keep = keep || parts.status.as_u16() >= 400;
        let mut len = 0u64;
        let mut kept = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.with_context(|| format!("{what}: reading body"))?;
            if let Ok(data) = frame.into_data() {
                len += data.len() as u64;
                if keep {
                    kept.extend_from_slice(&data);
                }
            }
        }
        Ok(Done {
            status: parts.status,
            headers: parts.headers,
            len,
            body: kept.freeze(),
        })
    }

    /// Request without body; keep error bodies (small) for messages.
    pub async fn simple(&mut self, method: Method, path: &str) -> Result<Done> {
        let req = self.request(method, path, ReqBody::Empty);
        self.call(req, false).await
    }

    pub async fn get_kept(&mut self, path: &str) -> Result<Done> {
        let req = self.request(Method::GET, path, ReqBody::Empty);
        self.call(req, true).await
    }
}
