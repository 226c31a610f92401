//! The registry's request log, read back: one record per logged request,
//! from our JSON format or the CNCF registry's.

/// One HTTP request as logged by the registry.
#[derive(Debug, Clone)]
pub struct LogRequest {
    pub method: String,
    /// The URI exactly as logged.
    pub raw_uri: String,
    /// Path component, percent-decoded.
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    pub status: u16,
    /// The request id (ours: `X-Request-Id`, taken from the client's).
    pub request_id: Option<String>,
}

impl LogRequest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse one log line into a request record, if it is one. Understands the
/// tracing-subscriber JSON format (`fields.method/uri/status`), flattened
/// fields, and the distribution/distribution format (`http.request.method`,
/// `http.request.uri`, `http.response.status`).
pub fn parse_log_line(line: &str) -> Option<LogRequest> {
    let start = line.find('{')?;
    let v: serde_json::Value = serde_json::from_str(line[start..].trim_end()).ok()?;
    let lookup = |keys: &[&str]| -> Option<serde_json::Value> {
        for k in keys {
            if let Some(x) = v.get("fields").and_then(|f| f.get(*k)) {
                return Some(x.clone());
            }
            if let Some(x) = v.get(*k) {
                return Some(x.clone());
            }
            if let Some(x) = v.get("span").and_then(|f| f.get(*k)) {
                return Some(x.clone());
            }
        }
        None
    };
    let method = lookup(&["method", "http.request.method"])?;
    // Our access log has `path` and `query` (values of unknown keys
    // redacted); distribution's has the whole `uri`.
    let raw_uri = match lookup(&["uri", "http.request.uri"]) {
        Some(uri) => uri.as_str()?.to_string(),
        None => {
            let path = lookup(&["path"])?.as_str()?.to_string();
            match lookup(&["query"]).as_ref().and_then(|q| q.as_str()) {
                Some(q) => format!("{path}?{q}"),
                None => path,
            }
        }
    };
    let status = lookup(&["status", "http.response.status"])?;
    let method = method.as_str()?.to_string();
    let status = match status {
        serde_json::Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        serde_json::Value::String(s) => s.split_whitespace().next()?.parse().ok()?,
        _ => return None,
    };
    // An absolute URI may be logged; keep only path and query.
    let mut rest = raw_uri.as_str();
    if let Some(i) = rest.find("://") {
        rest = &rest[i + 3..];
        rest = rest.find('/').map_or("/", |j| &rest[j..]);
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let request_id = lookup(&["request_id"]).and_then(|v| v.as_str().map(str::to_string));
    Some(LogRequest {
        request_id,
        method,
        path: percent_decode(path),
        raw_uri,
        query,
        status,
    })
}

/// Decode `%XX` escapes (and `+` as space in queries is not needed here).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tracing_json_line() {
        let line = r#"{"timestamp":"x","level":"INFO","fields":{"message":"request","method":"POST","uri":"/v2/a/b/blobs/uploads/?mount=sha256%3Aab&from=a%2Fc","status":201},"target":"registry"}"#;
        let r = parse_log_line(line).expect("parsed");
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v2/a/b/blobs/uploads/");
        assert_eq!(r.param("mount"), Some("sha256:ab"));
        assert_eq!(r.param("from"), Some("a/c"));
        assert_eq!(r.status, 201);
    }

    #[test]
    fn parses_our_access_line() {
        let line = r#"{"timestamp":"x","level":"INFO","message":"request","client":"127.0.0.1:4000","method":"POST","route":"/v2/{name}/blobs/uploads/","path":"/v2/a/b/blobs/uploads/","query":"mount=sha256%3Aab&from=a%2Fc","status":201,"target":"access"}"#;
        let r = parse_log_line(line).expect("parsed");
        assert_eq!(r.path, "/v2/a/b/blobs/uploads/");
        assert_eq!(r.param("from"), Some("a/c"));
        assert_eq!(r.status, 201);
    }

    #[test]
    fn parses_distribution_line() {
        let line = r#"{"http.request.method":"HEAD","http.request.uri":"/v2/x/blobs/sha256:00","http.response.status":404,"msg":"response completed"}"#;
        let r = parse_log_line(line).expect("parsed");
        assert_eq!(r.method, "HEAD");
        assert_eq!(r.status, 404);
        assert!(parse_log_line(r#"{"fields":{"message":"starting"}}"#).is_none());
        assert!(parse_log_line("plain text").is_none());
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(percent_decode("a%2Fb%3a"), "a/b:");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
