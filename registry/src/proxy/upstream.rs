//! A client of one upstream registry: the Docker token flow (a 401's
//! Bearer challenge, a token fetched from its realm and kept per scope
//! until it expires) and Basic auth.

use super::rules::CacheRule;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use storage::{Error, ErrorCode};

/// Every manifest kind the registry stores, most specific first: the
/// upstream answers with what it has (an index rather than one platform).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Tokens are dropped this long before they expire, so none expires in
/// flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

pub struct Upstream {
    rule: CacheRule,
    base: String,
    http: reqwest::Client,
    /// Bearer tokens by scope, with their expiry.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// The upstream asked for Basic auth: send it up front from now on.
    basic: std::sync::atomic::AtomicBool,
}

/// Why the upstream gave no answer to use.
#[derive(Debug, Clone)]
pub enum Failure {
    /// It answered with this status (404: it has no such thing).
    Status(u16, String),
    /// It could not be reached, timed out or broke off.
    Unreachable(String),
}

impl Failure {
    /// Down or throttling: cached content may be served instead.
    pub fn is_outage(&self) -> bool {
        match self {
            Failure::Unreachable(_) => true,
            Failure::Status(s, _) => *s == 429 || *s >= 500,
        }
    }

    /// This failure as the error the client gets, `unknown` for a 404.
    pub fn to_error(&self, upstream: &str, unknown: impl FnOnce() -> Error) -> Error {
        match self {
            Failure::Status(404, _) => unknown(),
            Failure::Status(s @ (401 | 403), m) => Error::new(
                ErrorCode::Denied,
                format!("the upstream {upstream} refused access ({s}): {m}"),
            ),
            Failure::Status(429, _) => Error::new(
                ErrorCode::Unavailable,
                format!("the upstream {upstream} is throttling pulls (429); try again later"),
            ),
            Failure::Status(s, m) => Error::new(
                ErrorCode::Unavailable,
                format!("the upstream {upstream} failed ({s}): {m}"),
            ),
            Failure::Unreachable(m) => Error::new(
                ErrorCode::Unavailable,
                format!("the upstream {upstream} cannot be reached: {m}"),
            ),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s, m) => write!(f, "status {s}: {m}"),
            Failure::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

impl Upstream {
    pub fn new(rule: CacheRule) -> Result<Upstream, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(rule.timeout_secs.min(10)))
            // A blob's body may take long; a stall may not.
            .read_timeout(Duration::from_secs(rule.timeout_secs))
            .user_agent(concat!("registry-pull-through/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the upstream client: {e}"))?;
        Ok(Upstream {
            base: rule.upstream.trim_end_matches('/').to_owned(),
            rule,
            http,
            tokens: Mutex::new(HashMap::new()),
            basic: Default::default(),
        })
    }

    pub fn rule(&self) -> &CacheRule {
        &self.rule
    }

    /// The upstream's base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method` on `/v2/{name}/{path}` with the credentials the upstream
    /// wants; a 401 is answered once (a token fetched, or Basic auth).
    /// Any status but 2xx is a [`Failure`].
    pub async fn send(
        &self,
        method: Method,
        name: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let url = format!("{}/v2/{name}/{path}", self.base);
        let scope = format!("repository:{name}:pull");
        let mut auth = self.known_auth(&scope)?;
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), &url);
            if method != Method::GET || accept.is_some() {
                // Manifests: a bounded answer (blobs stream, read_timeout).
                req = req.timeout(Duration::from_secs(self.rule.timeout_secs));
            }
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(unreachable)?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                auth = Some(self.answer_challenge(resp.headers(), &scope).await?);
                continue;
            }
            if !status.is_success() {
                return Err(Failure::Status(status.as_u16(), error_text(resp).await));
            }
            return Ok(resp);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// An `Authorization` known to work without a challenge first.
    fn known_auth(&self, scope: &str) -> Result<Option<String>, Failure> {
        if self.basic.load(std::sync::atomic::Ordering::Relaxed) {
            return self.basic_auth().map(Some);
        }
        let tokens = self.tokens.lock().expect("token cache");
        Ok(tokens
            .get(scope)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| format!("Bearer {t}")))
    }

    fn basic_auth(&self) -> Result<String, Failure> {
        use base64::Engine as _;
        match self
            .rule
            .credentials()
            .map_err(|e| Failure::Status(401, e))?
        {
            Some((u, p)) => Ok(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            None => Err(Failure::Status(
                401,
                "the upstream wants Basic auth and the [[cache]] rule has no credentials".into(),
            )),
        }
    }

    /// The `Authorization` that answers a 401's challenge.
    async fn answer_challenge(&self, headers: &HeaderMap, scope: &str) -> Result<String, Failure> {
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            self.basic.store(true, std::sync::atomic::Ordering::Relaxed);
            return self.basic_auth();
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Failure::Status(
                401,
                format!("unsupported authentication challenge {challenge:?}"),
            ));
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| Failure::Status(401, "Bearer challenge without a realm".into()))?;
        let mut req = self.http.get(realm.as_str()).query(&[("scope", scope)]);
        if let Some(service) = params.get("service") {
            req = req.query(&[("service", service)]);
        }
        if let Some((u, p)) = self
            .rule
            .credentials()
            .map_err(|e| Failure::Status(401, e))?
        {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req
            .timeout(Duration::from_secs(self.rule.timeout_secs))
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            let s = resp.status().as_u16();
            return Err(Failure::Status(
                if s == 429 || s >= 500 { s } else { 401 },
                format!("token server {realm}: {s} {}", error_text(resp).await),
            ));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| Failure::Unreachable(format!("token server {realm}: {e}")))?;
        let token = body
            .token
            .or(body.access_token)
            .ok_or_else(|| Failure::Status(401, format!("token server {realm} sent no token")))?;
        // The spec's default lifetime is 60 s.
        let life = Duration::from_secs(body.expires_in.unwrap_or(60));
        let until = Instant::now() + life.saturating_sub(TOKEN_MARGIN);
        let mut tokens = self.tokens.lock().expect("token cache");
        tokens.retain(|_, (_, u)| Instant::now() < *u);
        tokens.insert(scope.to_owned(), (token.clone(), until));
        Ok(format!("Bearer {token}"))
    }
}

fn unreachable(e: reqwest::Error) -> Failure {
    Failure::Unreachable(if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    })
}

/// The start of an error answer's body, for messages.
async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.chars().take(300).collect()
    }
}

/// `Bearer realm="r",service="s"` → ("Bearer", {realm: r, service: s}).
pub fn parse_challenge(value: &str) -> (&str, HashMap<String, String>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, val.to_owned());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
        let (_, p) = parse_challenge("Bearer realm=http://x/token, service=svc");
        assert_eq!(p["realm"], "http://x/token");
        assert_eq!(p["service"], "svc");
    }

    #[test]
    fn outages_are_told_apart_from_refusals() {
        assert!(Failure::Unreachable("x".into()).is_outage());
        assert!(Failure::Status(429, "x".into()).is_outage());
        assert!(Failure::Status(502, "x".into()).is_outage());
        assert!(!Failure::Status(404, "x".into()).is_outage());
        assert!(!Failure::Status(401, "x".into()).is_outage());
        let e = Failure::Status(404, String::new())
            .to_error("u", || Error::new(ErrorCode::ManifestUnknown, "m"));
        assert_eq!(e.code, ErrorCode::ManifestUnknown);
        let e = Failure::Status(403, "no".into())
            .to_error("u", || Error::new(ErrorCode::ManifestUnknown, "m"));
        assert_eq!(e.code, ErrorCode::Denied);
    }
}
