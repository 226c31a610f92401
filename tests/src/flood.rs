//! Many requests at once, the way an attacker sends them: over HTTP/1.1 on
//! as many connections (all opened first, then every request written at
//! once), or over HTTP/2 as streams of one connection (h2c, prior
//! knowledge). With the registry's process id, [`MemoryWatch`] samples its
//! resident memory meanwhile, and kills it if it passes a ceiling (a test
//! proving that memory is unbounded must not take the machine with it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};

/// How a flood is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One HTTP/1.1 connection per request.
    Http1,
    /// One HTTP/2 connection, one stream per request.
    Http2,
}

/// One answer: its status (0: none, the connection failed) and
/// `Retry-After`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

const NO_ANSWER: Answer = Answer {
    status: 0,
    retry_after: None,
};

/// `GET path` with `Authorization: authorization[i]` for each `i`, all at
/// once, to `127.0.0.1:port` from `source`.
pub fn flood(
    port: u16,
    transport: Transport,
    source: Ipv4Addr,
    path: &str,
    authorizations: &[String],
) -> Vec<Answer> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let requests: Vec<Request<Empty<Bytes>>> = authorizations
        .iter()
        .map(|a| {
            Request::get(path)
                .header("host", format!("127.0.0.1:{port}"))
                .header("authorization", a)
                .body(Empty::new())
                .expect("request")
        })
        .collect();
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    rt.block_on(async move {
        match transport {
            Transport::Http1 => http1(to, source, requests).await,
            Transport::Http2 => http2(to, source, requests).await,
        }
    })
}

async fn connect(to: SocketAddr, source: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .expect("bind the source address");
    socket.connect(to).await.expect("connect to the registry")
}

fn answer<B>(r: hyper::Response<B>) -> Answer {
    Answer {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

async fn http1(
    to: SocketAddr,
    source: Ipv4Addr,
    requests: Vec<Request<Empty<Bytes>>>,
) -> Vec<Answer> {
    // Every connection first, so that the requests leave together.
    let mut senders = Vec::new();
    for _ in 0..requests.len() {
        let io = TokioIo::new(connect(to, source).await);
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let tasks: Vec<_> = senders
        .into_iter()
        .zip(requests)
        .map(|(mut s, req)| {
            tokio::spawn(async move {
                let Ok(r) = s.send_request(req).await else {
                    return NO_ANSWER;
                };
                let (parts, body) = r.into_parts();
                let _ = body.collect().await;
                answer(hyper::Response::from_parts(parts, ()))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

async fn http2(
    to: SocketAddr,
    source: Ipv4Addr,
    requests: Vec<Request<Empty<Bytes>>>,
) -> Vec<Answer> {
    let io = TokioIo::new(connect(to, source).await);
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("HTTP/2 handshake (h2c prior knowledge)");
    tokio::spawn(conn);
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|mut req| {
            let mut s = sender.clone();
            // HTTP/2 carries the authority in the URI, not in Host.
            let authority = req.headers_mut().remove("host").expect("host");
            *req.uri_mut() = format!("http://{}{}", authority.to_str().unwrap(), req.uri())
                .parse()
                .expect("absolute URI");
            tokio::spawn(async move {
                if s.ready().await.is_err() {
                    return NO_ANSWER;
                }
                let Ok(r) = s.send_request(req).await else {
                    return NO_ANSWER;
                };
                let (parts, body) = r.into_parts();
                let _ = body.collect().await;
                answer(hyper::Response::from_parts(parts, ()))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

/// One `GET path` over HTTP/2 (h2c, prior knowledge) to `127.0.0.1:port`:
/// the status and the headers.
pub fn get_http2(port: u16, path: &str) -> (u16, hyper::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let io = TokioIo::new(connect(to, Ipv4Addr::LOCALHOST).await);
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("HTTP/2 handshake (h2c prior knowledge)");
        tokio::spawn(conn);
        let req = Request::get(format!("http://127.0.0.1:{port}{path}"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let r = sender.send_request(req).await.expect("HTTP/2 request");
        (r.status().as_u16(), r.headers().clone())
    })
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Samples a process's resident memory every few milliseconds until
/// dropped; past `kill_above_kib` it kills the process (SIGKILL).
pub struct MemoryWatch {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemoryWatch {
    pub fn start(pid: u32, kill_above_kib: u64) -> MemoryWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let (s, p, k) = (stop.clone(), peak_kib.clone(), killed.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return;
                };
                let rss = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                p.fetch_max(rss, Ordering::Relaxed);
                if rss > kill_above_kib {
                    // SAFETY: a plain system call on our own child.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    k.store(true, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        MemoryWatch {
            stop,
            peak_kib,
            killed,
            thread: Some(thread),
        }
    }

    /// Stop sampling: the largest resident size seen (KiB), and whether
    /// the process was killed for passing the ceiling.
    pub fn finish(mut self) -> (u64, bool) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.peak_kib.load(Ordering::Relaxed),
            self.killed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The value of an unlabelled counter in a Prometheus text page (0 when
/// it was never recorded).
pub fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse::<f64>().expect("a number") as u64)
        .unwrap_or(0)
}

/// Waits (bounded) until `f` is true.
pub fn poll(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
