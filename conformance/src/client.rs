//! Blocking HTTP client for the registry under test: builds requests,
//! performs Basic / Docker bearer-token authentication transparently, and
//! records every exchange so failures can be reported with full context.

use std::cell::RefCell;
use std::time::Duration;

use reqwest::blocking::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use serde_json::Value;

use crate::auth::{auth_key, parse_challenge, Challenge, Credentials, TokenCache};
use crate::exchange::Exchange;
use crate::report::Failure;

const MAX_REDIRECTS: usize = 5;

/// A request description, kept around so it can be replayed after an auth
/// challenge (bodies are small enough to hold in memory).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Extra token scopes, e.g. pull on the source repo of a cross-repo mount.
    pub extra_scopes: Vec<String>,
    /// Skip all auth handling (used to observe the raw challenge).
    pub anonymous: bool,
}

impl Request {
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            extra_scopes: Vec::new(),
            anonymous: false,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.extra_scopes.push(scope.into());
        self
    }

    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
}

enum Auth {
    None,
    Basic,
    Bearer(String),
}

pub struct Client {
    /// Base URL without a trailing slash, for string concatenation.
    base: String,
    http: reqwest::blocking::Client,
    timeout: Duration,
    creds: Option<Credentials>,
    /// Set once the server asked for Basic auth; then we send it up front.
    basic: RefCell<bool>,
    tokens: RefCell<TokenCache>,
    last: RefCell<Option<Exchange>>,
    /// Every 4xx answer of the run, for the error-body format check.
    client_errors: RefCell<Vec<Exchange>>,
}

