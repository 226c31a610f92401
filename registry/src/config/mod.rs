//! Configuration: defaults, then a TOML file, then environment variables and
//! flags (clap gives flags precedence over their `REGISTRY_*` variables).

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::failure::{io_reason, Failure};
use crate::http::watch::Timeouts;

mod ecr;
mod limits;
mod serve_args;
mod validate;

#[cfg(test)]
mod reference;

pub use ecr::EcrConfig;
pub use limits::{LayersConfig, LoginLimitConfig};
pub use serve_args::ServeArgs;

pub use crate::observe::logging::LogFormat;

/// Whether requests must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anyone who reaches the registry may do anything.
    None,
    /// Docker token authentication and the `[access]` rules.
    Token,
}

/// `[token]`: the token server (or the external one whose tokens we take).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// `service` of the challenge and `aud` of tokens.
    pub service: String,
    /// `iss` of the tokens we sign.
    pub issuer: String,
    /// Lifetime of access tokens.
    pub ttl_secs: u64,
    /// Lifetime of refresh tokens (`docker login`'s identity token).
    pub refresh_ttl_secs: u64,
    /// PEM of the signing key [default: <data_dir>/token-signing.pem,
    /// generated on first start with mode 0600].
    pub signing_key: Option<PathBuf>,
    /// The signing key's PEM itself, for platforms that pass secrets as
    /// environment variables (`REGISTRY_TOKEN_SIGNING_KEY_PEM`); wins over
    /// `signing_key`.
    pub signing_key_pem: Option<String>,
    /// Retired public keys (PEM or JWKS files) whose tokens still verify
    /// during a rotation.
    pub verify_keys: Vec<PathBuf>,
    /// Take tokens of another token server instead of issuing our own.
    pub external: Option<ExternalIssuer>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            service: "registry".into(),
            issuer: "registry".into(),
            ttl_secs: 300,
            refresh_ttl_secs: 90 * 24 * 3600,
            signing_key: None,
            signing_key_pem: None,
            verify_keys: Vec::new(),
            external: None,
        }
    }
}

/// `[token.external]`: the CNCF registry's `auth.token` mode.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuer {
    /// Where clients get tokens (the challenge's realm).
    pub realm: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Its public keys: a PEM bundle (certificates or keys) or a JWKS file.
    pub keys: PathBuf,
}

/// `[storage]`: where blobs live.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StorageConfig {
    /// Under `data_dir` (the default).
    #[default]
    Local,
    /// In an S3 bucket (`bucket`, `prefix`, `region`, `endpoint`, ...).
    S3(storage::blobstore::S3Config),
}

/// `[metadata]`: where tags, manifests, links, sessions and accounts live.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// `postgres://user:password@host:port/db` for PostgreSQL, shared by
    /// several nodes [default: SQLite in data_dir].
    pub url: Option<String>,
    /// The database password, when it is kept out of the URL (an
    /// orchestrator's secret in `REGISTRY_METADATA_PASSWORD`).
    pub password: Option<String>,
}

/// `[gc]`: online garbage collection (README, "Garbage collection").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Collect every this many seconds in the background; 0: only on
    /// demand (`registry gc`).
    pub interval_secs: u64,
    /// What became unreferenced less than this long ago is kept: a push in
    /// flight (blobs first, manifest last) never loses its blobs.
    pub grace_secs: u64,
    /// A manifest a tag pointed at stays restorable (rollback) this long.
    pub retention_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval_secs: 3600,
            grace_secs: 3600,
            retention_secs: 7 * 86_400,
        }
    }
}

