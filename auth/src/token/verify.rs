//! Token verification, in the order that refuses forgeries before reading
//! anything the forger controls:
//!
//! 1. size and shape (three base64url parts);
//! 2. the header alone: `alg` must be ES256 or RS256 (so `none`, HS*, ... are
//!    refused by name), no `crit`, the right `typ`, and a `kid` naming a key
//!    we trust whose bound algorithm is exactly this `alg`;
//! 3. the signature with that key (`jsonwebtoken`, its algorithm list pinned
//!    to the one algorithm);
//! 4. only then the claims: `iss` trusted, `aud` is our service, `exp`
//!    present and not past, `nbf` and `iat` not in the future, with a
//!    small leeway for clock skew. `x5c`/`jwk` headers are ignored: a key
//!    carried by the token itself is never trusted.
//!
//! The leeway on `exp` is only for tokens of another issuer, whose clock is
//! not ours ([`Verifier::new`]); the verifier of our own tokens
//! ([`super::Issuer::verifier`]) has none there, so a token of ours is dead
//! the second its `exp` passes. It keeps the leeway on `nbf` and `iat`:
//! nodes sharing the signing key may run slightly apart, and accepting a
//! token a little early does not lengthen its life.

use super::keys::VerifyingKey;
use super::{AccessEntry, KeySet, TokenError, MAX_TOKEN_LEN, REFRESH_TYP, REFRESH_USE};
use crate::scope::{Action, Actions};
use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::sync::Arc;

/// Default clock-skew allowance for another issuer's tokens. Distribution
/// uses 60 s; our access tokens live 5 minutes, so half that keeps the
/// overrun small.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Checks tokens against a key set, trusted issuers and our audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Arc<KeySet>,
    issuers: Vec<String>,
    audience: String,
    /// Allowance on `nbf` and `iat` (not yet valid, issued in the future).
    leeway: u64,
    /// Allowance past `exp`.
    exp_leeway: u64,
}

/// A verified access token: who, until when, and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`: empty for anonymous; see [`crate::identity::Subject::parse`].
    pub subject: String,
    pub issuer: String,
    pub expires_at: u64,
    pub jti: Option<String>,
    /// The `kid` that verified it (for logs during key rotation).
    pub kid: String,
    repositories: HashMap<String, Actions>,
    catalog: bool,
    admin: bool,
}

impl VerifiedToken {
    /// Whether the token grants `action` on repository `repo`.
    pub fn allows(&self, repo: &str, action: Action) -> bool {
        self.actions_on(repo).contains(action)
    }

    pub fn actions_on(&self, repo: &str) -> Actions {
        self.repositories.get(repo).copied().unwrap_or_default()
    }

    /// Whether the token grants `registry:catalog:*`.
    pub fn allows_catalog(&self) -> bool {
        self.catalog
    }

    /// Whether the token grants `registry:admin:*`.
    pub fn allows_admin(&self) -> bool {
        self.admin
    }
}

/// A verified refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub subject: String,
    /// Compare with the account's last credential change to revoke (for
    /// tokens issued before credential generations existed).
    pub issued_at: u64,
    /// The account's credential generation it was issued against (`cgen`;
    /// empty in tokens from before generations existed).
    pub generation: String,
    pub expires_at: u64,
    pub jti: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Claims as other issuers may send them: everything optional (we decide
/// what is required), `aud` string or array, times possibly fractional.
#[derive(Deserialize)]
struct Incoming {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
    jti: Option<String>,
    #[serde(default)]
    access: Option<Vec<AccessEntry>>,
    token_use: Option<String>,
    cgen: Option<String>,
}

/// RFC 7519 NumericDate: a JSON number, possibly non-integer; negative
/// values (before 1970) clamp to 0.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(n.and_then(|n| {
        n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.max(0.0) as u64)
        })
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
}

impl Verifier {
    /// Accepts tokens signed by `keys`, issued by one of `issuers`, for
    /// `audience` (the registry's service name).
    pub fn new(keys: Arc<KeySet>, issuers: Vec<String>, audience: impl Into<String>) -> Verifier {
        Verifier {
            keys,
            issuers,
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY_SECS,
            exp_leeway: DEFAULT_LEEWAY_SECS,
        }
    }

    /// The same allowance on every time claim.
    pub fn with_leeway(mut self, secs: u64) -> Verifier {
        self.leeway = secs;
        self.exp_leeway = secs;
        self
    }

