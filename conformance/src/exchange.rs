//! One recorded HTTP request/response pair: what was sent, what came back,
//! and its dump for failure reports. The assertions on it are in `expect`.

use std::fmt::Write as _;

use serde_json::Value;

/// How many response body bytes a failure dump shows.
const DUMP_BODY_BYTES: usize = 500;

#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    /// Headers we sent (Authorization redacted).
    pub req_headers: Vec<(String, String)>,
    pub req_body_len: usize,
    /// Set when the HTTP client followed a redirect.
    pub final_url: Option<String>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set when the body could not be read completely.
    pub body_error: Option<String>,
}

impl Exchange {
    /// First value of a response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The URL that produced this response: the last redirect hop, if any.
    pub fn effective_url(&self) -> &str {
        self.final_url
            .as_deref()
            .and_then(|hops| hops.rsplit(" -> ").next())
            .unwrap_or(&self.url)
    }

    /// Whether the body is JSON, by Content-Type or by its bytes (the spec's
    /// "if the response body is in JSON format").
    pub fn is_json(&self) -> bool {
        let ct = self.header("content-type").unwrap_or("");
        ct.to_ascii_lowercase().contains("json")
            || serde_json::from_slice::<Value>(&self.body).is_ok_and(|v| v.is_object())
    }

    /// Indented, human-readable dump for failure reports.
    pub fn dump(&self, indent: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{indent}request:  {} {}", self.method, self.url);
        for (k, v) in &self.req_headers {
            let _ = writeln!(s, "{indent}  {k}: {v}");
        }
        let _ = writeln!(s, "{indent}  (body: {} bytes)", self.req_body_len);
        if let Some(u) = &self.final_url {
            let _ = writeln!(s, "{indent}  (redirected to {u})");
        }
        let _ = writeln!(s, "{indent}response: {}", self.status);
        for (k, v) in &self.headers {
            let _ = writeln!(s, "{indent}  {k}: {v}");
        }
        if self.body.is_empty() {
            let _ = writeln!(s, "{indent}  (no body)");
        } else {
            let shown = &self.body[..self.body.len().min(DUMP_BODY_BYTES)];
            let more = if shown.len() < self.body.len() {
                format!(" ... ({} bytes total)", self.body.len())
            } else {
                String::new()
            };
            let _ = writeln!(s, "{indent}  body: {}{more}", printable(shown));
        }
        if let Some(e) = &self.body_error {
            let _ = writeln!(s, "{indent}  (reading the response body failed: {e})");
        }
        s
    }
}

/// Escapes control and non-UTF-8 bytes so binary bodies stay on one line.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
impl Exchange {
    /// A GET answered with `status`, `headers` and `body`, for unit tests.
    pub fn answered(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Exchange {
        Exchange {
            method: "GET".into(),
            url: "http://127.0.0.1:5000/v2/a/tags/list".into(),
            req_headers: Vec::new(),
            req_body_len: 0,
            final_url: None,
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            body_error: None,
        }
    }
}
