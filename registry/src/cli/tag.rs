//! `registry tag history|rollback REPO:TAG`: a tag's changes, and moving it
//! back (a blue/green rollback), through a running registry's API.

use crate::cli::remote::{self, credentials, Remote};
use crate::failure::Failure;
use crate::present::{ago, short_digest};
use clap::Subcommand;
use storage::metadata::TagChange;

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Every change of a tag, newest first: when, what it pointed at, how.
    History {
        /// REPO:TAG
        reference: String,
        #[command(flatten)]
        remote: Remote,
        /// How many changes.
        #[arg(short = 'n', long, default_value_t = 20)]
        n: i64,
    },
    /// Move a tag back: one change back by default, or N, or to a digest.
    Rollback {
        /// REPO:TAG
        reference: String,
        #[command(flatten)]
        remote: Remote,
        /// The manifest to point the tag at.
        #[arg(long, conflicts_with = "steps")]
        to: Option<String>,
        /// How many changes back.
        #[arg(long)]
        steps: Option<u32>,
    },
}

fn split(reference: &str) -> Result<(&str, &str), Failure> {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !repo.is_empty() && !tag.is_empty() && !tag.contains('/') => {
            Ok((repo, tag))
        }
        _ => Err(Failure::usage(format!(
            "{reference}: give the tag as REPO:TAG"
        ))),
    }
}

fn refused(reference: &str, status: reqwest::StatusCode, body: &str) -> Failure {
    let (code, message) = remote::reason(status, body);
    match code.as_deref() {
        Some("NAME_UNKNOWN") => Failure::operational(format!("{reference}: no such repository")),
        Some("UNAUTHORIZED") => Failure::operational(format!(
            "{reference}: the registry wants credentials (--username, REGISTRY_PASSWORD)"
        )),
        Some("DENIED") => Failure::operational(format!(
            "{reference}: not allowed (moving a tag needs push on the repository)"
        )),
        _ => Failure::operational(format!("{reference}: {message}")),
    }
}

pub async fn run(command: TagCommand) -> Result<(), Failure> {
    match command {
        TagCommand::History {
            reference,
            remote,
            n,
        } => {
            let (repo, tag) = split(&reference)?;
            let creds = credentials(&remote)?;
            let (status, body) = remote::send(
                &remote.url,
                reqwest::Method::GET,
                &format!("/api/v1/repositories/{repo}/tags/{tag}/history?n={n}"),
                None,
                creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            )
            .await?;
            if !status.is_success() {
                return Err(refused(&reference, status, &body));
            }
            let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                Failure::operational(format!("{reference}: unreadable answer ({e})"))
            })?;
            let changes: Vec<TagChange> =
                serde_json::from_value(v["changes"].clone()).map_err(|e| {
                    Failure::operational(format!("{reference}: unreadable answer ({e})"))
                })?;
            print!("{}", table(&changes));
            Ok(())
        }
        TagCommand::Rollback {
            reference,
            remote,
            to,
            steps,
        } => {
            let (repo, tag) = split(&reference)?;
            let creds = credentials(&remote)?;
            let body = match (to, steps) {
                (Some(d), _) => serde_json::json!({ "to": d }),
                (None, Some(n)) => serde_json::json!({ "steps": n }),
                (None, None) => serde_json::json!({ "steps": 1 }),
            };
            let (status, answer) = remote::send(
                &remote.url,
                reqwest::Method::POST,
                &format!("/api/v1/repositories/{repo}/tags/{tag}/rollback"),
                Some(&body),
                creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            )
            .await?;
            if !status.is_success() {
                return Err(refused(&reference, status, &answer));
            }
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            println!(
                "{reference}: {} -> {}",
                v["from"]
                    .as_str()
                    .map_or_else(|| "(none)".to_owned(), short_digest),
                v["to"]
                    .as_str()
                    .map_or_else(|| "?".to_owned(), short_digest)
            );
            Ok(())
        }
    }
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()
}

/// WHEN, ACTION, WHO, FROM, TO columns.
pub fn table(changes: &[TagChange]) -> String {
    let mut out = format!(
        "{:<16}{:<10}{:<14}{:<21}{}\n",
        "WHEN", "ACTION", "WHO", "FROM", "TO"
    );
    for c in changes {
        out.push_str(&format!(
            "{:<16}{:<10}{:<14}{:<21}{}\n",
            ago(Some(&rfc3339(c.at))),
            c.action,
            c.actor.as_deref().unwrap_or("-"),
            c.old_digest
                .as_deref()
                .map_or_else(|| "-".to_owned(), short_digest),
            c.new_digest
                .as_deref()
                .map_or_else(|| "-".to_owned(), short_digest),
        ));
    }
    out
}
