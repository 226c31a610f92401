//! `registry`: the container image registry binary.

use clap::{Parser, Subcommand};
use registry::cli::{accounts as accounts_cli, check as check_cli, config as config_cli};
use registry::cli::{files as files_cli, history as history_cli, migrate as migrate_cli};
use registry::config::{Config, ServeArgs};
use registry::failure::Failure;
use registry::observe::logging;
use registry::server;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "registry",
    version = registry::VERSION,
    about = "An OCI distribution / Docker Registry v2 server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry API (the default when no command is given).
    Serve(ServeArgs),
    /// Show the layers of an image and the commands that made them, like
    /// `docker history`, from a running registry.
    History(history_cli::HistoryArgs),
    /// List the files an image's layers put on disk (stacked, or one layer
    /// with --layer), or what they wasted (--waste, a CI gate with
    /// --lowest-efficiency), from a running registry, without a pull.
    Files(files_cli::FilesArgs),
    /// Verify the data directory: re-hash every blob and manifest, and check
    /// the database and the blob store against each other (exit status 1 on
    /// any problem); --repair quarantines corrupt blobs.
    Check(check_cli::CheckArgs),
    /// Copy this registry (blobs, manifests, tags, accounts) into the
    /// stores of another configuration, e.g. S3 + PostgreSQL; resumable.
    Migrate(migrate_cli::MigrateArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(config_cli::ConfigCommand),
    /// Users (people): add, list, passwd, del.
    #[command(subcommand)]
    User(accounts_cli::UserCommand),
    /// Robot accounts for CI and clusters: add, list, del.
    #[command(subcommand)]
    Robot(accounts_cli::RobotCommand),
    /// ECR access keys (SigV4) of a user or robot: create, list, disable,
    /// delete.
    #[command(subcommand)]
    AccessKey(registry::cli::access_keys::AccessKeyCommand),
    /// A tag's history, and rolling it back: history, rollback.
    #[command(subcommand)]
    Tag(registry::cli::tag::TagCommand),
    /// Repository settings: immutable.
    #[command(subcommand)]
    Repo(registry::cli::repo::RepoCommand),
    /// Collect garbage now on a running registry (or see what would go).
    Gc(registry::cli::gc::GcArgs),
    /// ECR lifecycle policies: put, get, preview, run, delete.
    #[command(subcommand)]
    Lifecycle(registry::cli::lifecycle::LifecycleCommand),
    /// Exit 0 if the registry at --url is ready (`/readyz`), 1 if not: a
    /// container HEALTHCHECK for images without curl.
    Health {
        /// Registry base URL.
        #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:5000")]
        url: String,
    },
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(args) => {
            let cfg = Config::load(&args)?;
            // Dropped at the end of this arm: every queued line is written
            // before the process exits.
            let log = logging::init(cfg.log_format);
            log.spawn_drop_reporter(std::time::Duration::from_secs(10));
            server::serve(cfg).await
        }
        Command::History(args) => history_cli::run(args).await,
        Command::Files(args) => files_cli::run(args).await,
        Command::Check(args) => check_cli::run(args).await,
        Command::Migrate(args) => migrate_cli::run(args).await,
        Command::Config(c) => config_cli::run(c).await,
        Command::User(c) => accounts_cli::user(c).await,
        Command::Robot(c) => accounts_cli::robot(c).await,
        Command::AccessKey(c) => registry::cli::access_keys::run(c).await,
        Command::Tag(c) => registry::cli::tag::run(c).await,
        Command::Repo(c) => registry::cli::repo::run(c).await,
        Command::Gc(args) => registry::cli::gc::run(args).await,
        Command::Lifecycle(c) => registry::cli::lifecycle::run(c).await,
        Command::Health { url } => {
            let (status, body) =
                registry::cli::remote::send(&url, reqwest::Method::GET, "/readyz", None, None)
                    .await?;
            if status.is_success() {
                println!("{}", body.trim());
                Ok(())
            } else {
                Err(Failure::operational(format!(
                    "not ready: {} {}",
                    status.as_u16(),
                    body.trim()
                )))
            }
        }
    }
}

/// Buffers of 4 MiB and more (the S3 store's 8 MiB multipart parts) come
/// straight from `mmap` and go back on free. glibc's default raises its
/// mmap threshold after the first such free, and the parts then stayed in
/// per-thread arenas: a node's peak RSS on a 256 MiB push + pull through S3
/// was 81 MiB, 43 MiB with this (bench `--only s3`).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // Usage errors: clap prints them and exits with status 2.
    let cli = Cli::parse();
    // Bare `registry` means `registry serve`, environment variables included.
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["registry", "serve"])
            .command
            .expect("serve parsed"),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {f}");
            ExitCode::from(f.exit_code() as u8)
        }
    }
}
