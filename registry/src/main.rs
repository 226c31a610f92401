//! `registry`: the container image registry binary.

mod api;
mod config;
mod error;
mod routes;
mod server;

use clap::{Parser, Subcommand};
use config::{Config, LogFormat, ServeArgs};

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
    }
}