    /// No allowance past `exp` (tokens this process's issuer signed: the
    /// clock that set `exp` is ours).
    pub fn without_expiry_leeway(mut self) -> Verifier {
        self.exp_leeway = 0;
        self
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Verifies an access token (the `Bearer` of a registry request).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        let (key, c) = self.check(token, now, Kind::Access)?;
        let mut repositories: HashMap<String, Actions> = HashMap::new();
        let mut catalog = false;
        let mut admin = false;
        for e in c.access.unwrap_or_default() {
            let actions = e
                .actions
                .iter()
                .fold(Actions::NONE, |acc, a| match a.as_str() {
                    "*" => Actions::ALL,
                    _ => Action::parse(a).map_or(acc, |x| acc.with(x)),
                });
            match e.kind.as_str() {
                "repository" => {
                    let slot = repositories.entry(e.name).or_default();
                    *slot = slot.union(actions);
                }
                "registry" if e.name == "catalog" => {
                    catalog |= e.actions.iter().any(|a| a == "*");
                }
                "registry" if e.name == "admin" => {
                    admin |= e.actions.iter().any(|a| a == "*");
                }
                // Types we do not serve grant nothing here.
                _ => {}
            }
        }
        Ok(VerifiedToken {
            subject: c.sub.unwrap_or_default(),
            issuer: c.iss.unwrap_or_default(),
            expires_at: c.exp.unwrap_or_default(),
            jti: c.jti,
            kid: key.kid().to_string(),
            repositories,
            catalog,
            admin,
        })
    }

    /// Verifies a refresh token (the `refresh_token` of an OAuth2 request).
    pub fn verify_refresh(&self, token: &str, now: u64) -> Result<RefreshToken, TokenError> {
        let (_, c) = self.check(token, now, Kind::Refresh)?;
        let subject = c
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::MissingClaim("sub"))?;
        Ok(RefreshToken {
            subject,
            issued_at: c.iat.ok_or(TokenError::MissingClaim("iat"))?,
            generation: c.cgen.unwrap_or_default(),
            expires_at: c.exp.unwrap_or_default(),
            jti: c.jti,
        })
    }

    fn check(
        &self,
        token: &str,
        now: u64,
        kind: Kind,
    ) -> Result<(&VerifyingKey, Incoming), TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("expected three dot-separated parts"));
        };
        let header: RawHeader = BASE64URL_NOPAD
            .decode(h.as_bytes())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed("header is not base64url JSON"))?;

        let alg = header.alg.unwrap_or_default();
        if alg != "ES256" && alg != "RS256" {
            return Err(TokenError::AlgorithmNotAllowed(clip(&alg)));
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let typ_ok = match (kind, header.typ.as_deref()) {
            (Kind::Access, None) => true,
            (Kind::Access, Some(t)) => t.eq_ignore_ascii_case("JWT"),
            (Kind::Refresh, Some(t)) => t == REFRESH_TYP,
            (Kind::Refresh, None) => false,
        };
        if !typ_ok {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let key = self
            .keys
            .find(&kid)
            .ok_or_else(|| TokenError::UnknownKid(clip(&kid)))?;
        if key.alg().jose_name() != alg {
            // E.g. HS256 or RS256 with the kid of an EC key.
            return Err(TokenError::AlgorithmNotAllowed(alg));
        }

        let mut v = jsonwebtoken::Validation::new(key.alg().jwt());
        // Time, audience and issuer are checked below with our clock and
        // our error variants; jsonwebtoken checks the signature only.
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        let c = jsonwebtoken::decode::<Incoming>(token, key.decoding(), &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    TokenError::AlgorithmNotAllowed(alg.clone())
                }
                jsonwebtoken::errors::ErrorKind::Base64(_)
                | jsonwebtoken::errors::ErrorKind::Json(_)
                | jsonwebtoken::errors::ErrorKind::Utf8(_) => {
                    TokenError::Malformed("payload or signature is not valid")
                }
                // A signature of the wrong size, a bad key: refuse as forged.
                _ => TokenError::BadSignature,
            })?
            .claims;

        let is_refresh = c.token_use.as_deref() == Some(REFRESH_USE);
        if is_refresh != (kind == Kind::Refresh) {
            return Err(TokenError::WrongType);
        }
        let iss = c.iss.as_deref().ok_or(TokenError::MissingClaim("iss"))?;
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(TokenError::WrongIssuer(clip(iss)));
        }
        let aud_ok = match &c.aud {
            Some(Audience::One(a)) => *a == self.audience,
            Some(Audience::Many(v)) => v.contains(&self.audience),
            None => false,
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience);
        }
        let exp = c.exp.ok_or(TokenError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(self.exp_leeway) {
            return Err(TokenError::Expired { exp, now });
        }
        if let Some(nbf) = c.nbf {
            if now.saturating_add(self.leeway) < nbf {
                return Err(TokenError::NotYetValid { nbf, now });
            }
        }
        if let Some(iat) = c.iat {
            if now.saturating_add(self.leeway) < iat {
                return Err(TokenError::IssuedInFuture { iat, now });
            }
        }
        Ok((key, c))
    }
}

/// Values in errors come from the token; bound them for logs.
fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}
