//! A request kept in flight on purpose: an upload whose body is sent in two
//! halves, the second only when the test says, so that a node's shutdown
//! can be shown to finish what was in flight when it stopped listening.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A `PUT` of a blob to an upload session, half its body sent.
pub struct SlowUpload {
    stream: TcpStream,
    rest: Vec<u8>,
    /// The blob's digest.
    pub digest: String,
}

impl SlowUpload {
    /// Open an upload session in `repo` on the registry at `port`, and send
    /// the head and the first half of `data` on a connection of its own.
    pub fn start(port: u16, repo: &str, data: &[u8]) -> SlowUpload {
        let base = format!("http://127.0.0.1:{port}");
        let r = reqwest::blocking::Client::new()
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .expect("start an upload session");
        assert_eq!(r.status().as_u16(), 202, "upload session");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let path = location
            .strip_prefix(&base)
            .unwrap_or(&location)
            .to_string();
        let digest = crate::sha256_digest(data);
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "PUT {path}{sep}digest={digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let half = data.len() / 2;
        stream
            .write_all(&data[..half])
            .expect("send the first half");
        stream.flush().unwrap();
        SlowUpload {
            stream,
            rest: data[half..].to_vec(),
            digest,
        }
    }

    /// Send the rest of the body; the answer's status code.
    pub fn finish(mut self) -> u16 {
        self.stream
            .write_all(&self.rest)
            .expect("send the second half (the connection was closed)");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                other => panic!(
                    "connection ended before an answer ({other:?}): {:?}",
                    String::from_utf8_lossy(&head)
                ),
            }
        }
        let text = String::from_utf8_lossy(&head);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {text:?}"))
    }
}
