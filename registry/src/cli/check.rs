//! `registry check [--repair]`: verify (and repair) a registry's data
//! directory, with a progress bar and a summary; exit status 1 when it
//! finds a problem.

use crate::config::{Config, ServeArgs};
use crate::failure::Failure;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use storage::check::{CheckOptions, CheckProgress, Severity};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// TOML configuration file (as for `serve`).
    #[arg(long, env = "REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: from the configuration, else ./data].
    #[arg(long, env = "REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Move corrupt blobs to the quarantine and forget lost ones (their
    /// links go, so clients push them again). Stop the registry first, or
    /// restart it afterwards: a running one keeps what it has cached.
    #[arg(long)]
    pub repair: bool,
    /// Blobs hashed in parallel [default: the number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Fails (exit status 1) when the check finds a problem.
pub async fn run(args: CheckArgs) -> Result<(), Failure> {
    let cfg = Config::load(&ServeArgs {
        config: args.config,
        data_dir: args.data_dir,
        ..ServeArgs::default()
    })?;
    if cfg.metadata.url.is_none() && !cfg.data_dir.join("registry.db").is_file() {
        return Err(Failure::usage(format!(
            "{}: no registry here (no registry.db); give the data directory with --data-dir",
            cfg.data_dir.display()
        )));
    }
    let fail = |e: storage::Error| {
        Failure::operational(format!("checking {}: {}", cfg.stores(), e.message))
    };
    let registry = cfg.open_registry().await.map_err(fail)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let bar = ProgressBar::hidden();
    let progress = |p: CheckProgress| match p {
        CheckProgress::Start { blobs, bytes } => {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "hashing {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("{blobs} blobs"));
        }
        CheckProgress::Hashed { bytes } => bar.inc(bytes),
    };
    let report = registry
        .check(
            CheckOptions {
                repair: args.repair,
                jobs,
                cached_prefixes: cfg.cache.iter().map(|c| c.prefix.clone()).collect(),
            },
            &progress,
        )
        .await
        .map_err(fail)?;
    bar.finish_and_clear();
    for f in &report.findings {
        let label = match f.severity {
            Severity::Problem => "problem",
            Severity::Note => "note",
        };
        println!("{label}: {}", f.what);
        if let Some(r) = &f.repaired {
            println!("  repaired: {r}");
        }
    }
    println!(
        "checked {} blobs ({}), {} manifests: {} problems ({} repaired), {} notes",
        report.blobs,
        crate::present::human_size(report.bytes as i64),
        report.manifests,
        report.problems(),
        report.repaired(),
        report.notes()
    );
    match report.problems() {
        0 => Ok(()),
        n => Err(Failure::operational(format!(
            "{}: {n} problem{} found (listed above)",
            cfg.data_dir.display(),
            if n == 1 { "" } else { "s" }
        ))),
    }
}
