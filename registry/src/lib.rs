//! The registry service as a library: the `registry` binary's commands,
//! and the pure parsers the fuzz targets drive.

// Layers, each using only those above it in this list: `present` and
// `routes` are pure; `observe` and `http` are plumbing; `proxy` and
// `config` sit on them; `gate` decides access; `state`, `api` and `web`
// handle requests; `server` wires routes to handlers behind the gate;
// `cli` is the binary's commands. `scripts/module-cycles.py` (run by CI) checks that no
// module imports another in a circle.
pub mod api;
pub mod cli;
pub mod config;
pub mod failure;
pub mod gate;
pub mod http;
pub mod observe;
pub mod present;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod state;
pub mod web;

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the version and the git commit the binary
/// was built from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("REGISTRY_GIT_COMMIT"),
    ")"
);
