//! The registry service as a library: the `registry` binary's commands,
//! and the pure parsers the fuzz targets drive.

pub mod access;
mod access_line;
pub mod accounts_cli;
pub mod api;
pub mod check_cli;
pub mod config;
pub mod config_cli;
pub mod conn;
pub mod error;
pub mod failure;
pub mod forwarded;
pub mod gate;
pub mod gc_api;
pub mod gc_cli;
pub mod history_cli;
pub mod inspect_api;
pub mod lifecycle_api;
pub mod lifecycle_cli;
pub mod linger;
pub mod logging;
pub mod metrics;
pub mod migrate_cli;
pub mod notify;
pub mod paging;
pub mod preflight;
pub mod present;
pub mod proxy;
pub mod remote;
pub mod repo_cli;
pub mod routes;
pub mod sendfile;
pub mod server;
pub mod tag_cli;
pub mod tls;
pub mod watch;
pub mod web;
pub mod write_api;

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the version and the git commit the binary
/// was built from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("REGISTRY_GIT_COMMIT"),
    ")"
);
