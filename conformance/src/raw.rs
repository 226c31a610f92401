//! A request sent the way RFC 9112 §9.5 asks of a client sending a body: it
//! watches the connection while it writes, and stops writing once the
//! server has answered. A registry may refuse a large body from its headers
//! alone (a 413 for an oversized manifest) and close the connection; reqwest
//! then fails with a broken pipe and never shows the answer, while Docker's
//! and containerd's HTTP clients (Go's) read it. Plain `http://` only.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::Url;

use crate::exchange::Exchange;
use crate::report::Failure;

const CHUNK: usize = 64 * 1024;

/// Sends `method url` with `headers` and `body`, watching for an early
/// answer; reads the response to its end (the request asks to close).
pub fn send_watching(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Exchange, Failure> {
    let u = Url::parse(url).map_err(|e| Failure::new(format!("a URL, got {url:?} ({e})")))?;
    if u.scheme() != "http" {
        return Err(Failure::new(format!(
            "an http:// URL for a raw request, got {url}"
        )));
    }
    let host = u.host_str().unwrap_or("localhost");
    let port = u.port_or_known_default().unwrap_or(80);
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    let io = |e: std::io::Error| Failure::new(format!("a response to {method} {url} ({e})"));
    let mut s = TcpStream::connect((host, port)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(io)?;
    for chunk in body.chunks(CHUNK) {
        if answered(&s) {
            break;
        }
        // A write error means the server stopped reading: its answer, if
        // any, is waiting to be read.
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let deadline = Instant::now() + timeout;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline || complete(&raw) {
                    break;
                }
            }
            // A reset after the answer arrived still leaves the answer.
            Err(_) => break,
        }
    }
    parse(method, url, headers, body.len(), &raw).ok_or_else(|| {
        Failure::new(format!(
            "an HTTP response to {method} {url}, got {} bytes",
            raw.len()
        ))
    })
}

/// Whether the server has already sent something (or closed).
fn answered(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut one = [0u8; 1];
    let got = !matches!(s.peek(&mut one), Err(e) if e.kind() == ErrorKind::WouldBlock);
    let _ = s.set_nonblocking(false);
    got
}

/// Head and a body as long as its Content-Length have arrived.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    len.is_some_and(|n| raw.len() >= end + 4 + n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse(
    method: &str,
    url: &str,
    req_headers: &[(String, String)],
    req_len: usize,
    raw: &[u8],
) -> Option<Exchange> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Some(Exchange {
        method: method.to_owned(),
        url: url.to_owned(),
        req_headers: req_headers.to_vec(),
        req_body_len: req_len,
        final_url: None,
        status,
        headers,
        body,
        body_error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_early_answer() {
        let raw = b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n{}\r\nextra";
        assert!(complete(raw));
        let ex = parse("PUT", "http://h/v2/a/manifests/x", &[], 10, raw).unwrap();
        assert_eq!(ex.status, 413);
        assert_eq!(ex.header("content-type"), Some("application/json"));
        assert_eq!(ex.body, b"{}\r\n");
        assert!(!complete(b"HTTP/1.1 413 x\r\nContent-Length: 9\r\n\r\nabc"));
        assert!(parse("PUT", "u", &[], 0, b"garbage").is_none());
    }
}
