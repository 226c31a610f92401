//! A client of one upstream registry: the Docker token flow (a 401's
//! Bearer challenge, a token fetched from its realm and kept per scope
//! until it expires) and Basic auth. Its URLs are built here only, from a
//! validated name and a typed reference, one encoded segment each: what a
//! client writes can never walk the upstream's paths.

use super::rules::CacheRule;
use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use storage::names::Reference;
use storage::{Digest, Error, ErrorCode};

/// Every manifest kind the registry stores, most specific first: the
/// upstream answers with what it has (an index rather than one platform).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Tokens are dropped this long before they expire, so none expires in
/// flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// The largest token answer read (a JWT is a few KiB); an upstream's
/// error text is cut shorter still.
const TOKEN_BODY_MAX: usize = 64 << 10;
const ERROR_BODY_MAX: usize = 4 << 10;

/// What is asked of the upstream, typed: only a validated reference or
/// digest becomes a path segment.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Manifest(&'a Reference),
    Blob(&'a Digest),
}

pub struct Upstream {
    rule: CacheRule,
    base: String,
    base_url: url::Url,
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
    /// Refused on our side before (or instead of) asking: a name outside
    /// the grammar, credentials that would go out in clear.
    Refused(ErrorCode, String),
}

impl Failure {
    /// Down or throttling: cached content may be served instead.
    pub fn is_outage(&self) -> bool {
        match self {
            Failure::Unreachable(_) => true,
            Failure::Status(s, _) => *s == 429 || *s >= 500,
            Failure::Refused(..) => false,
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
            Failure::Refused(code, m) => Error::new(*code, m.clone()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s, m) => write!(f, "status {s}: {m}"),
            Failure::Unreachable(m) => write!(f, "unreachable: {m}"),
            Failure::Refused(_, m) => write!(f, "refused: {m}"),
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
            .redirect(no_downgrade())
            .build()
            .map_err(|e| format!("cannot build the upstream client: {e}"))?;
        let base = rule.upstream.trim_end_matches('/').to_owned();
        let base_url = url::Url::parse(&base)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
            .ok_or_else(|| format!("upstream {base:?} is not a base URL"))?;
        Ok(Upstream {
            base,
            base_url,
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

    /// The URL of `target` in repository `name` of the upstream: `name`
    /// must be in the distribution grammar, and each of its components and
    /// the reference is one percent-encoded path segment (a `..`, a `/` or
    /// a `\` could only arrive escaped, and cannot: they are refused first).
    pub fn url(&self, name: &str, target: Target<'_>) -> Result<url::Url, Failure> {
        if storage::names::validate_name(name).is_err() {
            return Err(Failure::Refused(
                ErrorCode::NameInvalid,
                "invalid repository name".into(),
            ));
        }
        let (kind, reference) = match target {
            Target::Manifest(Reference::Tag(t)) => {
                storage::names::validate_tag(t).map_err(|e| Failure::Refused(e.code, e.message))?;
                ("manifests", t.clone())
            }
            Target::Manifest(Reference::Digest(d)) => ("manifests", d.to_string()),
            Target::Blob(d) => ("blobs", d.to_string()),
        };
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("checked in new(): a base URL")
            .pop_if_empty()
            .push("v2")
            .extend(name.split('/'))
            .push(kind)
            .push(&reference);
        Ok(url)
    }

    /// `method` on `target` of repository `name` with the credentials the
    /// upstream wants; a 401 is answered once (a token fetched, or Basic
    /// auth). Any status but 2xx is a [`Failure`].
    pub async fn send(
        &self,
        method: Method,
        name: &str,
        target: Target<'_>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let url = self.url(name, target)?;
        let scope = format!("repository:{name}:pull");
        let mut auth = self.known_auth(&scope)?;
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), url.clone());
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
        let credentials = self
            .rule
            .credentials()
            .map_err(|e| Failure::Status(401, e))?;
        let realm_url = self.check_realm(realm, credentials.is_some())?;
        let mut req = self.http.get(realm_url).query(&[("scope", scope)]);
        if let Some(service) = params.get("service") {
            req = req.query(&[("service", service)]);
        }
        if let Some((u, p)) = credentials {
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
        let body = read_capped(resp, TOKEN_BODY_MAX)
            .await
            .map_err(|e| Failure::Unreachable(format!("token server {realm}: {e}")))?;
        let body: TokenResponse = serde_json::from_slice(&body)
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

impl Upstream {
    /// The realm a challenge names, if the rule's credentials may go there:
    /// over https, or http only where the rule allows it (its upstream
    /// being http too is no reason: the realm may be any host the
    /// upstream names). Without credentials nothing secret is sent.
    fn check_realm(&self, realm: &str, credentials: bool) -> Result<url::Url, Failure> {
        let url = url::Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Failure::Status(
                    401,
                    format!("the Bearer challenge's realm {realm:?} is not an http(s) URL"),
                )
            })?;
        if url.scheme() == "http" && credentials && !self.rule.allow_insecure_realm {
            tracing::warn!(upstream = %self.base, realm = %url, prefix = %self.rule.prefix, "pull-through: refused to send the rule's credentials to a token realm on plain http");
            return Err(Failure::Refused(
                ErrorCode::Denied,
                format!(
                    "the upstream {} asks for a token from {url}, on plain http: the credentials of \
                     the [[cache]] rule {:?} are not sent in clear (set allow_insecure_realm = true \
                     on the rule to allow it)",
                    self.base, self.rule.prefix
                ),
            ));
        }
        Ok(url)
    }
}

/// Redirects are followed (registries send blob downloads to a CDN or S3),
/// but never from https to http.
fn no_downgrade() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from_https = attempt.previous().iter().any(|u| u.scheme() == "https");
        if attempt.previous().len() >= 10 {
            attempt.error("too many redirects")
        } else if from_https && attempt.url().scheme() != "https" {
            attempt.error("a redirect from https to plain http")
        } else {
            attempt.follow()
        }
    })
}

