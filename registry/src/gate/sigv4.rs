//! The ECR API's credentials at the gate: SigV4 signatures over whole
//! requests (the verification itself is `auth::sigv4`'s), made with access
//! keys whose secrets the database keeps sealed, and the 12-hour
//! passwords of `GetAuthorizationToken` that `docker login --username AWS`
//! presents. Either way the caller is the key's account, under the same
//! `[access]` rules as its Basic credentials; a disabled or deleted key,
//! or a deleted or expired account, stops working at once.
//!
//! Failures count against the login limiter (per client address and key
//! ID), like wrong passwords; a throttled client is refused before any
//! check.

use super::decide::{Access, Subject as Now};
use super::{AuthError, Caller, Gate, Passed};
use crate::config::Config;
use crate::failure::Failure;
use crate::http::ecr_error::EcrError;
use auth::access_key::{self, SealKey};
use auth::sigv4::{self, Authorization, SigError};
use auth::Identity;
use axum::http::{header, HeaderMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// The signing service name of ECR.
const SERVICE: &str = "ecr";

pub(super) struct EcrKeys {
    seal: SealKey,
    regions: Vec<String>,
}

impl EcrKeys {
    pub(super) fn new(cfg: &Config) -> Result<EcrKeys, Failure> {
        let seal = cfg.ecr.seal_key(&cfg.data_dir)?;
        Ok(EcrKeys {
            seal,
            regions: vec![cfg.ecr.region.clone()],
        })
    }
}

fn refusal(e: SigError) -> EcrError {
    match e {
        SigError::Missing | SigError::UnknownKey => {
            EcrError::new("UnrecognizedClientException", e.to_string())
        }
        SigError::Malformed(_) => EcrError::new("IncompleteSignatureException", e.to_string()),
        _ => EcrError::new("InvalidSignatureException", e.to_string()),
    }
}

/// What checking a key found.
enum Checked {
    Ok(Arc<Identity>),
    /// Unknown, disabled, its account gone: the caller's fault.
    Refused(SigError),
    /// The database or the server key failed: nobody's fault.
    Failed(EcrError),
}

impl Gate {
    fn ecr_keys(&self) -> &EcrKeys {
        self.ecr.as_ref().expect("token mode has ECR keys")
    }

    /// The live key `id`'s secret and account: `Refused` if the key is
    /// unknown or disabled, or its account gone or expired.
    async fn access_key_account(&self, id: &str) -> Result<(String, Arc<Identity>), Checked> {
        let row = match self.registry.accounts().access_key(id).await {
            Ok(Some(row)) if row.disabled_at.is_none() => row,
            Ok(_) => return Err(Checked::Refused(SigError::UnknownKey)),
            Err(e) => return Err(Checked::Failed(EcrError::from_storage(&e, ""))),
        };
        let secret = self
            .ecr_keys()
            .seal
            .open(&row.id, &row.sealed_secret)
            .map_err(|e| {
                tracing::error!(key = %row.id, error = %e, "an access key's secret does not open");
                Checked::Failed(EcrError::server(
                    "the access key's secret cannot be read here (another [ecr] secret_key_file?)",
                ))
            })?;
        let id = match self.identity_of(&row.owner).await {
            Ok(Some(id)) if id.is_active(auth::now_unix()) => id,
            Ok(_) => return Err(Checked::Refused(SigError::UnknownKey)),
            Err(AuthError::Unavailable(e)) => {
                return Err(Checked::Failed(EcrError::from_storage(&e, "")))
            }
            Err(_) => return Err(Checked::Refused(SigError::UnknownKey)),
        };
        // When it was last used, for `registry access-key list`; a
        // failure to note it fails nothing.
        let registry = self.registry.clone();
        let key = row.id.clone();
        tokio::spawn(async move {
            let _ = registry
                .accounts()
                .touch_access_key(&key, auth::now_unix() as i64)
                .await;
        });
        Ok((secret, id))
    }

    async fn check_signature(
        &self,
        auth: &Authorization,
        req: &sigv4::Request<'_>,
        at: u64,
    ) -> Checked {
        let (secret, id) = match self.access_key_account(&auth.access_key_id).await {
            Ok(found) => found,
            Err(checked) => return checked,
        };
        match sigv4::verify(auth, req, &secret, at) {
            Ok(()) => Checked::Ok(id),
            Err(e) => Checked::Refused(e),
        }
    }

    /// Who signed an ECR request: its key's account, or the refusal in
    /// ECR's shape. Authentication off: anyone may do anything, signed or
    /// not (as on the other surfaces).
    pub async fn identify_sigv4(
        self: &Arc<Self>,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        client: IpAddr,
    ) -> Result<Access, EcrError> {
        if !self.enabled() {
            return Ok(Access::open(self.clone()));
        }
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let auth = Authorization::parse(value).map_err(refusal)?;
        let req = sigv4::Request {
            method,
            path_and_query,
            headers: headers
                .iter()
                .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
                .collect(),
            body,
        };
        let keys = self.ecr_keys();
        let at = sigv4::check_scope(&auth, &req, SERVICE, &keys.regions, auth::now_unix())
            .map_err(refusal)?;
        // Throttled clients are refused before any work; a failure counts
        // against the address and the key (no reservation: valid requests
        // at once must never throttle each other).
        self.checks
            .limiter()
            .admit(client, Some(&auth.access_key_id), Instant::now())
            .map_err(|r| EcrError::throttled(r.seconds()))?;
        match self.check_signature(&auth, &req, at).await {
            Checked::Ok(id) => Ok(Access {
                gate: self.clone(),
                caller: Caller::Known(id),
                subject: Now::NotOurs,
                session: None,
                access_key: Some(auth.access_key_id),
            }),
            Checked::Refused(e) => {
                self.checks.limiter().record_failure(
                    client,
                    Some(&auth.access_key_id),
                    Instant::now(),
                );
                crate::observe::metrics::auth_failure("invalid_signature");
                Err(refusal(e))
            }
            Checked::Failed(e) => Err(e),
        }
    }

    /// What can be judged of a SigV4 request before its body is read: that
    /// it is signed at all, for this service and region, at a time within
    /// the window (so no unsigned client makes the server buffer a body).
    pub fn sigv4_presented(&self, headers: &HeaderMap) -> Result<(), EcrError> {
        if !self.enabled() {
            return Ok(());
        }
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let auth = Authorization::parse(value).map_err(refusal)?;
        let req = sigv4::Request {
            method: "POST",
            path_and_query: "/",
            headers: headers
                .iter()
                .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
                .collect(),
            body: &[],
        };
        sigv4::check_scope(
            &auth,
            &req,
            SERVICE,
            &self.ecr_keys().regions,
            auth::now_unix(),
        )
        .map(|_| ())
        .map_err(refusal)
    }

    /// A `GetAuthorizationToken` password for key `id`, and when it
    /// expires (Unix seconds).
    pub async fn ecr_login_password(&self, id: &str) -> Result<(String, u64), EcrError> {
        let (secret, _) = self.access_key_account(id).await.map_err(|c| match c {
            Checked::Failed(e) => e,
            Checked::Refused(e) => refusal(e),
            Checked::Ok(_) => EcrError::server("unreachable"),
        })?;
        let expires = auth::now_unix() + access_key::LOGIN_TTL_SECS;
        Ok((access_key::login_password(id, &secret, expires), expires))
    }

    /// `AWS` and a login password (Basic, at `/token` or `/v2/`): the key's
    /// account while the password has not expired and the key is live.
    pub(super) async fn check_ecr_login(
        &self,
        password: &str,
        client: IpAddr,
    ) -> Result<Passed, AuthError> {
        const WRONG: AuthError = AuthError::Invalid("incorrect user name or password");
        // Limited per key, not per "AWS" (every ECR login's user name: one
        // client's failures must not throttle everyone's logins).
        let user = access_key::parse_login_password(password).map(|(id, _)| id);
        self.checks
            .limiter()
            .admit(client, user, Instant::now())
            .map_err(|r| AuthError::Throttled(r.seconds()))?;
        let outcome = match (access_key::parse_login_password(password), &self.ecr) {
            (Some((id, _)), Some(_)) => match self.access_key_account(id).await {
                Ok((secret, who))
                    if access_key::verify_login_password(password, &secret, auth::now_unix()) =>
                {
                    Ok(who)
                }
                Ok(_) | Err(Checked::Refused(_)) | Err(Checked::Ok(_)) => Err(WRONG),
                Err(Checked::Failed(e)) => Err(AuthError::Unavailable(storage::Error::new(
                    storage::ErrorCode::Unavailable,
                    e.message,
                ))),
            },
            _ => Err(WRONG),
        };
        match outcome {
            // No credential generation: no refresh token outlives the
            // password (docker presents the password again instead).
            Ok(id) => Ok(Passed {
                id,
                generation: "".into(),
            }),
            Err(AuthError::Invalid(m)) => {
                self.checks
                    .limiter()
                    .record_failure(client, user, Instant::now());
                Err(AuthError::Invalid(m))
            }
            Err(e) => Err(e),
        }
    }
}
