//! The `registry` binary's commands, one file each (`serve` is
//! [`crate::server`]), the client the remote ones use to call `/api/v1`
//! (`remote`), and what they share.

pub mod access_keys;
pub mod accounts;
pub mod check;
pub mod config;
pub mod files;
pub mod gc;
pub mod history;
pub mod lifecycle;
pub mod migrate;
pub mod remote;
pub mod repo;
pub mod tag;
