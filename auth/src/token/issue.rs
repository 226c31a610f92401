//! Issuing access and refresh tokens.

use super::verify::Verifier;
use super::{AccessEntry, KeySet, TokenError, REFRESH_TYP, REFRESH_USE};
use crate::identity::Identity;
use crate::scope::Scope;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Default access-token lifetime: the issue's 5 minutes. Long enough for a
/// big layer upload (clients fetch a new token when one expires), short
/// enough that a leaked token is soon worthless.
pub const DEFAULT_ACCESS_TTL: u64 = 300;

/// Default refresh-token lifetime: 90 days, after which `docker login` is
/// needed again. The spec leaves it open ("does not have an expiration");
/// a bound limits what a stolen `~/.docker/config.json` is worth.
pub const DEFAULT_REFRESH_TTL: u64 = 90 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// `iss`: who signs (e.g. the registry's external URL).
    pub issuer: String,
    /// `aud`: the `service` of the `WWW-Authenticate` challenge.
    pub service: String,
    pub access_ttl: u64,
    pub refresh_ttl: u64,
}

impl IssuerConfig {
    pub fn new(issuer: impl Into<String>, service: impl Into<String>) -> IssuerConfig {
        IssuerConfig {
            issuer: issuer.into(),
            service: service.into(),
            access_ttl: DEFAULT_ACCESS_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
        }
    }
}

/// Signs tokens with the key set's signing key.
#[derive(Debug, Clone)]
pub struct Issuer {
    keys: Arc<KeySet>,
    cfg: IssuerConfig,
}

/// A signed token and the numbers the token endpoint answers with.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT. Never log it.
    pub token: String,
    pub jti: String,
    pub issued_at: u64,
    pub expires_at: u64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("jti", &self.jti)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IssuedToken {
    /// `expires_in` of the token response.
    pub fn expires_in(&self) -> u64 {
        self.expires_at.saturating_sub(self.issued_at)
    }

    /// `issued_at` of the token response (RFC 3339, UTC).
    pub fn issued_at_rfc3339(&self) -> String {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.issued_at))
            .to_string()
    }
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: &'a str,
    access: Vec<AccessEntry>,
}

#[derive(Serialize)]
struct RefreshClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: &'a str,
    token_use: &'static str,
    /// The account's credential generation when the token was issued.
    cgen: &'a str,
}

impl Issuer {
    /// Fails if the key set has no signing key (external issuer mode).
    pub fn new(keys: Arc<KeySet>, cfg: IssuerConfig) -> Result<Issuer, TokenError> {
        if keys.signing_key().is_none() {
            return Err(TokenError::NoSigningKey);
        }
        Ok(Issuer { keys, cfg })
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.cfg
    }

    /// A verifier for the tokens this issuer signs: no leeway past `exp`
    /// (our clock set it), the usual one on `nbf`/`iat` (another node's
    /// clock may be a little ahead).
    pub fn verifier(&self) -> Verifier {
        Verifier::new(
            self.keys.clone(),
            vec![self.cfg.issuer.clone()],
            self.cfg.service.clone(),
        )
        .without_expiry_leeway()
    }

    /// An access token granting exactly `granted` (the output of
    /// [`crate::Policy::grant`]) to `who`. Its lifetime is capped at the
    /// identity's own expiry, so a robot's token dies with the robot.
    pub fn issue_access(
        &self,
        who: &Identity,
        granted: &[Scope],
        now: u64,
    ) -> Result<IssuedToken, TokenError> {
        let jti = crate::password::random_token(16);
        let exp = cap(now.saturating_add(self.cfg.access_ttl), who);
        let claims = AccessClaims {
            iss: &self.cfg.issuer,
            sub: who.subject_claim(),
            aud: &self.cfg.service,
            exp,
            nbf: now,
            iat: now,
            jti: &jti,
            access: granted
                .iter()
                .map(|s| AccessEntry {
                    kind: s.resource_type().to_string(),
                    name: s.resource_name().to_string(),
                    actions: s.action_names(),
                })
                .collect(),
        };
        self.sign(Some("JWT"), &claims, jti.clone(), now, exp)
    }

    /// A refresh token for `who` (never for anonymous: there is nobody to
    /// refresh for), bound to the account's credential `generation`: the
    /// server refuses it once the account's generation changed (password
    /// changed, secret rotated, account deleted and made again).
    pub fn issue_refresh(
        &self,
        who: &Identity,
        generation: &str,
        now: u64,
    ) -> Result<IssuedToken, TokenError> {
        if matches!(who, Identity::Anonymous) {
            return Err(TokenError::MissingClaim("sub"));
        }
        let jti = crate::password::random_token(16);
        let exp = cap(now.saturating_add(self.cfg.refresh_ttl), who);
        let claims = RefreshClaims {
            iss: &self.cfg.issuer,
            sub: who.subject_claim(),
            aud: &self.cfg.service,
            exp,
            nbf: now,
            iat: now,
            jti: &jti,
            token_use: REFRESH_USE,
            cgen: generation,
        };
        self.sign(Some(REFRESH_TYP), &claims, jti.clone(), now, exp)
    }

    fn sign<T: Serialize>(
        &self,
        typ: Option<&str>,
        claims: &T,
        jti: String,
        now: u64,
        exp: u64,
    ) -> Result<IssuedToken, TokenError> {
        let key = self.keys.signing_key().ok_or(TokenError::NoSigningKey)?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = typ.map(str::to_string);
        header.kid = Some(key.kid().to_string());
        let token = jsonwebtoken::encode(&header, claims, key.encoding())
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            jti,
            issued_at: now,
            expires_at: exp,
        })
    }
}

fn cap(exp: u64, who: &Identity) -> u64 {
    who.expires_at().map_or(exp, |t| exp.min(t))
}
