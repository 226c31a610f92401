//! Authentication and authorization at the HTTP edge: who is asking (a
//! bearer token, Basic credentials of a user or robot, a web session), and
//! whether they may do what the request needs. The decisions themselves are
//! the `auth` crate's; this module extracts credentials, caches what is
//! costly (token verification, argon2id), and answers the way the Docker
//! token spec says clients expect (401 with a challenge, 403 `DENIED`).

mod cache;
mod checks;
mod decide;
mod edge;
mod hash_pool;
mod refresh;
mod refuse;
pub mod require;
pub mod session;
mod sigv4;

pub use checks::Passed;
pub use decide::Access;
pub use edge::{identify, refusal};
pub use refuse::{denied, throttled as refuse_throttled, unauthorized};
pub use require::{requirement, Need, Requirement};
pub use session::WebSession;

use crate::config::{AuthMode, Config};
use crate::failure::Failure;
use auth::identity::Subject;
use auth::password::PasswordHasher;
use auth::token::{IssuedToken, Issuer, IssuerConfig, KeySet, SigningKey, VerifiedToken, Verifier};
use auth::{Identity, Policy};
use axum::http::{header, HeaderMap};
use cache::TtlCache;
use checks::Checks;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::Registry;

/// How long an account's identity (groups, admin flag, a robot's scopes)
/// is remembered for the bearer tokens naming it.
const SUBJECT_CACHE_TTL: Duration = Duration::from_secs(30);

/// Who made a request, and on what grounds.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off: everything is allowed.
    Open,
    /// A bearer token: it alone says what is allowed.
    Token { token: Arc<VerifiedToken> },
    /// Basic credentials or a web session: the policy says.
    Known(Arc<Identity>),
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller::Known(Arc::new(Identity::Anonymous))
    }

    /// The name for logs (`robot+ci`, a user name), if signed in.
    pub fn user(&self) -> Option<String> {
        match self {
            Caller::Open => None,
            Caller::Token { token } => Some(token.subject.clone()).filter(|s| !s.is_empty()),
            Caller::Known(i) => Some(i.subject_claim()).filter(|s| !s.is_empty()),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        match self {
            Caller::Open => false,
            Caller::Token { token } => token.subject.is_empty(),
            Caller::Known(i) => matches!(**i, Identity::Anonymous),
        }
    }
}

/// The verifier and, for our own token server, the issuer.
struct Tokens {
    verifier: Verifier,
    issuer: Option<Issuer>,
    /// Where clients get tokens, when fixed by configuration (an external
    /// token server, or `external_url`); else derived from `Host`.
    realm: Option<String>,
    service: String,
}

pub struct Gate {
    mode: AuthMode,
    tokens: Option<Tokens>,
    policy: Policy,
    registry: Registry,
    /// Password checks: limiter, cap, remembered successes.
    checks: Arc<Checks>,
    /// token hash -> verified claims, until the token expires.
    verified: TtlCache<[u8; 32], Arc<VerifiedToken>>,
    /// subject -> identity (groups, admin flag), for a short while.
    subjects: TtlCache<String, Arc<Identity>>,
    tls: bool,
    /// The ECR API's key sealing access-key secrets, and the regions
    /// signatures may name (token mode only).
    ecr: Option<sigv4::EcrKeys>,
}

/// What a request presented.
enum Presented<'a> {
    Nothing,
    Bearer(&'a str),
    Basic(String, String),
    Malformed,
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::Nothing;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" if !rest.trim().is_empty() => Presented::Bearer(rest.trim()),
        "basic" => {
            basic_pair(rest.trim()).map_or(Presented::Malformed, |(u, p)| Presented::Basic(u, p))
        }
        _ => Presented::Malformed,
    }
}

