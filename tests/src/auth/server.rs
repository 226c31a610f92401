//! [`AuthRegistry`]: the registry binary with token auth, its accounts
//! (made with the `registry user|robot` CLI), tokens from its `/token`, and
//! the scan of its log for every secret the test handled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::{random_hex, run_with_stdin, Account, Http, SERVICE};
use crate::cmd::CmdOutput;
use crate::http::{with_query, Client, Resp};
use crate::registry::{registry_bin, Registry};

/// Where an [`AuthRegistry`] keeps its metadata (accounts included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// SQLite in the data directory.
    Sqlite,
    /// A new database on the shared PostgreSQL of the test run
    /// (`REGISTRY_TEST_POSTGRES_URL`), with a signing key file as nodes
    /// sharing a database need.
    Postgres,
}

/// The registry binary started with token authentication.
pub struct AuthRegistry {
    reg: Registry,
    config_path: PathBuf,
    /// Appended to the test's configuration: the metadata backend's.
    config_tail: String,
    /// (what, value) of every secret the test handled.
    secrets: Mutex<Vec<(String, String)>>,
    checked: bool,
    // Holds the config file and the data directory.
    _tmp: tempfile::TempDir,
}

impl AuthRegistry {
    /// Start with `config` (TOML; `auth = "token"` is prepended) on a free
    /// port and a fresh data directory.
    pub fn start(config: &str) -> AuthRegistry {
        AuthRegistry::start_on(config, Metadata::Sqlite)
    }

    /// [`AuthRegistry::start`] with its metadata in `metadata`; for
    /// PostgreSQL, `config` must have no `[metadata]` or `[token]` table.
    pub fn start_on(config: &str, metadata: Metadata) -> AuthRegistry {
        let tmp = tempfile::Builder::new()
            .prefix("e2e-auth-")
            .tempdir()
            .expect("temp dir");
        let data_dir = tmp.path().join("data");
        let config_path = tmp.path().join("registry.toml");
        let config_tail = match metadata {
            Metadata::Sqlite => String::new(),
            Metadata::Postgres => {
                assert!(
                    !config.contains("[metadata]") && !config.contains("[token]"),
                    "start_on(Postgres) writes [metadata] and [token] itself"
                );
                format!(
                    "\n[metadata]\nurl = \"{}\"\n[token]\nsigning_key = \"{}\"\n",
                    crate::cluster::shared_database(),
                    tmp.path().join("signing-key.pem").display()
                )
            }
        };
        std::fs::write(
            &config_path,
            format!("auth = \"token\"\n{config}{config_tail}"),
        )
        .expect("config");
        let reg = Registry::start_in(
            &data_dir,
            &["--config", config_path.to_str().expect("UTF-8 path")],
        );
        // Ready (the helper accepts 401): check it is the token challenge.
        let r = reg.client().get("/v2/");
        assert_eq!(r.status, 401, "auth is not on:\n{}", r.describe());
        let challenge = r.require_header("www-authenticate");
        assert!(
            challenge.starts_with(&format!("Bearer realm=\"{}/token\"", reg.url())),
            "challenge: {challenge}"
        );
        AuthRegistry {
            reg,
            config_path,
            config_tail,
            secrets: Mutex::new(Vec::new()),
            checked: false,
            _tmp: tmp,
        }
    }

    pub fn port(&self) -> u16 {
        self.reg.port()
    }

    /// `127.0.0.1:PORT`, as in image references.
    pub fn host(&self) -> String {
        self.reg.host()
    }

    pub fn url(&self) -> String {
        self.reg.url()
    }