impl Client {
    pub fn new(base: &str, creds: Option<Credentials>, timeout: Duration) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        Url::parse(&format!("{base}/"))?;
        // Redirects are followed by hand (GET/HEAD only): reqwest would also
        // follow them for POST/PUT, hiding the registry's real answer.
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client {
            base,
            http,
            timeout,
            creds,
            basic: RefCell::new(false),
            tokens: RefCell::new(TokenCache::default()),
            last: RefCell::new(None),
            client_errors: RefCell::new(Vec::new()),
        })
    }

    /// Absolute URL for a path like `/v2/name/tags/list`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a `Location` or `Link` target, which may be relative, per
    /// RFC 3986 §5 against the URL of the response that carried it.
    pub fn resolve(&self, ex: &Exchange, reference: &str) -> Option<String> {
        resolve_from(ex.effective_url(), reference)
    }

    /// The most recent exchange, for failures that aren't tied to one.
    pub fn take_last(&self) -> Option<Exchange> {
        self.last.borrow_mut().take()
    }

    /// The 4xx answers seen so far.
    pub fn client_errors(&self) -> Vec<Exchange> {
        self.client_errors.borrow().clone()
    }

    pub fn get(&self, url: impl Into<String>) -> Result<Exchange, Failure> {
        self.send(Request::new("GET", url))
    }

    pub fn head(&self, url: impl Into<String>) -> Result<Exchange, Failure> {
        self.send(Request::new("HEAD", url))
    }

    pub fn delete(&self, url: impl Into<String>) -> Result<Exchange, Failure> {
        self.send(Request::new("DELETE", url))
    }

    /// Sends a request, answering at most one auth challenge, then follows
    /// redirects of GET/HEAD (blob downloads may redirect to storage).
    pub fn send(&self, req: Request) -> Result<Exchange, Failure> {
        let mut ex = self.send_authenticated(&req)?;
        let mut hops = Vec::new();
        while matches!(ex.status, 301 | 302 | 303 | 307 | 308)
            && matches!(req.method.as_str(), "GET" | "HEAD")
            && hops.len() < MAX_REDIRECTS
        {
            let Some(target) = ex
                .header("location")
                .and_then(|l| resolve_from(ex.effective_url(), l))
            else {
                break;
            };
            // Credentials only go back to the registry itself, never to
            // a storage backend on another origin.
            let same_origin = Url::parse(&target)
                .ok()
                .zip(Url::parse(&req.url).ok())
                .is_some_and(|(a, b)| a.origin() == b.origin());
            let mut next = req.clone();
            next.url = target.clone();
            hops.push(target);
            ex = if same_origin {
                self.send_authenticated(&next)?
            } else {
                self.attempt(&next, &Auth::None)?
            };
        }
        if !hops.is_empty() {
            ex.url = req.url.clone();
            ex.final_url = Some(hops.join(" -> "));
            *self.last.borrow_mut() = Some(ex.clone());
        }
        Ok(ex)
    }

    fn send_authenticated(&self, req: &Request) -> Result<Exchange, Failure> {
        if req.anonymous {
            return self.attempt(req, &Auth::None);
        }
        let key = auth_key(&req.url);
        let sent = self.cached_auth(&key);
        let first = self.attempt(req, &sent)?;
        if first.status != 401 {
            return Ok(first);
        }
        let Some(challenge) = first.header("www-authenticate").and_then(parse_challenge) else {
            return Ok(first);
        };
        let retry = if challenge.is("basic") && self.creds.is_some() {
            *self.basic.borrow_mut() = true;
            Auth::Basic
        } else if challenge.is("bearer") {
            let stale = match &sent {
                Auth::Bearer(t) => Some(t.as_str()),
                _ => None,
            };
            match self.token_for(&challenge, &req.extra_scopes, &key, stale) {
                Ok(token) => Auth::Bearer(token),
                // The token service refuses the scope itself as invalid
                // (e.g. a name outside the grammar): no token can make
                // this request acceptable, so the registry's 401 is its
                // answer, as a client sees it.
                Err(f) if f.exchange.as_ref().is_some_and(|ex| ex.status == 400) => {
                    return Ok(first)
                }
                Err(f) => return Err(f),
            }
        } else {
            return Ok(first);
        };
        self.attempt(req, &retry)
    }

    /// Sends `req` watching the connection for an early answer (see
    /// [`crate::raw`]), with the credentials this client holds for its URL.
    /// For requests reqwest cannot show the answer to.
    pub fn send_watching(&self, req: Request) -> Result<Exchange, Failure> {
        let mut headers = req.headers.clone();
        let mut shown = headers.clone();
        if let Some(a) = self.authorization(&req.url) {
            headers.push((AUTHORIZATION.to_string(), a));
            shown.push((AUTHORIZATION.to_string(), "<redacted>".into()));
        }
        let body = req.body.as_deref().unwrap_or_default();
        let mut ex =
            crate::raw::send_watching(&req.method, &req.url, &headers, body, self.timeout)?;
        ex.req_headers = shown;
        if (400..500).contains(&ex.status) {
            self.client_errors.borrow_mut().push(ex.clone());
        }
        *self.last.borrow_mut() = Some(ex.clone());
        Ok(ex)
    }

    /// The `Authorization` value this client would send to `url` now.
    fn authorization(&self, url: &str) -> Option<String> {
        let rb = self.http.get(url);
        let rb = match self.cached_auth(&auth_key(url)) {
            Auth::None => return None,
            Auth::Basic => {
                let c = self.creds.as_ref()?;
                rb.basic_auth(&c.username, Some(&c.password))
            }
            Auth::Bearer(t) => rb.bearer_auth(t),
        };
        let req = rb.build().ok()?;
        Some(req.headers().get(AUTHORIZATION)?.to_str().ok()?.to_owned())
    }

    fn cached_auth(&self, key: &str) -> Auth {
        if *self.basic.borrow() {
            return Auth::Basic;
        }
        match self.tokens.borrow().for_key(key) {
            Some(t) => Auth::Bearer(t.to_owned()),
            None => Auth::None,
        }
    }

    /// Docker token flow: reuse the cached token for the challenged scopes
    /// unless it is the one just rejected; otherwise GET
    /// realm?service=..&scope=.. (with Basic creds if we have them) and read
    /// `token` or `access_token`.
    fn token_for(
        &self,
        challenge: &Challenge,
        extra_scopes: &[String],
        key: &str,
        rejected: Option<&str>,
    ) -> Result<String, Failure> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| Failure::new("Bearer challenge to include a realm"))?;
        let mut scopes: Vec<String> = challenge
            .param("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        scopes.extend(extra_scopes.iter().cloned());
        scopes.retain(|s| !s.is_empty());
        scopes.sort();
        scopes.dedup();
        let scope_key = scopes.join(" ");
        let cached = self.tokens.borrow().get(&scope_key).map(str::to_owned);
        if let Some(t) = cached.filter(|t| Some(t.as_str()) != rejected) {
            self.tokens.borrow_mut().store(key, &scope_key, t.clone());
            return Ok(t);
        }

        let mut url = Url::parse(realm)
            .map_err(|e| Failure::new(format!("token realm {realm:?} to be a URL ({e})")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                q.append_pair("service", service);
            }
            for s in &scopes {
                q.append_pair("scope", s);
            }
        }
        let req = Request::new("GET", url.as_str());
        let auth = if self.creds.is_some() {
            Auth::Basic
        } else {
            Auth::None
        };
        let token = self.attempt(&req, &auth).and_then(|ex| {
            let body: Value = ex.expect_status(&[200])?.json()?;
            ["token", "access_token"]
                .iter()
                .find_map(|k| body.get(k).and_then(Value::as_str))
                .map(str::to_owned)
                .ok_or_else(|| ex.fail("a \"token\" or \"access_token\" field"))
        });
        // Say clearly that it was the token service, not the registry.
        let token = token.map_err(|mut f| {
            f.message = format!("token service {realm} to issue a token: {}", f.message);
            f
        })?;
        self.tokens
            .borrow_mut()
            .store(key, &scope_key, token.clone());
        Ok(token)
    }

    /// One HTTP round trip, recorded.
    fn attempt(&self, req: &Request, auth: &Auth) -> Result<Exchange, Failure> {
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|e| Failure::new(format!("valid HTTP method {:?} ({e})", req.method)))?;
        let mut rb: RequestBuilder = self.http.request(method, &req.url);
        let mut shown = req.headers.clone();
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        match auth {
            Auth::None => {}
            Auth::Basic => {
                if let Some(c) = &self.creds {
                    rb = rb.basic_auth(&c.username, Some(&c.password));
                    shown.push((AUTHORIZATION.to_string(), "Basic <redacted>".into()));
                }
            }
            Auth::Bearer(t) => {
                rb = rb.bearer_auth(t);
                shown.push((AUTHORIZATION.to_string(), "Bearer <redacted>".into()));
            }
        }
        let body_len = req.body.as_ref().map_or(0, Vec::len);
        if let Some(b) = &req.body {
            rb = rb.body(b.clone());
        }
        let resp = rb.send().map_err(|e| {
            Failure::new(format!(
                "a response to {} {}, but the request failed: {}",
                req.method,
                req.url,
                error_chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        // A body that fails to arrive (e.g. shorter than Content-Length) is
        // recorded rather than fatal: status and headers may still be right.
        let (body, body_error) = match resp.bytes() {
            Ok(b) => (b.to_vec(), None),
            Err(e) => (Vec::new(), Some(error_chain(&e))),
        };
        let ex = Exchange {
            method: req.method.clone(),
            url: req.url.clone(),
            req_headers: shown,
            req_body_len: body_len,
            final_url: None,
            status,
            headers,
            body,
            body_error,
        };
        if (400..500).contains(&status) {
            self.client_errors.borrow_mut().push(ex.clone());
        }
        *self.last.borrow_mut() = Some(ex.clone());
        Ok(ex)
    }
}

/// RFC 3986 reference resolution of `reference` against `base`.
pub fn resolve_from(base: &str, reference: &str) -> Option<String> {
    Url::parse(base)
        .ok()?
        .join(reference)
        .ok()
        .map(String::from)
}

/// reqwest's Display only shows the outermost error; the cause (connection
/// refused, timeout, ...) is what the user needs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