/// `user:password` from a Basic credential.
pub fn basic_pair(b64: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Why authentication failed, for the answer (never for logs: no secret).
#[derive(Debug)]
pub enum AuthError {
    /// Wrong user name, password, secret or token: 401.
    Invalid(&'static str),
    /// Too many failures from this address or for this user: 429.
    Throttled(u64),
    /// The accounts database could not answer: 503.
    Unavailable(storage::Error),
}

impl From<storage::Error> for AuthError {
    fn from(e: storage::Error) -> AuthError {
        AuthError::Unavailable(e)
    }
}

impl Gate {
    /// The gate for `cfg`: keys are loaded (or generated on first start)
    /// for token mode.
    pub fn new(cfg: &Config, registry: Registry, tls: bool) -> Result<Gate, Failure> {
        let mode = cfg.auth.unwrap_or(AuthMode::None);
        let policy = Policy::from_config(&cfg.access)
            .map_err(|e| Failure::usage(format!("invalid [access] configuration: {e}")))?;
        let tokens = match mode {
            AuthMode::None => None,
            AuthMode::Token => Some(tokens(cfg)?),
        };
        let ecr = match mode {
            AuthMode::None => None,
            AuthMode::Token => Some(sigv4::EcrKeys::new(cfg)?),
        };
        Ok(Gate {
            mode,
            tokens,
            policy,
            checks: Arc::new(Checks::new(
                cfg.login_limit.limits(),
                cfg.login_limit.max_concurrent_checks,
                registry.clone(),
            )),
            registry,
            verified: TtlCache::new(100_000),
            subjects: TtlCache::new(10_000),
            tls,
            ecr,
        })
    }

    pub fn enabled(&self) -> bool {
        self.mode == AuthMode::Token
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn hasher(&self) -> &PasswordHasher {
        self.checks.hasher()
    }

    fn tokens(&self) -> &Tokens {
        self.tokens.as_ref().expect("token mode")
    }

    /// Our token server, unless tokens come from an external one.
    pub fn issuer(&self) -> Option<&Issuer> {
        self.tokens.as_ref().and_then(|t| t.issuer.as_ref())
    }

    pub fn service(&self) -> &str {
        &self.tokens().service
    }

    /// Whether the client reached us over HTTPS: our own TLS, or a trusted
    /// proxy's (see [`crate::http::forwarded`]).
    pub fn https(&self, headers: &HeaderMap) -> bool {
        self.tls || crate::http::forwarded::original_https(headers)
    }

    /// The token realm: configured, or this server's `/token` as the client
    /// reached it.
    pub fn realm(&self, headers: &HeaderMap) -> String {
        if let Some(r) = &self.tokens().realm {
            return r.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if self.https(headers) { "https" } else { "http" };
        format!("{scheme}://{host}/token")
    }

    /// Who made a `/v2/` or API request. `Ok(None)`: nothing was presented.
    pub async fn caller(&self, headers: &HeaderMap, client: IpAddr) -> Result<Caller, AuthError> {
        if !self.enabled() {
            return Ok(Caller::Open);
        }
        match presented(headers) {
            Presented::Nothing => Ok(Caller::anonymous()),
            Presented::Malformed => Err(AuthError::Invalid("malformed Authorization header")),
            Presented::Bearer(t) => Ok(Caller::Token {
                token: self.verify_token(t)?,
            }),
            Presented::Basic(user, secret) => Ok(Caller::Known(
                self.check_credentials(&user, &secret, client).await?.id,
            )),
        }
    }

    /// A bearer token's claims, verified once and remembered until it expires.
    pub fn verify_token(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        let now = auth::now_unix();
        let key = auth::token::token_hash(token);
        if let Some(v) = self.verified.get(&key) {
            return Ok(v);
        }
        let verified = self
            .tokens()
            .verifier
            .verify(token, now)
            .map_err(|_| AuthError::Invalid("invalid or expired token"))?;
        let verified = Arc::new(verified);
        let ttl = Duration::from_secs(verified.expires_at.saturating_sub(now));
        self.verified.insert(key, verified.clone(), ttl);
        Ok(verified)
    }

    /// A user's or robot's credentials, rate-limited per client address and
    /// user name, checked in constant time against the stored hash (see
    /// [`checks`]).
    pub async fn check_credentials(
        &self,
        user: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<Passed, AuthError> {
        // `docker login --username AWS` with a GetAuthorizationToken
        // password: checked against its access key, not a password hash.
        if user == auth::access_key::LOGIN_USER {
            return self.check_ecr_login(secret, client).await;
        }
        self.checks.check(user, secret, client).await
    }

    /// The current identity behind a token subject (its groups and admin
    /// flag, a robot's scopes), or `None` when the account is gone.
    pub async fn identity_of(&self, subject: &str) -> Result<Option<Arc<Identity>>, AuthError> {
        if let Some(id) = self.subjects.get(&subject.to_owned()) {
            return Ok(Some(id));
        }
        let accounts = self.registry.accounts();
        let id = match Subject::parse(subject) {
            Ok(Subject::Anonymous) => Some(Identity::Anonymous),
            Ok(Subject::User(name)) => accounts
                .user(&name)
                .await?
                .map(|row| checks::user_identity(&row)),
            Ok(Subject::Robot(name)) => accounts
                .robot(&name)
                .await?
                .map(|row| Identity::Robot(checks::robot_identity(&row))),
            Err(_) => None,
        };
        Ok(id.map(|id| {
            let id = Arc::new(id);
            self.subjects
                .insert(subject.to_owned(), id.clone(), SUBJECT_CACHE_TTL);
            id
        }))
    }

    /// For a token that lacks what a request needs: would its subject get
    /// it with a new token? (Then the answer is 401 `insufficient_scope`,
    /// and the client asks for one; else 403.)
    pub async fn subject_could(&self, caller: &Caller, need: &Need) -> bool {
        let Caller::Token { token } = caller else {
            return false;
        };
        if self.issuer().is_none() {
            // Another server's tokens: only it knows; let the client ask.
            return true;
        }
        match self.identity_of(&token.subject).await {
            Ok(Some(id)) => match need {
                Need::On(repo, action) => self.policy.allowed(&id, repo, *action),
                Need::Catalog => self.policy.may_list_catalog(&id),
                Need::Admin => id.is_admin(),
                Need::Authenticated | Need::Anyone | Need::Browse => true,
            },
            _ => false,
        }
    }

    /// Record a failed login for rate limiting (a bad refresh token).
    pub fn login_failed(&self, client: IpAddr, user: Option<&str>) {
        self.checks
            .limiter()
            .record_failure(client, user, Instant::now());
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sign an access token for `who`.
    pub fn issue(&self, who: &Identity, granted: &[auth::Scope]) -> Option<IssuedToken> {
        self.issuer()?
            .issue_access(who, granted, auth::now_unix())
            .ok()
    }
}

/// Keys, issuer and verifier for token mode.
fn tokens(cfg: &Config) -> Result<Tokens, Failure> {
    let t = &cfg.token;
    let key_failure = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        Failure::operational(format!("token key {}: {e}", path.display()))
    };
    if let Some(ext) = &t.external {
        let keys = KeySet::load_trusted_file(&ext.keys).map_err(|e| key_failure(&ext.keys, &e))?;
        let keys = KeySet::verify_only(keys).map_err(|e| key_failure(&ext.keys, &e))?;
        return Ok(Tokens {
            verifier: Verifier::new(Arc::new(keys), vec![ext.issuer.clone()], t.service.clone()),
            issuer: None,
            realm: Some(ext.realm.clone()),
            service: t.service.clone(),
        });
    }
    let key = match &t.signing_key_pem {
        Some(pem) => SigningKey::from_pem(pem).map_err(|e| {
            Failure::operational(format!(
                "token key from REGISTRY_TOKEN_SIGNING_KEY_PEM: {e}"
            ))
        })?,
        None => {
            let path = t
                .signing_key
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("token-signing.pem"));
            let (key, created) =
                SigningKey::load_or_generate(&path).map_err(|e| key_failure(&path, &e))?;
            if created {
                tracing::info!(path = %path.display(), kid = key.kid(), "generated a token signing key");
            }
            if let Ok(Some(mode)) = auth::token::key_file_too_open(&path) {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the token signing key is readable by others");
            }
            key
        }
    };
    let mut keys = KeySet::new(key);
    for old in &t.verify_keys {
        for k in KeySet::load_trusted_file(old).map_err(|e| key_failure(old, &e))? {
            keys.add(k).map_err(|e| key_failure(old, &e))?;
        }
    }
    let mut issuer_cfg = IssuerConfig::new(t.issuer.clone(), t.service.clone());
    issuer_cfg.access_ttl = t.ttl_secs;
    issuer_cfg.refresh_ttl = t.refresh_ttl_secs;
    let issuer = Issuer::new(Arc::new(keys), issuer_cfg)
        .map_err(|e| Failure::operational(format!("token issuer: {e}")))?;
    Ok(Tokens {
        verifier: issuer.verifier(),
        issuer: Some(issuer),
        realm: cfg
            .external_url
            .as_ref()
            .map(|u| format!("{}/token", u.trim_end_matches('/'))),
        service: t.service.clone(),
    })
}
