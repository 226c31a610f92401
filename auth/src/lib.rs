//! Authentication and authorization for the registry, as pure logic.
//!
//! No HTTP, no SQL, no async: the registry crate extracts credentials from
//! requests and stores users, and asks this crate the questions that matter
//! for security, so each answer can be tested exhaustively without a server.
//!
//! - [`scope`]: Docker token scopes (`repository:team/app:pull,push`), parsed
//!   strictly (no traversal, no wildcards in names).
//! - [`glob`]: repository globs for rules and robot scopes (`*` one segment,
//!   `**` any depth).
//! - [`identity`]: who is asking: anonymous, a user (admin flag, groups) or a
//!   robot (its own scopes, an expiry).
//! - [`access`]: the policy from the `[access]` config section and the
//!   decision `(identity, repository, action) -> bool`, plus the token
//!   server's intersection of requested and allowed scopes.
//! - [`password`]: argon2id hashes, robot secrets, constant-time comparison.
//! - [`token`]: ES256 JWTs per the distribution token spec: keys, key sets
//!   with rotation, JWKS, issue and verify, refresh tokens, external issuers.
//! - [`access_key`]: ECR access keys (ID, secret, sealing at rest) and the
//!   12-hour login passwords of `GetAuthorizationToken`.
//! - [`sigv4`]: AWS Signature Version 4 verification (the ECR API).
//! - [`ratelimit`]: failed-login limiting per client address, user name and
//!   known (address, user) pair, with tokens reserved before the check.

pub mod access;
pub mod access_key;
pub mod glob;
pub mod identity;
pub mod password;
pub mod ratelimit;
pub mod scope;
pub mod sigv4;
pub mod token;

pub use access::{AccessConfig, Policy, PolicyError};
pub use identity::{Identity, Robot, User};
pub use scope::{Action, Actions, Resource, Scope, ScopeError};

/// Seconds since the Unix epoch, the unit of every JWT time claim.
///
/// Functions that depend on time take `now` as an argument instead of reading
/// the clock, so tests can pin it; callers pass this.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