/// The resolved configuration of `registry serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding blobs, upload sessions and the SQLite database.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Largest blob accepted, in bytes (unlimited when absent).
    pub max_blob_bytes: Option<u64>,
    /// Whether manifest, tag and blob deletes are allowed.
    pub delete_enabled: bool,
    /// Upload sessions idle this long are discarded.
    pub upload_ttl_secs: u64,
    /// Seconds allowed for in-flight requests to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// On SIGTERM, fail `/readyz` and keep serving this long before
    /// stopping, so a load balancer stops sending requests first.
    pub shutdown_drain_secs: u64,
    /// A request head (line and headers) must arrive within this many
    /// seconds of its first byte, or of the accept on a new connection.
    pub header_timeout_secs: u64,
    /// A keep-alive connection with no request for this long is closed.
    /// Keep it above a load balancer's idle timeout (60 s on AWS ALB).
    pub idle_timeout_secs: u64,
    /// An upload body (or a download the client stopped reading) that makes
    /// no progress for this long is abandoned: stalled, not slow.
    pub body_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Milliseconds a write waits for the database lock before the request
    /// is answered 503.
    pub db_busy_timeout_ms: u64,
    /// Load balancers and proxies (CIDRs) whose forwarding headers are
    /// believed: the client address (for login limits and the access log)
    /// and the original scheme (cookies, the token realm); see
    /// [`crate::http::forwarded`].
    pub trusted_proxies: Vec<crate::http::forwarded::Cidr>,
    /// The header they append the client's address to.
    pub forwarded_header: crate::http::forwarded::ForwardedHeader,
    /// Replaced by `trusted_proxies`; `true` is refused with an explanation
    /// (it believed anyone's `X-Forwarded-For`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_proxy: Option<bool>,
    /// Authentication. Unset: off, and only a loopback address may be
    /// served; `"none"` says so on purpose; `"token"` turns it on.
    pub auth: Option<AuthMode>,
    /// The URL clients reach the registry at (`https://registry.example.com`):
    /// the token realm is its `/token` [default: from each request's Host].
    pub external_url: Option<String>,
    pub token: TokenConfig,
    pub access: auth::AccessConfig,
    pub login_limit: LoginLimitConfig,
    /// TLS certificate chain and key (PEM); both or neither. Reloaded on
    /// SIGHUP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long a web sign-in lasts.
    pub session_ttl_secs: u64,
    pub storage: StorageConfig,
    pub metadata: MetadataConfig,
    pub gc: GcConfig,
    /// `[[quotas]]`: limits per repository namespace (`namespace`,
    /// `bytes`, `repositories`).
    pub quotas: Vec<storage::Quota>,
    /// `[[notifications]]`: webhook endpoints told of pushes and deletes.
    pub notifications: Vec<crate::observe::notify::Endpoint>,
    /// Undelivered events older than this are dropped (the queue's bound).
    pub notifications_max_age_secs: u64,
    /// Serve Prometheus metrics at `/metrics` (and record them).
    pub metrics: bool,
    /// `[[cache]]`: pull-through cache rules (a repository prefix, its
    /// upstream registry and credentials).
    pub cache: Vec<crate::proxy::CacheRule>,
    /// `[pull_through]`: this node's fetches for all rules (the spool
    /// directory, fetches at once, the spool's free-space floor).
    pub pull_through: crate::proxy::PullThroughConfig,
    pub layers: limits::LayersConfig,
    /// `[ecr]`: the ECR API's registry ID, region, path and secret key.
    pub ecr: EcrConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".parse().expect("valid address"),
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: None,
            delete_enabled: true,
            upload_ttl_secs: 24 * 3600,
            shutdown_grace_secs: 30,
            shutdown_drain_secs: 5,
            header_timeout_secs: 10,
            idle_timeout_secs: 75,
            body_timeout_secs: 60,
            max_connections: 4096,
            db_busy_timeout_ms: 10_000,
            trusted_proxies: Vec::new(),
            forwarded_header: crate::http::forwarded::ForwardedHeader::default(),
            trust_proxy: None,
            auth: None,
            external_url: None,
            token: TokenConfig::default(),
            access: auth::AccessConfig::default(),
            login_limit: LoginLimitConfig::default(),
            tls_cert: None,
            tls_key: None,
            session_ttl_secs: 12 * 3600,
            storage: StorageConfig::default(),
            metadata: MetadataConfig::default(),
            gc: GcConfig::default(),
            quotas: Vec::new(),
            notifications: Vec::new(),
            notifications_max_age_secs: 7 * 86_400,
            metrics: true,
            cache: Vec::new(),
            pull_through: Default::default(),
            layers: Default::default(),
            ecr: Default::default(),
        }
    }
}

