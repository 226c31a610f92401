//! The Docker CLI for the auth tests: a client config directory of each
//! test's own, `docker login` with the password on stdin, and what it
//! stored.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{run_with_stdin, Account};
use crate::cmd::CmdOutput;

/// A Docker client config directory of its own (`DOCKER_CONFIG`), so
/// tests running at once never share `config.json`.
pub fn docker_config_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("e2e-docker-config-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(d.path().join("config.json"), "{}").expect("config.json");
    d
}

/// `docker` with its own client config directory.
pub fn docker_in(config: &Path) -> crate::Cmd {
    let mut c = crate::docker();
    c.env("DOCKER_CONFIG", config);
    c
}

/// `docker login -u USER --password-stdin HOST` with `config` as its
/// client config directory.
pub fn docker_login(config: &Path, host: &str, who: &Account) -> CmdOutput {
    crate::require_env("DOCKER_HOST");
    let bin = std::env::var("DOCKER_BIN").unwrap_or_else(|_| "/usr/bin/docker".to_string());
    let mut c = Command::new(bin);
    c.env("DOCKER_CONFIG", config)
        .args(["login", "-u", &who.user, "--password-stdin", host]);
    run_with_stdin(&mut c, &who.secret, Duration::from_secs(120))
}

/// `auths[host]` of a Docker client config directory's `config.json`.
pub fn docker_auth_entry(config: &Path, host: &str) -> Option<Value> {
    let text = std::fs::read_to_string(config.join("config.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("auths").and_then(|a| a.get(host)).cloned()
}
