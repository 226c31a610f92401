//! The flags of `registry serve`: each overrides the file and has an env variable.

use super::{AuthMode, LogFormat};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `registry serve`; each has a `REGISTRY_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// The whole configuration as TOML text instead of a file (for
    /// platforms that pass settings as environment variables, as ECS does).
    #[arg(long, env = "REGISTRY_CONFIG_TOML", hide_env_values = true)]
    pub config_toml: Option<String>,
    /// The PostgreSQL password, kept out of the URL (a secret).
    #[arg(long, env = "REGISTRY_METADATA_PASSWORD", hide_env_values = true)]
    pub metadata_password: Option<String>,
    /// The token signing key's PEM itself (a secret).
    #[arg(long, env = "REGISTRY_TOKEN_SIGNING_KEY_PEM", hide_env_values = true)]
    pub token_signing_key_pem: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:5000].
    #[arg(long, env = "REGISTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./data].
    #[arg(long, env = "REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "REGISTRY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Largest manifest accepted, in bytes [default: 4194304].
    #[arg(long, env = "REGISTRY_MAX_MANIFEST_BYTES")]
    pub max_manifest_bytes: Option<usize>,
    /// Largest blob accepted, in bytes [default: unlimited].
    #[arg(long, env = "REGISTRY_MAX_BLOB_BYTES")]
    pub max_blob_bytes: Option<u64>,
    /// Allow deletes of manifests, tags and blobs [default: true].
    #[arg(long, env = "REGISTRY_DELETE_ENABLED")]
    pub delete_enabled: Option<bool>,
    /// Discard upload sessions idle this many seconds [default: 86400].
    #[arg(long, env = "REGISTRY_UPLOAD_TTL_SECS")]
    pub upload_ttl_secs: Option<u64>,
    /// Collect garbage every this many seconds; 0: only on demand [default: 3600].
    #[arg(long, env = "REGISTRY_GC_INTERVAL_SECS")]
    pub gc_interval_secs: Option<u64>,
    /// Keep what became unreferenced less than this many seconds ago [default: 3600].
    #[arg(long, env = "REGISTRY_GC_GRACE_SECS")]
    pub gc_grace_secs: Option<u64>,
    /// Keep manifests a tag left this many seconds, for rollbacks [default: 604800].
    #[arg(long, env = "REGISTRY_GC_RETENTION_SECS")]
    pub gc_retention_secs: Option<u64>,
    /// Grace period for in-flight requests on shutdown [default: 30].
    #[arg(long, env = "REGISTRY_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Record and serve Prometheus metrics at /metrics [default: true].
    #[arg(long, env = "REGISTRY_METRICS")]
    pub metrics: Option<bool>,
    /// On SIGTERM, fail /readyz and keep serving this many seconds first [default: 5].
    #[arg(long, env = "REGISTRY_SHUTDOWN_DRAIN_SECS")]
    pub shutdown_drain_secs: Option<u64>,
    /// Seconds for a request head to arrive [default: 10].
    #[arg(long, env = "REGISTRY_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds an idle keep-alive connection stays open [default: 75].
    #[arg(long, env = "REGISTRY_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a stalled upload body or download may make no progress [default: 60].
    #[arg(long, env = "REGISTRY_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Connections served at once [default: 4096].
    #[arg(long, env = "REGISTRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Milliseconds a write waits for the database lock [default: 10000].
    #[arg(long, env = "REGISTRY_DB_BUSY_TIMEOUT_MS")]
    pub db_busy_timeout_ms: Option<u64>,
    /// Load balancers whose X-Forwarded-For/-Proto are believed, as CIDRs
    /// separated by commas [default: none].
    #[arg(long, env = "REGISTRY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<crate::http::forwarded::Cidr>>,
    /// The header they append the client to: x-forwarded-for or forwarded
    /// [default: x-forwarded-for].
    #[arg(long, env = "REGISTRY_FORWARDED_HEADER")]
    pub forwarded_header: Option<crate::http::forwarded::ForwardedHeader>,
    /// Replaced by --trusted-proxies (refused when true).
    #[arg(long, env = "REGISTRY_TRUST_PROXY", hide = true)]
    pub trust_proxy: Option<bool>,
    /// Authentication: token or none [default: none, and loopback only].
    #[arg(long, env = "REGISTRY_AUTH")]
    pub auth: Option<AuthMode>,
    /// The URL clients reach the registry at (token realm) [default: from Host].
    #[arg(long, env = "REGISTRY_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "REGISTRY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "REGISTRY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PostgreSQL URL for the metadata [default: SQLite in the data directory].
    #[arg(long, env = "REGISTRY_METADATA_URL", hide_env_values = true)]
    pub metadata_url: Option<String>,
}
