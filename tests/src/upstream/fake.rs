//! A tiny HTTP/1.1 upstream of the tests' own, on loopback: each request is
//! answered by the test's handler, which may lie (a `Content-Length` other
//! than the bytes sent, a body that never ends, bytes held until the test
//! opens a gate). Raw sockets, so nothing corrects the lies; every request
//! is logged as received (its target unnormalised), with the bytes of body
//! written and whether the peer hung up.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target exactly as sent.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One logged exchange; its counters move while the answer is written.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: Request,
    /// Body bytes written so far.
    pub sent: Arc<AtomicU64>,
    /// A write failed: the peer closed or reset the connection.
    pub peer_gone: Arc<AtomicBool>,
    /// The answer is over (written whole, or cut by the peer).
    pub over: Arc<AtomicBool>,
}

/// Held until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Wait until opened (a minute at most: a test that forgets to open
    /// must not hang the suite).
    fn wait(&self) {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut open = lock.lock().unwrap();
        while !*open && Instant::now() < deadline {
            open = cv.wait_timeout(open, Duration::from_secs(1)).unwrap().0;
        }
    }
}

/// A piece of a body.
pub enum Part {
    Bytes(Vec<u8>),
    /// Nothing more is written until the gate opens.
    Wait(Gate),
}

/// How to answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` to declare; `None`: chunked.
    pub declared: Option<u64>,
    pub parts: Vec<Part>,
    /// After the parts, write zeros until the peer hangs up (or, so that
    /// a registry that never stops reading cannot fill the disk, until
    /// [`FOREVER_CAP`] bytes have gone).
    pub forever: bool,
}

impl Reply {
    /// `status` with a JSON body, honestly framed.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            declared: Some(body.len() as u64),
            parts: vec![Part::Bytes(body.as_bytes().to_vec())],
            forever: false,
        }
    }

    /// 200 with `bytes`, honestly framed.
    pub fn bytes(bytes: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            declared: Some(bytes.len() as u64),
            parts: vec![Part::Bytes(bytes)],
            forever: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Where a body "without end" ends after all.
pub const FOREVER_CAP: u64 = 256 << 20;

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The server; stopped on drop.
pub struct FakeUpstream {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl FakeUpstream {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (log, handler) = (log2.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &log, &*handler));
            }
        });
        FakeUpstream { port, log, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Requests whose target starts with `prefix`.
    pub fn seen_at(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.request.target.starts_with(prefix))
            .collect()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection, one request (every answer says `Connection: close`).
fn serve(conn: TcpStream, log: &Mutex<Vec<Seen>>, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone socket"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default().to_owned(),
        words.next().unwrap_or_default().to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let request = Request {
        method,
        target,
        headers,
    };
    let seen = Seen {
        request: request.clone(),
        sent: Arc::default(),
        peer_gone: Arc::default(),
        over: Arc::default(),
    };
    log.lock().unwrap().push(seen.clone());
    let reply = handler(&request);
    let mut conn = conn;
    if write_reply(&mut conn, &request, reply, &seen).is_err() {
        seen.peer_gone.store(true, Ordering::SeqCst);
    }
    seen.over.store(true, Ordering::SeqCst);
}

fn write_reply(
    conn: &mut TcpStream,
    request: &Request,
    reply: Reply,
    seen: &Seen,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = reply.declared.is_none();
    match reply.declared {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        return Ok(());
    }
    let send = |conn: &mut TcpStream, bytes: &[u8]| -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if chunked {
            conn.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
            conn.write_all(bytes)?;
            conn.write_all(b"\r\n")?;
        } else {
            conn.write_all(bytes)?;
        }
        conn.flush()?;
        seen.sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    };
    for part in reply.parts {
        match part {
            Part::Bytes(b) => {
                for piece in b.chunks(64 << 10) {
                    send(conn, piece)?;
                }
            }
            Part::Wait(gate) => gate.wait(),
        }
    }
    if reply.forever {
        let zeros = vec![0u8; 64 << 10];
        while seen.sent.load(Ordering::SeqCst) < FOREVER_CAP {
            send(conn, &zeros)?;
        }
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")?;
    }
    conn.flush()
}
