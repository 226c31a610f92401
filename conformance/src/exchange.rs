//! One recorded HTTP request/response pair, plus the assertion helpers the
//! checks use on it. Every assertion failure carries the exchange so the
//! report can show exactly what was sent and received.

use std::fmt::Write as _;

use serde_json::Value;

use crate::report::Failure;

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

type Checked<'a> = Result<&'a Exchange, Failure>;

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

    pub fn fail(&self, message: impl Into<String>) -> Failure {
        Failure::at(self, message)
    }

    /// Asserts an arbitrary condition about this exchange.
    pub fn ensure(&self, cond: bool, message: impl FnOnce() -> String) -> Checked<'_> {
        if cond {
            Ok(self)
        } else {
            Err(self.fail(message()))
        }
    }

    pub fn expect_status(&self, expected: &[u16]) -> Checked<'_> {
        if expected.contains(&self.status) {
            return Ok(self);
        }
        let want: Vec<String> = expected.iter().map(u16::to_string).collect();
        Err(self.fail(format!("status {}, got {}", want.join(" or "), self.status)))
    }

    pub fn require_header(&self, name: &str) -> Result<&str, Failure> {
        self.header(name)
            .ok_or_else(|| self.fail(format!("response header {name} to be present")))
    }

    pub fn expect_header(&self, name: &str) -> Checked<'_> {
        self.require_header(name).map(|_| self)
    }

    pub fn expect_header_eq(&self, name: &str, value: &str) -> Checked<'_> {
        match self.header(name) {
            Some(v) if v.trim() == value => Ok(self),
            Some(v) => Err(self.fail(format!("header {name}: {value}, got {v:?}"))),
            None => Err(self.fail(format!("header {name}: {value}, but it is missing"))),
        }
    }

    /// Compares only the media type, ignoring parameters like `charset`.
    pub fn expect_content_type(&self, media_type: &str) -> Checked<'_> {
        let got = self.header("content-type").unwrap_or("");
        let bare = got.split(';').next().unwrap_or("").trim();
        if bare.eq_ignore_ascii_case(media_type) {
            Ok(self)
        } else {
            Err(self.fail(format!("Content-Type {media_type}, got {got:?}")))
        }
    }

    pub fn expect_content_length(&self, len: usize) -> Checked<'_> {
        self.expect_header_eq("content-length", &len.to_string())
    }

    /// Fails if the body could not be read, before anything inspects it.
    pub fn readable_body(&self) -> Checked<'_> {
        match &self.body_error {
            None => Ok(self),
            Some(e) => Err(self.fail(format!(
                "a complete response body, but reading it failed: {e}"
            ))),
        }
    }

    pub fn expect_body_eq(&self, expected: &[u8]) -> Checked<'_> {
        self.readable_body()?;
        if self.body == expected {
            Ok(self)
        } else {
            Err(self.fail(format!(
                "body to be the exact {} bytes pushed (got {} bytes, differing)",
                expected.len(),
                self.body.len()
            )))
        }
    }

    pub fn expect_empty_body(&self) -> Checked<'_> {
        self.readable_body()?;
        if self.body.is_empty() {
            Ok(self)
        } else {
            Err(self.fail(format!("no body, got {} bytes", self.body.len())))
        }
    }

    pub fn json(&self) -> Result<Value, Failure> {
        self.readable_body()?;
        serde_json::from_slice(&self.body)
            .map_err(|e| self.fail(format!("body to be valid JSON ({e})")))
    }

    /// Error codes from a spec-shaped `{"errors":[{"code":..}]}` body.
    pub fn error_codes(&self) -> Result<Vec<String>, Failure> {
        let v = self.json()?;
        let errors = v
            .get("errors")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| self.fail("error body with a non-empty \"errors\" array"))?;
        errors
            .iter()
            .map(|e| {
                e.get("code")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| self.fail("every error entry to have a string \"code\""))
            })
            .collect()
    }

    /// Status in `statuses`, a JSON Content-Type and an error body whose
    /// codes include one of `codes` (any code when `codes` is empty).
    pub fn expect_error(&self, statuses: &[u16], codes: &[&str]) -> Checked<'_> {
        self.expect_status(statuses)?;
        let ct = self.header("content-type").unwrap_or("");
        if !ct.to_ascii_lowercase().contains("json") {
            return Err(self.fail(format!("error body with a JSON Content-Type, got {ct:?}")));
        }
        let got = self.error_codes()?;
        if codes.is_empty() || got.iter().any(|c| codes.contains(&c.as_str())) {
            Ok(self)
        } else {
            Err(self.fail(format!(
                "error code {}, got {}",
                codes.join(" or "),
                got.join(", ")
            )))
        }
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
