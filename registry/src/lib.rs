//! The registry service as a library: the `registry` binary's commands,
//! and the pure parsers the fuzz targets drive.

pub mod api;
pub mod check_cli;
pub mod config;
pub mod conn;
pub mod error;
pub mod history_cli;
pub mod inspect_api;
pub mod paging;
pub mod present;
pub mod routes;
pub mod sendfile;
pub mod server;
pub mod watch;
pub mod web;
