//! `registry`: the container image registry binary.

use clap::{Parser, Subcommand};
use registry::config::{Config, LogFormat, ServeArgs};
use registry::{check_cli, history_cli, server};

#[derive(Parser)]
#[command(
    name = "registry",
    version,
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
    /// Verify the data directory: re-hash every blob and manifest, and check
    /// the database and the blob store against each other (exit status 1 on
    /// any problem); --repair quarantines corrupt blobs.
    Check(check_cli::CheckArgs),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Bare `registry` means `registry serve`, environment variables included.
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["registry", "serve"])
            .command
            .expect("serve parsed"),
    };
    match command {
        Command::Serve(args) => {
            let cfg = Config::load(&args)?;
            init_logging(cfg.log_format);
            server::serve(cfg).await
        }
        Command::History(args) => history_cli::run(args).await,
        Command::Check(args) => {
            if check_cli::run(args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}
