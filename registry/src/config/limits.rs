//! `[login_limit]`: the failed-login buckets and the cap on password checks
//! running at once.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[login_limit]`: failed logins allowed per client address and per user
/// name. Each is a token bucket: `*_burst` failures at once, then one more
/// per `*_refill_secs`; while either is empty, logins from addresses not
/// known to the account get 429 (see [`auth::ratelimit`]).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginLimitConfig {
    pub per_address_burst: u32,
    pub per_address_refill_secs: u64,
    pub per_user_burst: u32,
    pub per_user_refill_secs: u64,
    /// Password (argon2id) checks running at once, 19 MiB of memory each;
    /// more wait a moment for a slot, then get 503 with `Retry-After`.
    pub max_concurrent_checks: usize,
}

/// Four checks (76 MiB) keep two cores busy with argon2id and leave the
/// memory of a 1 GiB container to requests; more would not check faster.
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 4;

impl Default for LoginLimitConfig {
    fn default() -> Self {
        let d = auth::ratelimit::LimitConfig::default();
        LoginLimitConfig {
            per_address_burst: d.per_address.burst,
            per_address_refill_secs: d.per_address.refill.as_secs(),
            per_user_burst: d.per_user.burst,
            per_user_refill_secs: d.per_user.refill.as_secs(),
            max_concurrent_checks: DEFAULT_MAX_CONCURRENT_CHECKS,
        }
    }
}

impl LoginLimitConfig {
    pub fn limits(&self) -> auth::ratelimit::LimitConfig {
        use auth::ratelimit::BucketConfig;
        auth::ratelimit::LimitConfig {
            per_address: BucketConfig {
                burst: self.per_address_burst,
                refill: Duration::from_secs(self.per_address_refill_secs),
            },
            per_user: BucketConfig {
                burst: self.per_user_burst,
                refill: Duration::from_secs(self.per_user_refill_secs),
            },
            ..auth::ratelimit::LimitConfig::default()
        }
    }
}

/// `[layers]`: what indexing one layer's files may spend (the files
/// view, `registry files`). A layer over a limit gets a "too large to
/// index" answer, kept so it is not tried again.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LayersConfig {
    /// Entries (files, directories, links) in one layer.
    pub max_entries: u64,
    /// Bytes one layer may unpack to (a gzip bomb stops here).
    pub max_unpacked_bytes: u64,
    /// Seconds one layer's indexing may take.
    pub max_index_secs: u64,
}

impl Default for LayersConfig {
    fn default() -> Self {
        let d = storage::layers::Limits::default();
        LayersConfig {
            max_entries: d.max_entries,
            max_unpacked_bytes: d.max_tar_bytes,
            max_index_secs: d.max_time.as_secs(),
        }
    }
}

impl LayersConfig {
    pub fn limits(&self) -> storage::layers::Limits {
        storage::layers::Limits {
            max_entries: self.max_entries,
            max_tar_bytes: self.max_unpacked_bytes,
            max_time: Duration::from_secs(self.max_index_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ServeArgs};
    use std::time::Duration;

    #[test]
    fn login_limit_section() {
        let d = Config::default().login_limit.limits();
        assert_eq!(d, auth::ratelimit::LimitConfig::default());
        let cfg: Config =
            toml::from_str("[login_limit]\nper_address_burst = 3\nper_user_refill_secs = 60\n")
                .unwrap();
        cfg.validate().unwrap();
        let l = cfg.login_limit.limits();
        assert_eq!(l.per_address.burst, 3);
        assert_eq!(l.per_user.refill, Duration::from_secs(60));
        assert_eq!(
            l.per_address.refill, d.per_address.refill,
            "unset keys keep defaults"
        );
        let zero: Config = toml::from_str("[login_limit]\nper_user_burst = 0\n").unwrap();
        let e = zero.validate().unwrap_err();
        assert!(e.to_string().contains("per_user_burst"), "{e}");
        assert!(toml::from_str::<Config>("[login_limit]\nburst = 3\n").is_err());
    }

    #[test]
    fn max_concurrent_checks_is_set_and_positive() {
        assert_eq!(Config::default().login_limit.max_concurrent_checks, 4);
        let cfg: Config = toml::from_str("[login_limit]\nmax_concurrent_checks = 2\n").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.login_limit.max_concurrent_checks, 2);
        let zero: Config = toml::from_str("[login_limit]\nmax_concurrent_checks = 0\n").unwrap();
        let e = zero.validate().unwrap_err();
        assert!(e.to_string().contains("max_concurrent_checks"), "{e}");
        let huge: Config = toml::from_str("[login_limit]\nmax_concurrent_checks = 5000\n").unwrap();
        let e = huge.validate().unwrap_err();
        assert!(e.to_string().contains("at most 256"), "{e}");
    }

    #[test]
    fn trusted_proxies_from_the_file_the_environment_and_flags() {
        let cfg: Config = toml::from_str(
            "trusted_proxies = [\"10.0.0.0/16\", \"192.168.1.7\"]\nforwarded_header = \"forwarded\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        let nets: Vec<String> = cfg.trusted_proxies.iter().map(|c| c.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/16", "192.168.1.7/32"]);
        assert_eq!(
            cfg.forwarded_header,
            crate::http::forwarded::ForwardedHeader::Forwarded
        );
        assert!(cfg
            .to_toml()
            .contains("trusted_proxies = [\"10.0.0.0/16\", \"192.168.1.7/32\"]"));
        let e = toml::from_str::<Config>("trusted_proxies = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/40"), "{e}");
        // The flag (and REGISTRY_TRUSTED_PROXIES) take a comma-separated list.
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli =
            Cli::try_parse_from(["serve", "--trusted-proxies", "10.0.0.0/8,127.0.0.1"]).unwrap();
        let cfg = Config::load(&cli.serve).unwrap();
        assert_eq!(cfg.trusted_proxies.len(), 2);
        assert!(Cli::try_parse_from(["serve", "--trusted-proxies", "nope"]).is_err());
    }

    #[test]
    fn the_old_trust_proxy_key_is_refused_with_directions() {
        let cfg: Config = toml::from_str("trust_proxy = true\n").unwrap();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("trusted_proxies"), "{e}");
        // `false` said what the default says: accepted, and not shown.
        let cfg: Config = toml::from_str("trust_proxy = false\n").unwrap();
        cfg.validate().unwrap();
        let cfg = Config::load(&ServeArgs {
            trust_proxy: Some(true),
            ..Default::default()
        });
        assert!(cfg.unwrap_err().to_string().contains("trusted_proxies"));
        assert!(!Config::default().to_toml().contains("trust_proxy ="));
    }
}