    pub fn data_dir(&self) -> &Path {
        self.reg.data_dir()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn pid(&self) -> Option<u32> {
        self.reg.pid()
    }

    pub fn log_text(&self) -> String {
        self.reg.log_text()
    }

    /// The HTTP requests in its log so far ([`Registry::requests`]).
    pub fn requests(&self) -> Vec<crate::LogRequest> {
        self.reg.requests()
    }

    /// [`Registry::log_barrier`]: absence checks on the log need it.
    pub fn log_barrier(&self) {
        self.reg.log_barrier()
    }

    /// Remember a secret the log must never show.
    pub fn note_secret(&self, what: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what.to_string(), value.to_string()));
    }

    /// `registry ARGS --data-dir DIR` (the accounts CLI), with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> CmdOutput {
        let mut c = Command::new(registry_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                c.env_remove(&k);
            }
        }
        c.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(self.data_dir());
        let out = run_with_stdin(&mut c, stdin, Duration::from_secs(60));
        for (what, secret) in self
            .secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if what.starts_with("password") {
                assert!(
                    !out.stderr.contains(secret.as_str()),
                    "the accounts CLI printed the {what} on stderr:\n{}",
                    out.stderr
                );
            }
        }
        out
    }

    /// `registry user add NAME [FLAGS]` with a fresh random password.
    pub fn add_user(&self, name: &str, flags: &[&str]) -> Account {
        let password = format!("pw-{name}-{}", random_hex(12));
        self.note_secret(&format!("password of {name}"), &password);
        let mut args = vec!["user", "add", name];
        args.extend_from_slice(flags);
        let out = self.cli(&args, &format!("{password}\n"));
        assert!(
            out.success(),
            "registry user add {name} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
        assert!(
            !out.combined().contains(&password),
            "registry user add printed the password:\n{}",
            out.combined()
        );
        let account = Account {
            user: name.to_string(),
            secret: password,
        };
        self.note_secret(&format!("Basic credentials of {name}"), &account.basic());
        account
    }

    /// `registry robot add NAME --scope S... [--expires E]`: the robot and
    /// the secret it printed.
    pub fn add_robot(&self, name: &str, scopes: &[&str], expires: Option<&str>) -> Account {
        let mut args = vec!["robot", "add", name];
        for s in scopes {
            args.extend_from_slice(&["--scope", s]);
        }
        if let Some(e) = expires {
            args.extend_from_slice(&["--expires", e]);
        }
        let out = self.cli(&args, "");
        assert!(
            out.success(),
            "registry robot add {name} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
        let secret = out.stdout.trim().to_string();
        assert!(
            secret.starts_with("rgr_") && !secret.contains(char::is_whitespace),
            "robot add printed no secret on stdout: {:?}",
            out.stdout
        );
        self.note_secret(&format!("secret of robot {name}"), &secret);
        let account = Account {
            user: format!("robot+{name}"),
            secret,
        };
        self.note_secret(
            &format!("Basic credentials of robot {name}"),
            &account.basic(),
        );
        account
    }

    /// `registry robot rotate NAME`: the robot with the new secret it
    /// printed.
    pub fn rotate_robot(&self, name: &str) -> Account {
        let out = self.cli(&["robot", "rotate", name], "");
        assert!(
            out.success(),
            "registry robot rotate {name} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
        let secret = out.stdout.trim().to_string();
        assert!(
            secret.starts_with("rgr_") && !secret.contains(char::is_whitespace),
            "robot rotate printed no secret on stdout: {:?}",
            out.stdout
        );
        self.note_secret(&format!("rotated secret of robot {name}"), &secret);
        let account = Account {
            user: format!("robot+{name}"),
            secret,
        };
        self.note_secret(
            &format!("Basic credentials of robot {name}"),
            &account.basic(),
        );
        account
    }

    /// Requests without credentials.
    pub fn anonymous(&self) -> Http {
        Http {
            client: Client::new(&self.url()),
            authorization: None,
        }
    }

    /// Requests with `who`'s Basic credentials.
    pub fn basic(&self, who: &Account) -> Http {
        Http {
            client: Client::new(&self.url()),
            authorization: Some(who.basic()),
        }
    }

    /// Requests with `who`'s Basic credentials from another machine
    /// (127.0.0.3): the operator checking that an attack changed nothing,
    /// whom the attacker's per-address lock-out does not concern.
    pub fn basic_elsewhere(&self, who: &Account) -> Http {
        Http {
            client: Client::new_from(&self.url(), std::net::Ipv4Addr::new(127, 0, 0, 3).into()),
            authorization: Some(who.basic()),
        }
    }

    /// Requests with a bearer token (remembered as a secret).
    pub fn bearer(&self, token: &str) -> Http {
        self.note_secret("a bearer token", token);
        Http {
            client: Client::new(&self.url()),
            authorization: Some(format!("Bearer {token}")),
        }
    }

    /// `GET /token?service=registry&scope=..` as `who` (anonymous if
    /// `None`); the raw answer.
    pub fn token_response(&self, who: Option<&Account>, scopes: &[&str]) -> Resp {
        let mut url = format!("/token?service={SERVICE}");
        for s in scopes {
            url = with_query(&url, "scope", s);
        }
        let http = match who {
            Some(a) => self.basic(a),
            None => self.anonymous(),
        };
        let r = http.get(&url);
        if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
            for k in ["token", "access_token", "refresh_token"] {
                if let Some(t) = v[k].as_str() {
                    self.note_secret(k, t);
                }
            }
        }
        r
    }

    /// A token for `scopes` as `who`; asserts 200 and returns it.
    pub fn token(&self, who: Option<&Account>, scopes: &[&str]) -> String {
        let r = self.token_response(who, scopes);
        assert_eq!(r.status, 200, "token request failed:\n{}", r.describe());
        let v: Value = serde_json::from_slice(&r.body).expect("token JSON");
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", r.text()))
            .to_string()
    }

    /// Stop, replace the configuration (`auth = "token"` is prepended as
    /// in [`AuthRegistry::start`]) and start again on the same port and
    /// data directory.
    pub fn restart_with(&mut self, config: &str) {
        self.stop();
        std::fs::write(
            &self.config_path,
            format!("auth = \"token\"\n{config}{}", self.config_tail),
        )
        .expect("config");
        self.reg.restart();
    }

    /// SIGTERM and wait: afterwards the log holds every line the registry
    /// wrote (its writer flushes on shutdown).
    pub fn stop(&mut self) {
        if self.reg.is_running() {
            self.reg.stop();
        }
    }

    /// Stop the registry, then check every line of its log: none holds a
    /// password, secret or token the test handled, nor anything shaped like
    /// a JWT or a robot secret. Returns the number of lines checked.
    pub fn assert_no_secret_logged(&mut self) -> usize {
        self.checked = true;
        let (lines, leaks) = self.logged_secrets(&[]);
        assert!(
            leaks.is_empty(),
            "secrets in the registry log:\n{}",
            leaks.join("\n")
        );
        lines
    }

    /// Stop the registry and scan its log for the secrets the test handled
    /// and `extra` ones: the lines checked, and one message per leak.
    pub fn logged_secrets(&mut self, extra: &[(&str, &str)]) -> (usize, Vec<String>) {
        self.stop();
        let log = self.log_text();
        let mut secrets = self
            .secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        secrets.extend(extra.iter().map(|(w, v)| (w.to_string(), v.to_string())));
        let mut leaks = Vec::new();
        let mut lines = 0;
        for (n, line) in log.lines().enumerate() {
            lines += 1;
            for (what, secret) in &secrets {
                // The base64 of Basic credentials alone, without "Basic ".
                let bare = secret.strip_prefix("Basic ").unwrap_or(secret);
                if line.contains(bare) {
                    leaks.push(format!("line {} holds the {what}: {line}", n + 1));
                }
            }
            if let Some(shape) = secret_shape(line) {
                leaks.push(format!("line {} holds {shape}: {line}", n + 1));
            }
        }
        assert!(
            lines > 0 && log.contains("\"target\":\"access\""),
            "the registry log has no access line: nothing was checked:\n{log}"
        );
        (lines, leaks)
    }
}

/// What in `line` looks like a secret: a compact JWT (three base64url parts,
/// the first starting `eyJ`, i.e. `{"`) or a robot secret (`rgr_` + 43
/// base64url characters).
pub fn secret_shape(line: &str) -> Option<&'static str> {
    let b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for (i, _) in line.match_indices("eyJ") {
        let parts: Vec<&str> = line[i..]
            .split(|c: char| !(b64url(c) || c == '.'))
            .next()
            .unwrap_or_default()
            .split('.')
            .collect();
        if parts.len() >= 3 && parts[0].len() >= 10 && parts[1].len() >= 10 {
            return Some("a JWT");
        }
    }
    for (i, _) in line.match_indices("rgr_") {
        let rest: String = line[i + 4..].chars().take_while(|c| b64url(*c)).collect();
        if rest.len() >= 40 {
            return Some("a robot secret");
        }
    }
    None
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        // A failing test's registry prints its log tail (`Registry`'s drop).
        if !std::thread::panicking() && !self.checked {
            self.assert_no_secret_logged();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_shapes_are_found() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert_eq!(secret_shape(&format!(r#"{{"q":"{jwt}"}}"#)), Some("a JWT"));
        let robot = format!("rgr_{}", "A".repeat(43));
        assert_eq!(
            secret_shape(&format!("x {robot} y")),
            Some("a robot secret")
        );
        assert_eq!(secret_shape(r#"{"user":"robot+ci","path":"/token"}"#), None);
        assert_eq!(secret_shape("eyJ short.eyJ"), None);
    }
}
