//! Helpers for the token-auth tests (`tests/auth_clients.rs`,
//! `tests/auth_attacks.rs`):
//!
//! * [`AuthRegistry`]: the registry with `auth = "token"` and an `[access]`
//!   section from the test (a [`Registry`] started with `--config`);
//!   accounts made with the `registry user|robot` CLI; on drop it stops the
//!   registry and checks that its log holds none of the passwords, secrets
//!   and tokens the test handled ([`AuthRegistry::assert_no_secret_logged`]).
//! * [`Http`]: requests with Basic or Bearer credentials, and pushes.
//! * [`Forge`]: JWTs made outside the registry (with its own signing key read
//!   from the data directory, or a stranger's), to sign tokens with bad claims.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use data_encoding::{BASE64, BASE64URL_NOPAD};
use reqwest::blocking::RequestBuilder;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cmd::CmdOutput;
use crate::http::{with_query, Client, Resp};
use crate::oci::{Blob, Image};
use crate::registry::{registry_bin, Registry};

/// The token service and issuer names of the registry's defaults.
pub const SERVICE: &str = "registry";
pub const ISSUER: &str = "registry";

/// A user or robot account: `user` is what it signs in as (`robot+NAME`
/// for robots).
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub secret: String,
}

impl Account {
    /// The `Authorization` value for Basic credentials.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.user, self.secret).as_bytes())
        )
    }
}

/// The registry binary started with token authentication.
pub struct AuthRegistry {
    reg: Registry,
    config_path: PathBuf,
    /// (what, value) of every secret the test handled.
    secrets: Mutex<Vec<(String, String)>>,
    checked: bool,
    // Holds the config file and the data directory.
    _tmp: tempfile::TempDir,
}

/// A random string of `n` bytes, hex: passwords no log could hold by chance.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("read /dev/urandom");
    hex::encode(buf)
}

