//! Pull-through cache rules against real upstreams on loopback.
//!
//! - `clients.rs`: Debian's `docker-registry` and our own token-auth
//!   registry as upstreams; Docker, containerd and 200 concurrent pulls.
//! - `references.rs`: hostile references and names never reach the
//!   upstream (its access log, after a barrier, shows nothing).
//! - `limits.rs`: an upstream that lies about sizes or never ends is cut
//!   off; blob size limits, the fetch cap and the spool's free-space floor.
//! - `integrity.rs`: bytes that fail their digest end every client's
//!   transfer in an error (HTTP/1 and HTTP/2); a token realm on plain http
//!   never gets the rule's credentials.

mod clients;
mod integrity;
mod limits;
mod references;

use e2e::Registry;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Our registry with `rules` (TOML `[[cache]]` tables) in its config.
fn cache_registry(rules: &str) -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("registry.toml");
    std::fs::write(&config, rules).expect("config");
    let reg = Registry::start_with(&["--config", config.to_str().expect("UTF-8")]);
    (reg, dir)
}

/// Poll `check` until it holds (deadline 60 s), or panic with `what`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An answer read off a raw socket.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    /// The `errors[].code`s of an OCI error body (panics if it is not one).
    fn codes(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an OCI error body ({e}):\n{}{}", self.head, self.body));
        v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array:\n{}", self.body))
            .iter()
            .map(|e| e["code"].as_str().expect("a code").to_owned())
            .collect()
    }
}

/// `method target` sent byte for byte (no client library normalises the
/// target: `..`, `\` and percent escapes arrive as written).
fn raw_request(reg: &Registry, method: &str, target: &str) -> Raw {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", reg.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        reg.host()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?} for {method} {target}"));
    Raw {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `n` bytes no compressor shrinks, from `salt`.
fn noise(salt: &str, n: usize) -> Vec<u8> {
    let mut seed = e2e::sha256_digest(salt.as_bytes()).into_bytes();
    let mut out = Vec::with_capacity(n + 64);
    while out.len() < n {
        seed = e2e::sha256_digest(&seed).into_bytes();
        out.extend_from_slice(&seed);
    }
    out.truncate(n);
    out
}

/// How a blob GET ended for the client.
enum Outcome {
    /// An error answer: status, OCI codes, the whole body.
    Refused(u16, Vec<String>, String),
    /// A 200 whose body broke off (fewer bytes than promised, a chunked
    /// body aborted, a reset): the client cannot take it as complete.
    Cut(String),
    /// A 200 that ended cleanly, with these bytes.
    Whole(Vec<u8>),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Refused(s, codes, body) => write!(f, "refused {s} {codes:?}: {body}"),
            Outcome::Cut(e) => write!(f, "cut off: {e}"),
            Outcome::Whole(b) => write!(f, "served whole, {} bytes, cleanly ended", b.len()),
        }
    }
}

fn get_blob(reg: &Registry, repo: &str, digest: &str) -> Outcome {
    let url = format!("{}/v2/{repo}/blobs/{digest}", reg.url());
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .get(&url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    match resp.bytes() {
        Ok(b) if status == 200 => Outcome::Whole(b.to_vec()),
        Ok(b) => {
            let body = String::from_utf8_lossy(&b).into_owned();
            let v: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{status} without an OCI error body ({e}): {body}"));
            let codes = v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e["code"].as_str().unwrap_or("").to_owned())
                })
                .into_iter()
                .flatten()
                .collect();
            Outcome::Refused(status, codes, body)
        }
        Err(e) => Outcome::Cut(format!("{e:?}")),
    }
}

/// No file of the blob store holds `digest`, and the spool directory
/// `spool` empties (its files go once their fetch ends).
fn stored_nothing(reg: &Registry, spool: &std::path::Path, digests: &[&str]) {
    let blobs_dir = reg.data_dir().join("blobs");
    if blobs_dir.is_dir() {
        for (path, _) in e2e::blob_files(reg.data_dir()) {
            for d in digests {
                let hex = d.trim_start_matches("sha256:");
                assert!(
                    !path.to_string_lossy().contains(hex),
                    "{d} was stored: {}",
                    path.display()
                );
            }
        }
    }
    let empty =
        |dir: &std::path::Path| std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
    eventually("the spool directory to empty", || {
        spool.is_dir() && empty(spool)
    });
    eventually("no upload in progress to be left", || {
        empty(&reg.data_dir().join("uploads"))
    });
}
