//! What the tests of token auth with the real clients
//! (`tests/auth_clients_*.rs`) share: the registry's `[access]`
//! configuration and the Dockerfile they build, waiting for the access log
//! line of a request, the identity token `docker login` stored, and the
//! OAuth2 form on `POST /token`.
//!
//! Each docker test has its own client config directory (`DOCKER_CONFIG`),
//! so logins of tests running at once never meet in one `config.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::{docker_auth_entry, Account, AuthRegistry};

/// `dev` owns `dev/**`; `public/**` is anonymous pull.
pub const CONFIG: &str = r#"
[access]
public = ["public/**"]
"#;

pub const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data.txt /data.txt\n";

/// The registry's access log lines (JSON), as written so far.
pub fn access_lines(reg: &AuthRegistry) -> Vec<Value> {
    reg.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect()
}

/// Wait (bounded) for an access line matching `pred`: lines are written
/// off the request path, shortly after the answer.
pub fn wait_access(reg: &AuthRegistry, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = access_lines(reg).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {what}; the log:\n{}",
            reg.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The identity token `docker login` stored for `host`: it must be there
/// (the token flow with a refresh token), and no password beside it.
pub fn stored_identity_token(reg: &AuthRegistry, config: &Path, who: &Account) -> String {
    let host = reg.host();
    let entry = docker_auth_entry(config, &host)
        .unwrap_or_else(|| panic!("docker login stored nothing for {host}"));
    let token = entry["identitytoken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no identity token stored: {entry}"))
        .to_string();
    reg.note_secret("docker's identity token", &token);
    if let Some(auth) = entry["auth"].as_str() {
        let decoded = data_encoding::BASE64
            .decode(auth.as_bytes())
            .expect("auth is base64");
        let decoded = String::from_utf8_lossy(&decoded);
        assert!(
            !decoded.contains(&who.secret),
            "docker stored the password next to the identity token: {entry}"
        );
    }
    token
}

/// The OAuth2 form on `POST /token`.
pub fn oauth(reg: &AuthRegistry, form: &[(&str, &str)]) -> crate::http::Resp {
    let http = reg.anonymous();
    let r = http.send(http.request(reqwest::Method::POST, "/token").form(form));
    if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
        for k in ["access_token", "refresh_token"] {
            if let Some(t) = v[k].as_str() {
                reg.note_secret(k, t);
            }
        }
    }
    r
}
