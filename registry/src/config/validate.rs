//! The checks a loaded configuration passes before anything starts: keys
//! that go together, safe defaults, well-formed entries of each section.

use super::{AuthMode, Config, StorageConfig};
use crate::failure::Failure;

impl Config {
    pub(super) fn validate(&self) -> Result<(), Failure> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Failure::usage(
                "invalid configuration: tls_cert and tls_key go together",
            ));
        }
        // Safe by default: an open registry only where nobody else reaches.
        if self.auth.is_none() && !self.listen.ip().is_loopback() {
            return Err(Failure::usage(format!(
                "refusing to serve on {} without authentication: anyone who reaches it could push, \
                 overwrite and delete. Set auth = \"token\" (see the README), or auth = \"none\" \
                 to serve openly on purpose",
                self.listen
            )));
        }
        if self.trust_proxy == Some(true) {
            return Err(Failure::usage(
                "invalid configuration: trust_proxy was replaced by trusted_proxies, the addresses \
                 (CIDRs) of your load balancers or ingress, e.g. trusted_proxies = [\"10.0.0.0/16\"] \
                 (REGISTRY_TRUSTED_PROXIES=10.0.0.0/16): trust_proxy = true believed anyone's \
                 X-Forwarded-For. Remove trust_proxy",
            ));
        }
        self.ecr.validate().map_err(Failure::usage)?;
        let mut names = std::collections::HashSet::new();
        for n in &self.notifications {
            if !names.insert(n.name.as_str()) {
                return Err(Failure::usage(format!(
                    "invalid [[notifications]]: two endpoints are named {}",
                    n.name
                )));
            }
            if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
                return Err(Failure::usage(format!(
                    "invalid [[notifications]] entry {}: url must be http:// or https://",
                    n.name
                )));
            }
            if let Some(a) = n.actions.iter().find(|a| *a != "push" && *a != "delete") {
                return Err(Failure::usage(format!(
                    "invalid [[notifications]] entry {}: action {a:?} is neither push nor delete",
                    n.name
                )));
            }
        }
        let mut prefixes = std::collections::HashSet::new();
        for c in &self.cache {
            c.validate().map_err(Failure::usage)?;
            if !prefixes.insert(c.prefix.as_str()) {
                return Err(Failure::usage(format!(
                    "invalid [[cache]]: prefix {} has two rules",
                    c.prefix
                )));
            }
        }
        self.pull_through.validate().map_err(Failure::usage)?;
        let mut seen = std::collections::HashSet::new();
        for q in &self.quotas {
            if q.namespace.contains('/') || storage::names::validate_name(&q.namespace).is_err() {
                return Err(Failure::usage(format!(
                    "invalid [[quotas]] entry: namespace {:?} must be one repository name component (\"team\" for team/app)",
                    q.namespace
                )));
            }
            if q.bytes.is_none() && q.repositories.is_none() {
                return Err(Failure::usage(format!(
                    "invalid [[quotas]] entry for {}: give bytes, repositories or both",
                    q.namespace
                )));
            }
            if !seen.insert(q.namespace.as_str()) {
                return Err(Failure::usage(format!(
                    "invalid [[quotas]]: namespace {} has two entries",
                    q.namespace
                )));
            }
        }
        auth::Policy::from_config(&self.access)
            .map_err(|e| Failure::usage(format!("invalid [access] configuration: {e}")))?;
        if let StorageConfig::S3(s3) = &self.storage {
            s3.validate()
                .map_err(|e| Failure::usage(format!("invalid configuration: {e}")))?;
        }
        if let Some(url) = &self.metadata.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(Failure::usage(
                    "invalid configuration: metadata.url must be a postgres:// URL",
                ));
            }
            // Nodes sharing a database serve one registry: a token from one
            // must verify on all, so the key cannot be each node's own.
            if self.auth == Some(AuthMode::Token)
                && self.token.external.is_none()
                && self.token.signing_key.is_none()
                && self.token.signing_key_pem.is_none()
            {
                return Err(Failure::usage(
                    "invalid configuration: with [metadata] url (nodes sharing one database), \
                     set [token] signing_key to a key file every node has (a secret of your \
                     deployment); otherwise each node signs with a key of its own and tokens \
                     from one node are refused by the others",
                ));
            }
        }
        let positive = [
            ("header_timeout_secs", self.header_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("max_connections", self.max_connections as u64),
            (
                "[login_limit] per_address_burst",
                u64::from(self.login_limit.per_address_burst),
            ),
            (
                "[login_limit] per_address_refill_secs",
                self.login_limit.per_address_refill_secs,
            ),
            (
                "[login_limit] per_user_burst",
                u64::from(self.login_limit.per_user_burst),
            ),
            (
                "[login_limit] per_user_refill_secs",
                self.login_limit.per_user_refill_secs,
            ),
            (
                "[login_limit] max_concurrent_checks",
                self.login_limit.max_concurrent_checks as u64,
            ),
        ];
        // Each a thread and up to 19 MiB: a typo must not make thousands.
        if self.login_limit.max_concurrent_checks > 256 {
            return Err(Failure::usage(
                "invalid configuration: [login_limit] max_concurrent_checks must be at most 256 \
                 (each check holds a thread and 19 MiB while it runs)",
            ));
        }
        for (name, value) in positive {
            if value == 0 {
                return Err(Failure::usage(format!(
                    "invalid configuration: {name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}
