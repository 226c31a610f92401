//! Clients that break off mid-request, as real ones do when killed or
//! cancelled: HTTP/1 closing its side (FIN) or resetting the connection
//! (RST), HTTP/2 resetting one stream (RST_STREAM) or dropping its whole
//! connection. And a plain HTTP/2 (h2c, prior knowledge) request, so
//! tests can send good requests over the same protocol.

use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How a client breaks off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cut {
    /// HTTP/1.1: half-close (FIN) after part of the body.
    H1Fin,
    /// HTTP/1.1: reset the connection (RST) after part of the body.
    H1Rst,
    /// HTTP/2: `RST_STREAM(CANCEL)` after part of the body; the
    /// connection stays up.
    H2Reset,
    /// HTTP/2: the connection is reset under the stream (a killed client).
    H2Kill,
}

pub const CUTS: [Cut; 4] = [Cut::H1Fin, Cut::H1Rst, Cut::H2Reset, Cut::H2Kill];

/// Closing a socket with `SO_LINGER` 0 sends RST instead of FIN.
fn linger_zero(fd: &impl AsRawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a properly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

/// Send `method path` declaring a body of `body.len()` bytes (and
/// `headers`), send `body[..at]`, then break off as `how` says. Returns
/// once the break is made (the server may not have noticed yet).
pub fn cut(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    at: usize,
    how: Cut,
) {
    assert!(at < body.len(), "a cut sends less than the whole body");
    match how {
        Cut::H1Fin | Cut::H1Rst => {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
                 Content-Type: application/octet-stream\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            // The server may answer (and close) early, e.g. when it refuses
            // the request from its head: a failed write is part of the game.
            if s.write_all(head.as_bytes()).is_err() || s.write_all(&body[..at]).is_err() {
                return;
            }
            if how == Cut::H1Rst {
                linger_zero(&s);
                return;
            }
            let _ = s.shutdown(Shutdown::Write);
            // Read whatever the server answers until it closes.
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut sink = [0u8; 4096];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
        Cut::H2Reset | Cut::H2Kill => {
            runtime().block_on(h2_cut(port, method, path, headers, body, at, how))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn h2_head(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    len: usize,
) -> http::Request<()> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-length", len.to_string())
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    req.body(()).expect("a request head")
}

/// Send `data` on `send` as flow control allows (so every byte sent has
/// been let in by the server's window).
async fn send_body(
    send: &mut h2::SendStream<Bytes>,
    data: &[u8],
    end: bool,
) -> Result<(), h2::Error> {
    let mut rest = data;
    while !rest.is_empty() {
        send.reserve_capacity(rest.len().min(1 << 20));
        let cap = match futures::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(c) => c?,
            None => return Ok(()),
        };
        let n = cap.min(rest.len());
        if n == 0 {
            continue;
        }
        send.send_data(Bytes::copy_from_slice(&rest[..n]), end && n == rest.len())?;
        rest = &rest[n..];
    }
    if end && data.is_empty() {
        send.send_data(Bytes::new(), true)?;
    }
    Ok(())
}

async fn h2_cut(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    at: usize,
    how: Cut,
) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    if how == Cut::H2Kill {
        linger_zero(&tcp);
    }
    let (client, mut conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let mut ping = conn.ping_pong().expect("a ping-pong handle");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.expect("h2 ready");
    let req = h2_head(port, method, path, headers, body.len());
    let Ok((_response, mut send)) = client.send_request(req, false) else {
        conn.abort();
        return;
    };
    if send_body(&mut send, &body[..at], false).await.is_ok() {
        if how == Cut::H2Reset {
            send.send_reset(h2::Reason::CANCEL);
        }
        // Frames go out in order: the answer to a PING sent now proves the
        // server has read the body bytes (and the reset) before it.
        let _ = ping.ping(h2::Ping::opaque()).await;
    }
    // The connection goes: cleanly after a stream reset (the server sees a
    // FIN), as a killed client's would (RST) otherwise.
    conn.abort();
    let _ = conn.await;
}

/// One HTTP/2 request with a whole body: its status and headers.
pub fn h2_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, http::HeaderMap) {
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.expect("h2 ready");
        let req = h2_head(port, method, path, headers, body.len());
        let (response, mut send) = client.send_request(req, body.is_empty()).expect("send");
        if !body.is_empty() {
            send_body(&mut send, body, true)
                .await
                .expect("send the body");
        }
        let resp = response.await.expect("an HTTP/2 answer");
        let (parts, mut recv) = resp.into_parts();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.expect("the answer's body");
            let _ = recv.flow_control().release_capacity(chunk.len());
        }
        // Done with it: a graceful close would wait for the server's idle
        // timeout.
        conn.abort();
        let _ = conn.await;
        (parts.status.as_u16(), parts.headers)
    })
}
