//! Commands that act on a running registry through its HTTP API: one way to
//! call it, and one wording for what can go wrong (nothing answering, an
//! error answer).

use crate::failure::Failure;
use clap::Args;
use reqwest::StatusCode;

/// The reason of an error answer: the message of its OCI error body, else
/// the body itself, else the status.
pub fn reason(status: StatusCode, body: &str) -> (Option<String>, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let first = parsed.as_ref().and_then(|v| v["errors"].get(0).cloned());
    match first {
        Some(e) => (
            e["code"].as_str().map(str::to_owned),
            e["message"].as_str().unwrap_or_default().to_owned(),
        ),
        None if !body.trim().is_empty() && body.len() < 200 => (None, body.trim().to_owned()),
        None => (None, status.to_string()),
    }
}

/// `GET base + path`: the status and body, or a failure that says why no
/// answer came.
pub async fn get(base: &str, path: &str) -> Result<(StatusCode, String), Failure> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}{path}");
    let resp = reqwest::get(&url)
        .await
        .map_err(|e| unreachable(base, &e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| unreachable(base, &e))?;
    Ok((status, body))
}

/// `method base + path` with an optional JSON body and Basic credentials:
/// the status and body, or a failure that says why no answer came.
pub async fn send(
    base: &str,
    method: reqwest::Method,
    path: &str,
    json: Option<&serde_json::Value>,
    credentials: Option<(&str, &str)>,
) -> Result<(StatusCode, String), Failure> {
    let base = base.trim_end_matches('/');
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(body) = json {
        req = req.json(body);
    }
    if let Some((user, password)) = credentials {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.map_err(|e| unreachable(base, &e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| unreachable(base, &e))?;
    Ok((status, body))
}

pub fn unreachable(base: &str, e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        return Failure::usage(format!(
            "invalid registry URL {base} (use --url http://HOST:PORT)"
        ));
    }
    // The innermost cause says it best ("Connection refused").
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let root = cause.to_string();
    let root = root
        .split(" (os error")
        .next()
        .unwrap_or(&root)
        .to_lowercase();
    if e.is_connect() && root.contains("refused") {
        Failure::operational(format!(
            "no registry answering at {base} (connection refused); start one with `registry serve`, or give its address with --url"
        ))
    } else if e.is_timeout() {
        Failure::operational(format!("the registry at {base} did not answer in time"))
    } else {
        Failure::operational(format!("cannot reach the registry at {base}: {root}"))
    }
}

/// Where a command finds the registry, and as whom.
#[derive(Debug, Args)]
pub struct Remote {
    /// Registry base URL.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// User or robot (`robot+NAME`) to sign in as; the password or secret
    /// comes from REGISTRY_PASSWORD.
    #[arg(long, env = "REGISTRY_USERNAME")]
    pub username: Option<String>,
}

/// The credentials of `--username`, with the password from `REGISTRY_PASSWORD`.
pub fn credentials(remote: &Remote) -> Result<Option<(String, String)>, Failure> {
    let Some(user) = &remote.username else {
        return Ok(None);
    };
    let password = std::env::var("REGISTRY_PASSWORD").map_err(|_| {
        Failure::usage("--username needs the password (or robot secret) in REGISTRY_PASSWORD")
    })?;
    Ok(Some((user.clone(), password)))
}
