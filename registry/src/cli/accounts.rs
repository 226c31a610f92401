//! `registry user ...` and `registry robot ...`: accounts in the metadata
//! database, managed with the same `--config`/`--data-dir` as `serve`.
//! Passwords come from stdin or a prompt, never from an argument (which
//! `ps` and shell history would show); a robot's secret is printed once.

use crate::config::{Config, ServeArgs};
use crate::failure::Failure;
use auth::identity::{validate_account_name, ScopePattern, ROBOT_PREFIX};
use auth::password::{generate_robot_secret, validate_new_password, PasswordHasher};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use storage::Registry;

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// TOML configuration file (as for `serve`).
    #[arg(long, env = "REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: from the configuration, else ./data].
    #[arg(long, env = "REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from stdin (or prompted for).
    Add {
        name: String,
        /// May do everything, everywhere.
        #[arg(long)]
        admin: bool,
        /// Groups for [access] rules (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password (read from stdin or prompted for); their
    /// refresh tokens and web sessions stop working.
    Passwd {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a user (their refresh tokens stop working, also if a user of
    /// the same name is added again).
    Del {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RobotCommand {
    /// Add a robot account limited to its scopes; prints its secret once.
    Add {
        /// Name (it signs in as robot+NAME).
        name: String,
        /// What it may do, e.g. 'repository:team/*:pull' (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. 90d; it cannot sign in afterwards.
        #[arg(long)]
        expires: Option<humantime::Duration>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List robot accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a robot account a new secret, printed once: the old secret and
    /// the refresh tokens issued with it stop working (scopes and expiry
    /// stay).
    Rotate {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a robot account.
    Del {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) async fn open(store: &StoreArgs) -> Result<Registry, Failure> {
    let cfg = Config::load(&ServeArgs {
        config: store.config.clone(),
        data_dir: store.data_dir.clone(),
        ..ServeArgs::default()
    })?;
    crate::server::preflight::data_dir(&cfg.data_dir)?;
    cfg.open_registry().await.map_err(|e| {
        Failure::operational(format!(
            "cannot open the registry in {}: {}",
            cfg.stores(),
            e.message
        ))
    })
}

pub(crate) fn db(e: storage::Error) -> Failure {
    Failure::operational(format!("accounts database: {}", e.message))
}

fn valid_name(name: &str) -> Result<(), Failure> {
    validate_account_name(name).map_err(|e| Failure::usage(format!("{name:?}: {}", e.0)))
}

/// A new password: from a terminal, asked twice without echo; else the
/// first line of stdin.
fn read_password(user: &str) -> Result<String, Failure> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {user}: "))
            .map_err(|e| Failure::operational(format!("reading the password: {e}")))?;
        let again = rpassword::prompt_password("again: ")
            .map_err(|e| Failure::operational(format!("reading the password: {e}")))?;
        if first != again {
            return Err(Failure::usage("the passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::operational(format!("reading the password from stdin: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    validate_new_password(&password).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(password)
}

fn hash(password: &str) -> Result<String, Failure> {
    PasswordHasher::default()
        .hash(password)
        .map_err(|e| Failure::operational(format!("hashing the password: {e}")))
}

pub(crate) fn when(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()
}

pub async fn user(cmd: UserCommand) -> Result<(), Failure> {
    match cmd {
        UserCommand::Add {
            name,
            admin,
            groups,
            store,
        } => {
            valid_name(&name)?;
            for g in &groups {
                valid_name(g)?;
            }
            let reg = open(&store).await?;
            if reg.accounts().user(&name).await.map_err(db)?.is_some() {
                return Err(Failure::usage(format!(
                    "user {name} exists (change its password with `registry user passwd {name}`)"
                )));
            }
            let hash = hash(&read_password(&name)?)?;
            if !reg
                .accounts()
                .add_user(&name, &hash, admin, &groups)
                .await
                .map_err(db)?
            {
                return Err(Failure::usage(format!("user {name} exists")));
            }
            eprintln!("user {name} added{}", if admin { " (admin)" } else { "" });
        }
        UserCommand::List { store } => {
            let reg = open(&store).await?;
            println!("{:<24} {:<6} {:<24} CREATED", "NAME", "ADMIN", "GROUPS");
            for u in reg.accounts().users().await.map_err(db)? {
                println!(
                    "{:<24} {:<6} {:<24} {}",
                    u.name,
                    if u.admin { "yes" } else { "no" },
                    u.groups.join(","),
                    when(u.created_at)
                );
            }
        }
        UserCommand::Passwd { name, store } => {
            let reg = open(&store).await?;
            if reg.accounts().user(&name).await.map_err(db)?.is_none() {
                return Err(Failure::usage(format!("no user {name}")));
            }
            let hash = hash(&read_password(&name)?)?;
            reg.accounts()
                .set_password(&name, &hash)
                .await
                .map_err(db)?;
            eprintln!(
                "password of {name} changed; its refresh tokens and web sessions are revoked"
            );
        }
        UserCommand::Del { name, store } => {
            let reg = open(&store).await?;
            if !reg.accounts().delete_user(&name).await.map_err(db)? {
                return Err(Failure::usage(format!("no user {name}")));
            }
            eprintln!("user {name} deleted");
        }
    }
    Ok(())
}

pub async fn robot(cmd: RobotCommand) -> Result<(), Failure> {
    match cmd {
        RobotCommand::Add {
            name,
            scopes,
            expires,
            store,
        } => {
            let name = name.strip_prefix(ROBOT_PREFIX).unwrap_or(&name).to_owned();
            valid_name(&name)?;
            for s in &scopes {
                s.parse::<ScopePattern>()
                    .map_err(|e| Failure::usage(format!("scope {s:?}: {e}")))?;
            }
            let expires_at = expires.map(|d| auth::now_unix() as i64 + d.as_secs() as i64);
            let reg = open(&store).await?;
            let secret = generate_robot_secret();
            let hash = hash(secret.expose())?;
            if !reg
                .accounts()
                .add_robot(&name, &hash, &scopes, expires_at)
                .await
                .map_err(db)?
            {
                return Err(Failure::usage(format!("robot {name} exists")));
            }
            eprintln!(
                "robot {ROBOT_PREFIX}{name} added ({}); its secret, shown only now:",
                match expires_at {
                    Some(t) => format!("expires {}", when(t)),
                    None => "does not expire".into(),
                }
            );
            println!("{}", secret.expose());
            eprintln!(
                "sign in with: docker login -u {ROBOT_PREFIX}{name} --password-stdin REGISTRY"
            );
        }
        RobotCommand::List { store } => {
            let reg = open(&store).await?;
            println!("{:<28} {:<22} SCOPES", "NAME", "EXPIRES");
            for r in reg.accounts().robots().await.map_err(db)? {
                println!(
                    "{:<28} {:<22} {}",
                    format!("{ROBOT_PREFIX}{}", r.name),
                    r.expires_at.map_or("never".into(), when),
                    r.scopes.join(" ")
                );
            }
        }
        RobotCommand::Rotate { name, store } => {
            let name = name.strip_prefix(ROBOT_PREFIX).unwrap_or(&name).to_owned();
            let reg = open(&store).await?;
            let secret = generate_robot_secret();
            let hash = hash(secret.expose())?;
            if !reg
                .accounts()
                .rotate_robot(&name, &hash)
                .await
                .map_err(db)?
            {
                return Err(Failure::usage(format!("no robot {name}")));
            }
            eprintln!(
                "robot {ROBOT_PREFIX}{name} has a new secret; the old one and its refresh tokens \
                 are revoked. The new secret, shown only now:"
            );
            println!("{}", secret.expose());
        }
        RobotCommand::Del { name, store } => {
            let name = name.strip_prefix(ROBOT_PREFIX).unwrap_or(&name).to_owned();
            let reg = open(&store).await?;
            if !reg.accounts().delete_robot(&name).await.map_err(db)? {
                return Err(Failure::usage(format!("no robot {name}")));
            }
            eprintln!("robot {ROBOT_PREFIX}{name} deleted");
        }
    }
    Ok(())
}
