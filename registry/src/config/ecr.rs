//! `[ecr]`: the ECR API's identifiers and where its access-key secrets are
//! sealed (see `auth::access_key` for why sealed, not hashed).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcrConfig {
    /// The 12-digit account ID in ARNs, `registryId` and repository URIs.
    pub registry_id: String,
    /// The region in ARNs, and the one SigV4 credential scopes must name.
    pub region: String,
    /// The path ECR's JSON requests are POSTed to.
    pub path: String,
    /// The 32-byte key that seals access-key secrets [default:
    /// `<data_dir>/ecr-secrets.key`, generated on first use, mode 0600].
    /// Every node of a cluster and the CLI must use the same one.
    pub secret_key_file: Option<PathBuf>,
    /// The largest ECR request body (an `UploadLayerPart` of 20 MiB is
    /// about 27 MiB in base64).
    pub max_request_bytes: usize,
}

impl Default for EcrConfig {
    fn default() -> Self {
        EcrConfig {
            registry_id: "000000000000".into(),
            region: "us-east-1".into(),
            path: "/".into(),
            secret_key_file: None,
            max_request_bytes: 32 << 20,
        }
    }
}

impl EcrConfig {
    pub fn secret_key_path(&self, data_dir: &Path) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("ecr-secrets.key"))
    }

    /// The key sealing access-key secrets, made on first use.
    pub fn seal_key(
        &self,
        data_dir: &Path,
    ) -> Result<auth::access_key::SealKey, crate::failure::Failure> {
        let path = self.secret_key_path(data_dir);
        let (key, made) = auth::access_key::SealKey::load_or_generate(&path)
            .map_err(|e| crate::failure::Failure::operational(format!("ECR secret key: {e}")))?;
        if made {
            tracing::info!(path = %path.display(), "generated the key that seals ECR access-key secrets");
        }
        Ok(key)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.registry_id.len() != 12 || !self.registry_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "[ecr] registry_id must be 12 digits, like an AWS account ID (not {:?})",
                self.registry_id
            ));
        }
        let region_ok = !self.region.is_empty()
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(format!(
                "[ecr] region must look like an AWS region (us-east-1), not {:?}",
                self.region
            ));
        }
        if !self.path.starts_with('/')
            || ["/v2", "/api/", "/ui", "/token"]
                .iter()
                .any(|p| self.path != "/" && self.path.starts_with(p))
        {
            return Err(format!(
                "[ecr] path must start with / and not be under /v2, /api, /ui or /token (not {:?})",
                self.path
            ));
        }
        Ok(())
    }

    /// `arn:aws:ecr:REGION:ID:repository/NAME`.
    pub fn repository_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            self.region, self.registry_id
        )
    }

    /// The repository an ARN of ours names.
    pub fn repository_of_arn<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let prefix = format!(
            "arn:aws:ecr:{}:{}:repository/",
            self.region, self.registry_id
        );
        arn.strip_prefix(prefix.as_str()).filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_settings_are_checked() {
        let c = EcrConfig::default();
        assert!(c.validate().is_ok());
        let arn = c.repository_arn("team/app");
        assert_eq!(
            arn,
            "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
        );
        assert_eq!(c.repository_of_arn(&arn), Some("team/app"));
        assert_eq!(
            c.repository_of_arn("arn:aws:ecr:eu-west-1:000000000000:repository/x"),
            None
        );
        for bad in [
            EcrConfig {
                registry_id: "12".into(),
                ..EcrConfig::default()
            },
            EcrConfig {
                region: "US East".into(),
                ..EcrConfig::default()
            },
            EcrConfig {
                path: "/v2/x".into(),
                ..EcrConfig::default()
            },
            EcrConfig {
                path: "ecr".into(),
                ..EcrConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
