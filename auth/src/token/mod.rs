//! Registry tokens: JWTs per the distribution token spec (`docs/spec/auth/
//! token.md`, `jwt.md`, `oauth.md`).
//!
//! - [`SigningKey`]/[`VerifyingKey`]: ES256 keys, `kid` = RFC 7638
//!   thumbprint (libtrust fingerprint accepted as an alias); PEM files 0600.
//! - [`KeySet`]: one signing key plus retired or external verification keys;
//!   JWKS export; loading a PEM bundle or JWKS file for external issuers.
//! - [`Issuer`]: access tokens (`iss`, `sub`, `aud` = service, `exp` 5 min
//!   by default, `nbf`, `iat`, `jti`, `access`) and refresh tokens.
//! - [`Verifier`]: pins the algorithm to the key named by `kid`, checks the
//!   signature, then `iss`, `aud`, `exp`/`nbf`/`iat` (a clock-skew leeway
//!   past `exp` for other issuers' tokens only); every refusal is a
//!   [`TokenError`] variant.
//!
//! # Refresh tokens
//!
//! A refresh token (the identity token `docker login` stores, used with
//! `grant_type=refresh_token`) is a signed JWT of its own type: header
//! `typ: "refresh+jwt"`, claim `token_use: "refresh"`, no `access`, same
//! `iss`/`aud`/`sub`, 90 days by default. Stateless, so any node with the key
//! can accept it. The access verifier refuses it (wrong type) and the refresh
//! verifier refuses access tokens, so one can never stand in for the other.
//! Revocation without a table: a refresh token carries `cgen`, the
//! account's credential generation when it was issued (a random value the
//! account row keeps, new when the account is made, its password changed or
//! its secret rotated); the server refuses it once the row's generation
//! differs or the row is gone. So deleting a robot and adding one of the
//! same name, rotating its secret, changing a password or re-creating a
//! user all revoke it, whatever the clocks say. Rotating the key revokes
//! all of them. An opaque secret in the database was the alternative; it
//! buys per-token revocation for a table and a write per login, which we do
//! not need yet.
//!
//! # Caching
//!
//! With the pure-Rust backend an ES256 signature costs about 0.27 ms to make
//! and 0.28 ms to check (`cargo run --release -p auth --example auth_bench`
//! on the 2-core dev machine), against 0.4 µs for [`token_hash`] and 50 ns
//! for a cached [`VerifiedToken::allows`]: the server verifies a token once
//! and caches its claims by [`token_hash`] until it expires.

mod issue;
mod keys;
mod keyset;
mod verify;

pub use issue::{IssuedToken, Issuer, IssuerConfig};
#[cfg(unix)]
pub use keys::key_file_too_open;
pub use keys::{libtrust_fingerprint, KeyAlg, KeyError, SigningKey, VerifyingKey};
pub use keyset::{parse_jwks, parse_pem_bundle, KeySet};
pub use verify::{RefreshToken, VerifiedToken, Verifier};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Header `typ` of refresh tokens (RFC 8725 §3.11 explicit typing).
pub const REFRESH_TYP: &str = "refresh+jwt";

/// Value of the `token_use` claim of refresh tokens.
pub const REFRESH_USE: &str = "refresh";

/// Tokens longer than this are refused before any parsing. Ours with the
/// maximum 64 scopes stay under 10 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Cache key for a verified token: SHA-256 of the compact token. Cheap
/// (about a microsecond), and the token itself never needs to be kept in
/// memory as a map key.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// Every reason a token is refused. The registry answers 401 with
/// `error="invalid_token"` for all of them; the variant goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0:?} not accepted")]
    AlgorithmNotAllowed(String),
    #[error("token header has no kid")]
    MissingKid,
    #[error("token signed by an unknown key (kid {0:?})")]
    UnknownKid(String),
    #[error("token header has critical extensions we do not implement")]
    CriticalHeader,
    #[error("wrong token type (an access token where a refresh token belongs, or the reverse)")]
    WrongType,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("token issued in the future ({iat}, now {now})")]
    IssuedInFuture { iat: u64, now: u64 },
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token from an untrusted issuer {0:?}")]
    WrongIssuer(String),
    #[error("token lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("no signing key: this key set only verifies")]
    NoSigningKey,
    #[error("key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

#[cfg(test)]
mod tests;