impl Config {
    /// The configuration from defaults, the file, the environment and the
    /// flags; any fault in them is a usage error naming the file and key.
    pub fn load(args: &ServeArgs) -> Result<Config, Failure> {
        let mut cfg = match (&args.config, &args.config_toml) {
            (Some(_), Some(_)) => {
                return Err(Failure::usage(
                    "give the configuration as a file (--config) or as text (REGISTRY_CONFIG_TOML), not both",
                ))
            }
            (None, Some(text)) => toml::from_str(text).map_err(|e| {
                Failure::usage(format!(
                    "invalid configuration in REGISTRY_CONFIG_TOML: {}",
                    e.to_string().trim_end()
                ))
            })?,
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!(
                        "cannot read configuration file {}: {}",
                        path.display(),
                        io_reason(&e)
                    ))
                })?;
                toml::from_str(&text).map_err(|e| {
                    Failure::usage(format!(
                        "invalid configuration file {}: {}",
                        path.display(),
                        e.to_string().trim_end()
                    ))
                })?
            }
            (None, None) => Config::default(),
        };
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(v) = args.$field.clone() { cfg.$field = v; }
            )*};
        }
        take!(
            listen,
            data_dir,
            log_format,
            max_manifest_bytes,
            delete_enabled,
            upload_ttl_secs,
            shutdown_grace_secs,
            shutdown_drain_secs,
            metrics,
            header_timeout_secs,
            idle_timeout_secs,
            body_timeout_secs,
            max_connections,
            db_busy_timeout_ms,
            trusted_proxies,
            forwarded_header
        );
        if args.trust_proxy.is_some() {
            cfg.trust_proxy = args.trust_proxy;
        }
        if args.auth.is_some() {
            cfg.auth = args.auth;
        }
        if args.external_url.is_some() {
            cfg.external_url = args.external_url.clone();
        }
        if args.tls_cert.is_some() {
            cfg.tls_cert = args.tls_cert.clone();
        }
        if args.tls_key.is_some() {
            cfg.tls_key = args.tls_key.clone();
        }
        if args.metadata_url.is_some() {
            cfg.metadata.url = args.metadata_url.clone();
        }
        if args.metadata_password.is_some() {
            cfg.metadata.password = args.metadata_password.clone();
        }
        if args.token_signing_key_pem.is_some() {
            cfg.token.signing_key_pem = args.token_signing_key_pem.clone();
        }
        if let Some(v) = args.gc_interval_secs {
            cfg.gc.interval_secs = v;
        }
        if let Some(v) = args.gc_grace_secs {
            cfg.gc.grace_secs = v;
        }
        if let Some(v) = args.gc_retention_secs {
            cfg.gc.retention_secs = v;
        }
        cfg.validate()?;
        if args.max_blob_bytes.is_some() {
            cfg.max_blob_bytes = args.max_blob_bytes;
        }
        Ok(cfg)
    }

    /// The effective configuration as TOML, with secrets masked.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if let StorageConfig::S3(s3) = &mut shown.storage {
            if s3.secret_access_key.is_some() {
                s3.secret_access_key = Some("********".into());
            }
        }
        if let Some(url) = &mut shown.metadata.url {
            *url = mask_url_password(url);
        }
        if shown.metadata.password.is_some() {
            shown.metadata.password = Some("********".into());
        }
        for n in &mut shown.notifications {
            for v in n.headers.values_mut() {
                *v = "********".into();
            }
        }
        for c in &mut shown.cache {
            if c.password.is_some() {
                c.password = Some("********".into());
            }
        }
        if shown.token.signing_key_pem.is_some() {
            shown.token.signing_key_pem = Some("********".into());
        }
        toml::to_string(&shown).expect("the configuration serializes")
    }

    /// Where the metadata lives.
    pub fn meta_backend(&self) -> storage::MetaBackend {
        match &self.metadata.url {
            Some(url) => storage::MetaBackend::Postgres(match &self.metadata.password {
                Some(pw) => with_password(url, pw),
                None => url.clone(),
            }),
            None => storage::MetaBackend::Sqlite,
        }
    }

    /// Where the blobs live.
    pub fn storage_backend(&self) -> storage::StorageBackend {
        match &self.storage {
            StorageConfig::Local => storage::StorageBackend::Local,
            StorageConfig::S3(s3) => storage::StorageBackend::S3(s3.clone()),
        }
    }

    /// The stores, for messages: "data/", "S3 bucket b + PostgreSQL at h".
    pub fn stores(&self) -> String {
        let blobs = match &self.storage {
            StorageConfig::Local => self.data_dir.display().to_string(),
            StorageConfig::S3(s3) => format!("S3 bucket {}", s3.bucket),
        };
        match &self.metadata.url {
            Some(url) => format!("{blobs} + PostgreSQL at {}", mask_url_password(url)),
            None => blobs,
        }
    }

    /// Open the registry's stores as configured.
    pub async fn open_registry(&self) -> storage::Result<storage::Registry> {
        storage::Registry::open_with(
            &self.data_dir,
            &self.meta_backend(),
            &self.storage_backend(),
            self.policy(),
        )
        .await
    }

    pub fn policy(&self) -> storage::Policy {
        storage::Policy {
            max_manifest_bytes: self.max_manifest_bytes,
            max_blob_bytes: self.max_blob_bytes,
            delete_enabled: self.delete_enabled,
            db_busy_timeout: Duration::from_millis(self.db_busy_timeout_ms),
            quotas: self.quotas.clone(),
            layer_limits: self.layers.limits(),
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: Duration::from_secs(self.header_timeout_secs),
            idle: Duration::from_secs(self.idle_timeout_secs),
            body: Duration::from_secs(self.body_timeout_secs),
        }
    }
}

