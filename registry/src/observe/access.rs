//! The access log: one line per request, written when its response has been
//! sent (or abandoned), with what an operator greps for: who (client
//! address as trusted proxies forwarded it, the proxy, user agent, user), which
//! request (request id, method, route template, repository, path, query with
//! values of unknown keys redacted), and how it went (status, OCI error
//! code, bytes in and out, duration, whether the response was sent whole).

use axum::http::{HeaderMap, HeaderValue, Method};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

pub const REQUEST_ID: &str = "x-request-id";

/// The OCI error code of a response, set by the error mapping.
#[derive(Debug, Clone, Copy)]
pub struct OciCode(pub &'static str);

/// The route of a request whose path does not say it (the ECR API: one
/// path, the operation in a header): its operation, and the repository
/// its body names.
#[derive(Debug, Clone)]
pub struct RouteOverride {
    pub route: &'static str,
    pub repository: Option<String>,
}

/// The authenticated user of a request, set by authentication.
#[derive(Debug, Clone)]
pub struct User(pub String);

/// Query parameters of our API that carry no secret: logged as they are.
/// Anything else (a signature, a token someone put in a URL) is redacted.
const PLAIN_PARAMS: [&str; 10] = [
    "digest",
    "mount",
    "from",
    "n",
    "last",
    "artifactType",
    "q",
    "platform",
    "service",
    "scope",
];

/// `query` with the value of every parameter not in [`PLAIN_PARAMS`]
/// replaced by `REDACTED`.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if !PLAIN_PARAMS.contains(&k) => format!("{k}=REDACTED"),
            None if !PLAIN_PARAMS.contains(&kv) => format!("{kv}=REDACTED"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Request ids: a random prefix per process and a counter, unique across
/// restarts and cheap (no system call per request).
static ID_PREFIX: LazyLock<String> = LazyLock::new(|| {
    let u = uuid::Uuid::new_v4();
    u.simple().to_string()[..8].to_owned()
});
static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The client's `X-Request-Id` when it is a sane token, else a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let theirs = headers.get(REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    });
    match theirs {
        Some(v) => v.clone(),
        None => {
            let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
            HeaderValue::from_str(&format!("{}-{n:x}", *ID_PREFIX)).expect("ascii id")
        }
    }
}

/// Everything known about a request until its line is written.
pub struct AccessRecord {
    pub started: Instant,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client a trusted proxy (the peer) forwarded the request for.
    pub forwarded_client: Option<IpAddr>,
    pub request_id: HeaderValue,
    pub method: Method,
    pub route: &'static str,
    pub repository: Option<String>,
    pub path: String,
    pub query: Option<String>,
    pub user_agent: Option<String>,
    pub user: Option<String>,
    pub status: u16,
    pub error: Option<&'static str>,
    /// Request body bytes, counted as the handler reads them.
    pub bytes_in: Arc<AtomicU64>,
    pub bytes_out: u64,
}

impl AccessRecord {
    /// `forwarded_client`: the client a trusted proxy vouched for, if the
    /// `peer` is one.
    pub fn new(
        peer: SocketAddr,
        forwarded_client: Option<std::net::IpAddr>,
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        request_id: HeaderValue,
    ) -> AccessRecord {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let path = uri.path().to_owned();
        let (route, repository) = crate::routes::template(&path);
        AccessRecord {
            started: Instant::now(),
            peer,
            forwarded_client,
            request_id,
            method: method.clone(),
            route,
            repository: repository.map(str::to_owned),
            query: uri.query().map(redact_query).filter(|q| !q.is_empty()),
            path,
            user_agent: header("user-agent"),
            user: None,
            status: 0,
            error: None,
            bytes_in: Arc::default(),
            bytes_out: 0,
        }
    }

    /// The client as logged: the forwarded address, else the peer.
    fn client(&self) -> String {
        match self.forwarded_client {
            Some(c) => c.to_string(),
            None => self.peer.to_string(),
        }
    }

    /// Write the line. `complete`: the response body was sent whole.
    pub fn emit(&self, complete: bool) {
        crate::observe::metrics::request(
            self.route,
            &self.method,
            self.status,
            self.started.elapsed().as_secs_f64(),
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out,
        );
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return;
        }
        match crate::observe::logging::direct() {
            Some((sink, format)) => sink.append(&self.line(
                *format == crate::observe::logging::LogFormat::Json,
                complete,
            )),
            None => self.emit_traced(complete),
        }
    }

    /// The line, formatted by hand (see `access_line`).
    fn line(&self, json: bool, complete: bool) -> Vec<u8> {
        use crate::observe::access_line::{LineBuilder, Value};
        let mut b = LineBuilder::new(json, "access", "request");
        let client = self.client();
        b.field("client", Value::Str(&client));
        if self.forwarded_client.is_some() {
            b.field("proxy", Value::Str(&self.peer.to_string()));
        }
        b.field(
            "request_id",
            Value::Str(self.request_id.to_str().unwrap_or_default()),
        )
        .field("method", Value::Str(self.method.as_str()))
        .field("route", Value::Str(self.route));
        if let Some(r) = &self.repository {
            b.field("repository", Value::Str(r));
        }
        b.field("path", Value::Str(&self.path));
        if let Some(q) = &self.query {
            b.field("query", Value::Str(q));
        }
        b.field("status", Value::Num(self.status.into()));
        if let Some(e) = self.error {
            b.field("error", Value::Str(e));
        }
        b.field(
            "bytes_in",
            Value::Num(self.bytes_in.load(Ordering::Relaxed)),
        )
        .field("bytes_out", Value::Num(self.bytes_out))
        .field(
            "duration_ms",
            Value::Millis(self.started.elapsed().as_micros() as u64),
        );
        if let Some(ua) = &self.user_agent {
            b.field("user_agent", Value::Str(ua));
        }
        if let Some(u) = &self.user {
            b.field("user", Value::Str(u));
        }
        b.field("complete", Value::Bool(complete));
        b.finish()
    }

    /// The line through tracing (a terminal, or no direct sink installed).
    fn emit_traced(&self, complete: bool) {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "access",
            client = %self.client(),
            proxy = self.forwarded_client.map(|_| self.peer.to_string()),
            request_id = self.request_id.to_str().unwrap_or_default(),
            method = %self.method,
            route = self.route,
            repository = self.repository.as_deref(),
            path = %self.path,
            query = self.query.as_deref(),
            status = self.status,
            error = self.error,
            bytes_in = self.bytes_in.load(Ordering::Relaxed),
            bytes_out = self.bytes_out,
            duration_ms,
            user_agent = self.user_agent.as_deref(),
            user = self.user.as_deref(),
            complete,
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_api_parameters_and_redact_the_rest() {
        assert_eq!(
            redact_query("mount=sha256%3Aab&from=a%2Fb"),
            "mount=sha256%3Aab&from=a%2Fb"
        );
        assert_eq!(
            redact_query("digest=sha256:1&X-Amz-Signature=abc&token"),
            "digest=sha256:1&X-Amz-Signature=REDACTED&token=REDACTED"
        );
        assert_eq!(redact_query("password=hunter2"), "password=REDACTED");
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn request_ids_are_the_clients_when_sane() {
        let mut h = HeaderMap::new();
        let a = request_id(&h);
        let b = request_id(&h);
        assert_ne!(a, b);
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(request_id(&h), "abc-123_x.y");
        h.insert(REQUEST_ID, HeaderValue::from_static("bad id"));
        assert_ne!(request_id(&h), "bad id");
    }
}
