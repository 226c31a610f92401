//! `registry access-key ...`: ECR access keys (SigV4) for a user or robot,
//! managed with the same `--config`/`--data-dir` as `serve`. The secret is
//! printed once, as shell-evaluable lines; the database keeps it sealed
//! under the server key (`[ecr] secret_key_file`), never in clear.

use super::accounts::{db, open, when, StoreArgs};
use crate::config::{Config, ServeArgs};
use crate::failure::Failure;
use auth::access_key::{new_key_id, new_secret};
use auth::identity::{Subject, ROBOT_PREFIX};
use clap::Subcommand;
use storage::metadata::AccessKeyRow;

#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// Make a key acting as USER or robot/NAME (robot+NAME); prints
    /// AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=..., once.
    Create {
        /// A user name, or robot/NAME (robot+NAME) for a robot account.
        owner: String,
        #[command(flatten)]
        store: super::accounts::StoreArgs,
    },
    /// List keys (of one account, if given).
    List {
        owner: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a key: its signatures and the docker logins made with it
    /// stop working at once (enable it again with --enable).
    Disable {
        id: String,
        /// Enable it again instead.
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a key.
    Delete {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `robot/NAME`, `robot+NAME` or a user name, as the subject claim the
/// key acts as (`robot+NAME` or the user's name).
fn owner_subject(owner: &str) -> Result<String, Failure> {
    let claim = match owner.strip_prefix("robot/") {
        Some(name) => format!("{ROBOT_PREFIX}{name}"),
        None => owner.to_owned(),
    };
    match Subject::parse(&claim) {
        Ok(Subject::User(_)) | Ok(Subject::Robot(_)) => Ok(claim),
        _ => Err(Failure::usage(format!(
            "{owner:?} is neither a user name nor robot/NAME"
        ))),
    }
}

fn config(store: &StoreArgs) -> Result<Config, Failure> {
    Config::load(&ServeArgs {
        config: store.config.clone(),
        data_dir: store.data_dir.clone(),
        ..ServeArgs::default()
    })
}

pub async fn run(cmd: AccessKeyCommand) -> Result<(), Failure> {
    match cmd {
        AccessKeyCommand::Create { owner, store } => {
            let subject = owner_subject(&owner)?;
            let reg = open(&store).await?;
            let accounts = reg.accounts();
            let exists = match Subject::parse(&subject) {
                Ok(Subject::Robot(name)) => accounts.robot(&name).await.map_err(db)?.is_some(),
                Ok(Subject::User(name)) => accounts.user(&name).await.map_err(db)?.is_some(),
                _ => false,
            };
            if !exists {
                return Err(Failure::usage(format!(
                    "no account {owner}: add it first (registry user add / registry robot add)"
                )));
            }
            let cfg = config(&store)?;
            let key = cfg.ecr.seal_key(&cfg.data_dir)?;
            let (id, secret) = (new_key_id(), new_secret());
            let row = AccessKeyRow {
                sealed_secret: key.seal(&id, &secret),
                id: id.clone(),
                owner: subject.clone(),
                created_at: auth::now_unix() as i64,
                disabled_at: None,
                last_used_at: None,
            };
            if !accounts.add_access_key(&row).await.map_err(db)? {
                return Err(Failure::operational("a key with this ID exists; run again"));
            }
            eprintln!("access key {id} made for {subject}; its secret, shown only now:");
            println!("AWS_ACCESS_KEY_ID={id}");
            println!("AWS_SECRET_ACCESS_KEY={secret}");
        }
        AccessKeyCommand::List { owner, store } => {
            let subject = owner.as_deref().map(owner_subject).transpose()?;
            let reg = open(&store).await?;
            println!(
                "{:<22} {:<24} {:<9} {:<22} LAST USED",
                "ID", "OWNER", "STATE", "CREATED"
            );
            for k in reg
                .accounts()
                .access_keys(subject.as_deref())
                .await
                .map_err(db)?
            {
                println!(
                    "{:<22} {:<24} {:<9} {:<22} {}",
                    k.id,
                    k.owner,
                    if k.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    },
                    when(k.created_at),
                    k.last_used_at.map_or("never".into(), when)
                );
            }
        }
        AccessKeyCommand::Disable { id, enable, store } => {
            let reg = open(&store).await?;
            let at = (!enable).then(|| auth::now_unix() as i64);
            if !reg
                .accounts()
                .set_access_key_disabled(&id, at)
                .await
                .map_err(db)?
            {
                return Err(Failure::usage(format!("no access key {id}")));
            }
            eprintln!(
                "access key {id} {}",
                if enable { "enabled" } else { "disabled" }
            );
        }
        AccessKeyCommand::Delete { id, store } => {
            let reg = open(&store).await?;
            if !reg.accounts().delete_access_key(&id).await.map_err(db)? {
                return Err(Failure::usage(format!("no access key {id}")));
            }
            eprintln!("access key {id} deleted");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_users_or_robots() {
        assert_eq!(owner_subject("alice").unwrap(), "alice");
        assert_eq!(owner_subject("robot/ci").unwrap(), "robot+ci");
        assert_eq!(owner_subject("robot+ci").unwrap(), "robot+ci");
        assert!(owner_subject("robot/").is_err());
        assert!(owner_subject("Bad Name").is_err());
    }
}