/// `url` with `password` (percent-encoded) as its userinfo's password.
pub fn with_password(url: &str, password: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.set_password(Some(password)).is_ok() {
                u.to_string()
            } else {
                url.to_owned()
            }
        }
        Err(_) => url.to_owned(),
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:********@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_apart_goes_into_the_url_encoded() {
        assert_eq!(
            with_password("postgres://reg@db.example:5432/registry", "p@ss/w:rd"),
            "postgres://reg:p%40ss%2Fw%3Ard@db.example:5432/registry"
        );
    }

    #[test]
    fn the_configuration_can_come_as_text_in_the_environment() {
        let args = ServeArgs {
            config_toml: Some("listen = \"127.0.0.1:7000\"\n[gc]\ninterval_secs = 0\n".into()),
            metadata_password: Some("pw".into()),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap();
        assert_eq!(cfg.listen.port(), 7000);
        assert_eq!(cfg.gc.interval_secs, 0);
        assert!(!cfg.to_toml().contains("pw\""), "{}", cfg.to_toml());
        let both = ServeArgs {
            config: Some("/x.toml".into()),
            config_toml: Some(String::new()),
            ..Default::default()
        };
        assert!(Config::load(&both).is_err());
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url_password("postgres://reg:s3cr%40t@127.0.0.1:5432/registry?sslmode=disable"),
            "postgres://reg:********@127.0.0.1:5432/registry?sslmode=disable"
        );
        assert_eq!(
            mask_url_password("postgres://127.0.0.1/registry"),
            "postgres://127.0.0.1/registry"
        );
        assert_eq!(
            mask_url_password("postgres://reg@h/db"),
            "postgres://reg@h/db"
        );
    }

    #[test]
    fn storage_and_metadata_sections() {
        let cfg: Config = toml::from_str(
            r#"
[storage]
kind = "s3"
bucket = "images"
endpoint = "http://127.0.0.1:9000"
path_style = true
allow_http = true
secret_access_key = "hidden"
access_key_id = "id"
[metadata]
url = "postgres://reg:pw@127.0.0.1/registry"
"#,
        )
        .unwrap();
        let StorageConfig::S3(s3) = &cfg.storage else {
            panic!("not s3: {:?}", cfg.storage)
        };
        assert_eq!(s3.bucket, "images");
        assert!(s3.redirect, "redirects are on by default");
        let shown = cfg.to_toml();
        assert!(
            !shown.contains("hidden") && !shown.contains(":pw@"),
            "{shown}"
        );
        assert!(toml::from_str::<Config>(
            "[storage]\nkind = \"s3\"\nbucket = \"b\"\nbucket_typo = 1\n"
        )
        .is_err());
        assert_eq!(
            toml::from_str::<Config>("[storage]\nkind = \"local\"\n")
                .unwrap()
                .storage,
            StorageConfig::Local
        );
    }

    #[test]
    fn shared_database_with_token_auth_needs_a_shared_signing_key() {
        let base = "auth = \"token\"\n[metadata]\nurl = \"postgres://r@127.0.0.1/r\"\n";
        let cfg: Config = toml::from_str(base).unwrap();
        let e = cfg.validate().unwrap_err();
        assert!(e.to_string().contains("signing_key"), "{e}");
        let cfg: Config = toml::from_str(&format!(
            "{base}[token]\nsigning_key = \"/etc/r/key.pem\"\n"
        ))
        .unwrap();
        cfg.validate().unwrap();
        // One node on SQLite keeps generating its own.
        let cfg: Config = toml::from_str("auth = \"token\"\n").unwrap();
        cfg.validate().unwrap();
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\ndelete_enabled = false\nlog_format = \"json\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            delete_enabled: Some(true),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap();
        assert_eq!(cfg.listen.port(), 6000);
        assert!(cfg.delete_enabled, "flag overrides file");
        assert_eq!(cfg.log_format, LogFormat::Json);
        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(Config::load(&args).is_err(), "unknown keys are refused");
    }
}
