//! The assertions checks make on an exchange. Each failure carries the
//! exchange, so the report shows exactly what was sent and received. (Apart
//! from `exchange` so that the recording does not depend on the report.)

use serde_json::Value;

use crate::exchange::Exchange;
use crate::report::Failure;

type Checked<'a> = Result<&'a Exchange, Failure>;

impl Exchange {
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
}
