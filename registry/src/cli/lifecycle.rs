//! `registry lifecycle put|get|preview|run|delete REPO [FILE]`: ECR
//! lifecycle policies on a running registry, through its API.

use crate::cli::remote::{self, credentials, Remote};
use crate::failure::Failure;
use crate::present::{ago, short_digest, unix_to_rfc3339};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Set a repository's policy from a file of ECR's JSON (`-`: stdin).
    Put {
        repository: String,
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print a repository's policy.
    Get {
        repository: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// What the policy (the stored one, or FILE's) would expire now.
    Preview {
        repository: String,
        file: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Apply the stored policy now (it also runs on the collection schedule).
    Run {
        repository: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a repository's policy.
    Delete {
        repository: String,
        #[command(flatten)]
        remote: Remote,
    },
}

fn read_policy(file: &PathBuf) -> Result<serde_json::Value, Failure> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::operational(format!("cannot read the policy from stdin: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            Failure::usage(format!("cannot read policy file {}: {e}", file.display()))
        })?
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: not JSON ({e})", file.display())))
}

fn refused(repo: &str, status: reqwest::StatusCode, body: &str, needs: &str) -> Failure {
    let (code, message) = remote::reason(status, body);
    match code.as_deref() {
        Some("NAME_UNKNOWN") => Failure::operational(format!("{repo}: no such repository")),
        Some("UNAUTHORIZED") => Failure::operational(format!(
            "{repo}: the registry wants credentials (--username, REGISTRY_PASSWORD)"
        )),
        Some("DENIED") => Failure::operational(format!("{repo}: not allowed ({needs})")),
        _ => Failure::operational(format!("{repo}: {message}")),
    }
}

/// DIGEST, TAGS, PUSHED, LAST PULLED, RULE columns.
pub fn table(expired: &[serde_json::Value]) -> String {
    let mut out = format!(
        "{:<14}{:<28}{:<16}{:<16}{}\n",
        "DIGEST", "TAGS", "PUSHED", "LAST PULLED", "RULE"
    );
    for e in expired {
        let tags: Vec<&str> = e["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        let when = |v: &serde_json::Value| {
            v.as_i64()
                .map_or_else(|| "never".to_owned(), |t| ago(Some(&unix_to_rfc3339(t))))
        };
        out.push_str(&format!(
            "{:<14}{:<28}{:<16}{:<16}{}\n",
            short_digest(e["digest"].as_str().unwrap_or("")),
            if tags.is_empty() {
                "<untagged>".to_owned()
            } else {
                tags.join(",")
            },
            when(&e["pushed_at"]),
            when(&e["last_pulled"]),
            e["rule_priority"]
        ));
    }
    out
}

pub async fn run(command: LifecycleCommand) -> Result<(), Failure> {
    let (method, repo, suffix, body, remote, needs) = match &command {
        LifecycleCommand::Put {
            repository,
            file,
            remote,
        } => (
            reqwest::Method::PUT,
            repository,
            "lifecycle",
            Some(read_policy(file)?),
            remote,
            "setting a policy needs delete on the repository",
        ),
        LifecycleCommand::Get { repository, remote } => (
            reqwest::Method::GET,
            repository,
            "lifecycle",
            None,
            remote,
            "reading needs pull",
        ),
        LifecycleCommand::Preview {
            repository,
            file,
            remote,
        } => (
            reqwest::Method::POST,
            repository,
            "lifecycle/preview",
            file.as_ref().map(read_policy).transpose()?,
            remote,
            "a preview needs pull",
        ),
        LifecycleCommand::Run { repository, remote } => (
            reqwest::Method::POST,
            repository,
            "lifecycle/run",
            None,
            remote,
            "a run needs delete on the repository",
        ),
        LifecycleCommand::Delete { repository, remote } => (
            reqwest::Method::DELETE,
            repository,
            "lifecycle",
            None,
            remote,
            "removing a policy needs delete on the repository",
        ),
    };
    let creds = credentials(remote)?;
    let (status, answer) = remote::send(
        &remote.url,
        method,
        &format!("/api/v1/repositories/{repo}/{suffix}"),
        body.as_ref(),
        creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
    )
    .await?;
    if !status.is_success() {
        return Err(refused(repo, status, &answer, needs));
    }
    let v: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| Failure::operational(format!("{repo}: unreadable answer ({e})")))?;
    match command {
        LifecycleCommand::Get { .. } | LifecycleCommand::Put { .. } => {
            if v["policy"].is_null() {
                println!("{repo}: no lifecycle policy");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v["policy"]).unwrap_or_default()
                );
            }
        }
        LifecycleCommand::Delete { .. } => println!("{repo}: lifecycle policy removed"),
        LifecycleCommand::Preview { .. } | LifecycleCommand::Run { .. } => {
            let expired = v["expired"].as_array().cloned().unwrap_or_default();
            let verb = if matches!(command, LifecycleCommand::Run { .. }) {
                "expired"
            } else {
                "would expire"
            };
            println!("{repo}: {verb} {} images", expired.len());
            if !expired.is_empty() {
                print!("{}", table(&expired));
            }
        }
    }
    Ok(())
}