/// A body of at most `max` bytes (an error past it): what an upstream or
/// its token server sends cannot make us hold more.
async fn read_capped(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("an answer over {max} bytes"));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() + chunk.len() > max {
            return Err(format!("an answer over {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn unreachable(e: reqwest::Error) -> Failure {
    Failure::Unreachable(if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    })
}

/// The start of an error answer's body, for messages (read no further,
/// and with control characters dropped: it reaches clients and logs).
async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_MAX {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.chars().filter(|c| !c.is_control()).take(300).collect()
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

    fn upstream(base: &str, extra: &str) -> Upstream {
        let rule: CacheRule =
            toml::from_str(&format!("prefix = \"hub\"\nupstream = {base:?}\n{extra}")).unwrap();
        Upstream::new(rule).unwrap()
    }

    #[test]
    fn urls_are_built_from_validated_segments() {
        let up = upstream("https://registry.example/", "");
        let tag = Reference::parse("1.0").unwrap();
        let url = up.url("library/busybox", Target::Manifest(&tag)).unwrap();
        assert_eq!(
            url.as_str(),
            "https://registry.example/v2/library/busybox/manifests/1.0"
        );
        let d = Digest::sha256_of(b"x");
        let url = up.url("a/b", Target::Blob(&d)).unwrap();
        assert_eq!(url.path(), format!("/v2/a/b/blobs/{d}"));
        // A base with a path keeps it.
        let mirror = upstream("http://127.0.0.1:5000/mirror/", "");
        let url = mirror.url("x", Target::Manifest(&tag)).unwrap();
        assert_eq!(url.path(), "/mirror/v2/x/manifests/1.0");
        // Names and tags outside the grammar never become a URL, even if
        // a caller skipped the parsing (a tag built by hand).
        for name in ["a/../b", "..", "a\\b", "a%2Fb", "A", "a//b", ""] {
            let e = up.url(name, Target::Manifest(&tag)).unwrap_err();
            assert!(
                matches!(e, Failure::Refused(ErrorCode::NameInvalid, _)),
                "{name}"
            );
        }
        for bad in ["..", "..\\..\\v2\\_catalog", "%2e%2e", "a/b", "http://x/"] {
            let r = Reference::Tag(bad.into());
            let e = up.url("a", Target::Manifest(&r)).unwrap_err();
            assert!(
                matches!(e, Failure::Refused(ErrorCode::TagInvalid, _)),
                "{bad}"
            );
            assert!(!e.is_outage());
        }
    }

    #[test]
    fn credentials_go_to_no_realm_on_plain_http() {
        let creds = "username = \"u\"\npassword = \"p\"\n";
        // An https upstream naming an http realm, and an http one: refused.
        for base in ["https://registry.example", "http://127.0.0.1:5000"] {
            let up = upstream(base, creds);
            let e = up
                .check_realm("http://auth.example/token", true)
                .unwrap_err();
            let err = e.to_error(up.base(), || Error::new(ErrorCode::ManifestUnknown, "m"));
            assert_eq!(err.code, ErrorCode::Denied);
            assert!(
                err.message.contains("allow_insecure_realm"),
                "{}",
                err.message
            );
            assert!(up.check_realm("https://auth.example/token", true).is_ok());
            // Nothing secret to send: anonymous tokens may come over http.
            assert!(up.check_realm("http://auth.example/token", false).is_ok());
            assert!(up.check_realm("file:///etc/passwd", false).is_err());
            assert!(up.check_realm("not a url", false).is_err());
        }
        let allowed = upstream(
            "http://127.0.0.1:5000",
            &format!("{creds}allow_insecure_realm = true\n"),
        );
        assert!(allowed
            .check_realm("http://auth.example/token", true)
            .is_ok());
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
