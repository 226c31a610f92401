//! `registry config check`: validate a configuration the way `serve` will
//! use it (file, environment and flags; unknown keys, bad values, a data
//! directory that cannot be created or written, an address in use) and
//! print the effective configuration.

use crate::config::{Config, ServeArgs};
use crate::failure::Failure;
use crate::server::preflight;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration `serve` would run with and print it
    /// (secrets masked); exit status 2 for a bad configuration, 1 when the
    /// machine is not ready for it (directory, port).
    Check(ServeArgs),
}

pub async fn run(command: ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Check(args) => check(&args),
    }
}

fn check(args: &ServeArgs) -> Result<(), Failure> {
    let cfg = Config::load(args)?;
    let mut problems = Vec::new();
    if let Err(f) = preflight::data_dir(&cfg.data_dir) {
        problems.push(f.message);
    }
    // Bound and released at once: only whether it can be.
    if let Err(f) = preflight::listen(cfg.listen) {
        problems.push(f.message);
    }
    println!("# effective configuration");
    print!("{}", cfg.to_toml());
    if problems.is_empty() {
        eprintln!("configuration ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    Err(Failure::operational(format!(
        "the configuration is valid but the machine is not ready for it ({} problem{})",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )))
}