/// Run `command` with `input` on stdin, with a deadline.
pub fn run_with_stdin(command: &mut Command, input: &str, timeout: Duration) -> CmdOutput {
    let mut description = command.get_program().to_string_lossy().into_owned();
    for a in command.get_args() {
        description.push(' ');
        description.push_str(&a.to_string_lossy());
    }
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("clone"))
        .stderr(err.try_clone().expect("clone"))
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start `{description}`: {e}"));
    {
        let mut stdin = child.stdin.take().expect("stdin");
        // A program that exits before reading its input is judged by its output.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{description}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek, SeekFrom};
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.read_to_string(&mut s).expect("read output");
        s
    };
    CmdOutput {
        description,
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

impl AuthRegistry {
    /// Start with `config` (TOML; `auth = "token"` is prepended) on a free
    /// port and a fresh data directory.
    pub fn start(config: &str) -> AuthRegistry {
        let tmp = tempfile::Builder::new()
            .prefix("e2e-auth-")
            .tempdir()
            .expect("temp dir");
        let data_dir = tmp.path().join("data");
        let config_path = tmp.path().join("registry.toml");
        std::fs::write(&config_path, format!("auth = \"token\"\n{config}")).expect("config");
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
        std::fs::write(&self.config_path, format!("auth = \"token\"\n{config}")).expect("config");
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

/// Requests with (or without) credentials.
#[derive(Clone)]
pub struct Http {
    pub client: Client,
    authorization: Option<String>,
}

impl Http {
    /// Requests to any registry at `url` with this `Authorization` header.
    pub fn new(url: &str, authorization: Option<String>) -> Http {
        Http {
            client: Client::new(url),
            authorization,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.client.request(method, path);
        match &self.authorization {
            Some(a) => rb.header("Authorization", a),
            None => rb,
        }
    }

    pub fn send(&self, rb: RequestBuilder) -> Resp {
        self.client.send(rb)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path))
    }

    pub fn head(&self, path: &str) -> Resp {
        self.send(self.request(Method::HEAD, path))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send(self.request(Method::DELETE, path))
    }

    pub fn post(&self, path: &str) -> Resp {
        self.send(self.request(Method::POST, path))
    }

    /// GET a manifest accepting every type we push.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Resp {
        self.send(
            self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Accept", crate::oci::ACCEPT_ALL_MANIFESTS),
        )
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, manifest: &Blob) -> Resp {
        self.send(
            self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", &manifest.media_type)
                .body(manifest.data.clone()),
        )
    }

    /// POST then monolithic PUT; the answer to the PUT (or to the POST when
    /// it was refused).
    pub fn upload_blob(&self, repo: &str, data: &[u8]) -> Resp {
        let start = self.post(&format!("/v2/{repo}/blobs/uploads/"));
        if start.status != 202 {
            return start;
        }
        let loc = start.location();
        self.send(
            self.request(
                Method::PUT,
                &with_query(&loc, "digest", &crate::sha256_digest(data)),
            )
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec()),
        )
    }

    /// Push every blob of `image` and its manifest under `tag`; asserts
    /// success.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        for b in image.blobs() {
            let r = self.upload_blob(repo, &b.data);
            assert_eq!(r.status, 201, "blob push failed:\n{}", r.describe());
        }
        let r = self.put_manifest(repo, tag, &image.manifest);
        assert_eq!(r.status, 201, "manifest push failed:\n{}", r.describe());
    }

    /// The `repositories` of `/v2/_catalog` (asserts 200).
    pub fn catalog(&self) -> Vec<String> {
        let r = self.get("/v2/_catalog");
        assert_eq!(r.status, 200, "catalog:\n{}", r.describe());
        let v: Value = serde_json::from_slice(&r.body).expect("catalog JSON");
        v["repositories"]
            .as_array()
            .unwrap_or_else(|| panic!("no repositories array: {}", r.text()))
            .iter()
            .map(|x| x.as_str().expect("name").to_string())
            .collect()
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims like the registry's own for `sub`, granting `access` as
/// `(repository, "pull,push")` pairs, valid for five minutes from now.
pub fn claims(sub: &str, access: &[(&str, &str)]) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": random_hex(8),
        "access": access.iter().map(|(name, actions)| json!({
            "type": "repository",
            "name": name,
            "actions": actions.split(',').collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn b64url_json(v: &Value) -> String {
    BASE64URL_NOPAD.encode(&serde_json::to_vec(v).expect("json"))
}

/// Part `i` (0 header, 1 claims) of a compact JWT, decoded.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a JWT part");
    let bytes = BASE64URL_NOPAD
        .decode(part.as_bytes())
        .expect("base64url JWT part");
    serde_json::from_slice(&bytes).expect("JSON JWT part")
}

/// `header.claims.signature` from the given pieces, signed by nobody.
pub fn assemble(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url_json(header),
        b64url_json(claims)
    )
}

/// An HS256 token with `kid`, its HMAC key `secret` (e.g. a public key).
pub fn hs256(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_string());
    let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("HMAC key");
    jsonwebtoken::encode(&header, claims, &key).expect("HS256 signing")
}

/// An ES256 key: the registry's own (to sign tokens with bad claims) or a
/// stranger's.
pub struct Forge {
    secret: p256::SecretKey,
    /// RFC 7638 thumbprint of the public key, computed here.
    pub kid: String,
}

impl Forge {
    /// The registry's signing key, from `<data_dir>/token-signing.pem`.
    pub fn server_key(data_dir: &Path) -> Forge {
        use p256::pkcs8::DecodePrivateKey;
        let path = data_dir.join("token-signing.pem");
        let pem = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let secret = if pem.contains("BEGIN EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_pem(&pem).expect("SEC1 P-256 key")
        } else {
            p256::SecretKey::from_pkcs8_pem(&pem).expect("PKCS#8 P-256 key")
        };
        Forge::from_secret(secret)
    }

    /// A key the registry has never seen.
    pub fn stranger() -> Forge {
        use p256::elliptic_curve::Generate;
        Forge::from_secret(p256::SecretKey::generate())
    }

    fn from_secret(secret: p256::SecretKey) -> Forge {
        let (x, y) = xy(&secret.public_key());
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()));
        Forge { secret, kid }
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what an HS256
    /// confusion attack uses as the HMAC key.
    pub fn public_pem(&self) -> String {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        self.secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public key PEM")
    }

    /// The public key's uncompressed point (0x04 || x || y).
    pub fn public_point(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToSec1Point;
        self.secret
            .public_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The public JWK as JSON text (`{"crv","kty","x","y"}`).
    pub fn public_jwk(&self) -> String {
        let (x, y) = xy(&self.secret.public_key());
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
    }

    /// ES256 over `claims`, header `kid` = this key's.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(&self.kid.clone(), claims)
    }

    /// ES256 over `claims` with any `kid` in the header.
    pub fn sign_with_kid(&self, kid: &str, claims: &Value) -> String {
        use p256::pkcs8::EncodePrivateKey;
        let der = self.secret.to_pkcs8_der().expect("PKCS#8");
        let key = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &key).expect("ES256 signing")
    }
}

fn xy(pk: &p256::PublicKey) -> (String, String) {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let point = pk.to_sec1_point(false);
    let b = point.as_bytes();
    (
        BASE64URL_NOPAD.encode(&b[1..33]),
        BASE64URL_NOPAD.encode(&b[33..65]),
    )
}

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
