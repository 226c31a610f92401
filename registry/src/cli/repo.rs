//! `registry repo immutable REPO on|off [--exclude PATTERN]...`: ECR's tag
//! immutability for a repository, through a running registry's API.

use crate::cli::remote::{self, credentials, Remote};
use crate::failure::Failure;
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Tags of REPO are created once and never moved (on), or move (off);
    /// tags matching an --exclude glob (`latest`, `dev-*`) still move.
    Immutable {
        repository: String,
        state: OnOff,
        /// A tag glob that stays mutable (repeat for more).
        #[arg(long)]
        exclude: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(command: RepoCommand) -> Result<(), Failure> {
    let RepoCommand::Immutable {
        repository,
        state,
        exclude,
        remote,
    } = command;
    let creds = credentials(&remote)?;
    let body = serde_json::json!({
        "immutable": matches!(state, OnOff::On),
        "exclude": exclude,
    });
    let (status, answer) = remote::send(
        &remote.url,
        reqwest::Method::PUT,
        &format!("/api/v1/repositories/{repository}/immutability"),
        Some(&body),
        creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
    )
    .await?;
    if !status.is_success() {
        let (code, message) = remote::reason(status, &answer);
        return Err(match code.as_deref() {
            Some("DENIED") => Failure::operational(format!(
                "{repository}: not allowed (tag immutability needs delete on the repository)"
            )),
            Some("UNAUTHORIZED") => Failure::operational(format!(
                "{repository}: the registry wants credentials (--username, REGISTRY_PASSWORD)"
            )),
            Some("NAME_INVALID") => Failure::usage(format!("{repository}: {message}")),
            _ => Failure::operational(format!("{repository}: {message}")),
        });
    }
    match state {
        OnOff::On if exclude.is_empty() => println!("{repository}: tags are immutable"),
        OnOff::On => println!(
            "{repository}: tags are immutable, except {}",
            exclude.join(", ")
        ),
        OnOff::Off => println!("{repository}: tags move"),
    }
    Ok(())
}
