//! `registry migrate --to other.toml`: copy this registry (blobs, manifests,
//! tags, accounts) into the stores another configuration names, typically
//! S3 + PostgreSQL, with a progress bar and a final comparison. Run it
//! again after an interruption: it skips what is already there.

use crate::config::{Config, ServeArgs};
use crate::failure::Failure;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use storage::migrate::{migrate, Progress};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Configuration of the registry to copy from (as for `serve`).
    #[arg(long, env = "REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Its data directory [default: from the configuration, else ./data].
    #[arg(long, env = "REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration of the registry to copy into (its [storage] and
    /// [metadata]).
    #[arg(long)]
    pub to: PathBuf,
    /// Blobs copied at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

pub async fn run(args: MigrateArgs) -> Result<(), Failure> {
    let source = Config::load(&ServeArgs {
        config: args.config,
        data_dir: args.data_dir,
        ..ServeArgs::default()
    })?;
    let target = Config::load(&ServeArgs {
        config: Some(args.to.clone()),
        ..ServeArgs::default()
    })?;
    if source.metadata.url.is_none() && !source.data_dir.join("registry.db").is_file() {
        return Err(Failure::usage(format!(
            "{}: no registry here (no registry.db); give the data directory with --data-dir",
            source.data_dir.display()
        )));
    }
    if source.stores() == target.stores() {
        return Err(Failure::usage(format!(
            "--to {} names the same stores as the source ({})",
            args.to.display(),
            source.stores()
        )));
    }
    let open = |cfg: &Config| {
        let cfg = cfg.clone();
        async move {
            cfg.open_registry().await.map_err(|e| {
                Failure::operational(format!("cannot open {}: {}", cfg.stores(), e.message))
            })
        }
    };
    let from = open(&source).await?;
    let to = open(&target).await?;
    eprintln!("copying {} into {}", source.stores(), target.stores());
    let bar = ProgressBar::hidden();
    let (done, total) = (AtomicU64::new(0), AtomicU64::new(0));
    let progress = |p: Progress| match p {
        Progress::Blobs { count, bytes } => {
            total.store(count, Ordering::Relaxed);
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "blobs {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_length(bytes);
            bar.set_message(format!("0/{count}"));
        }
        Progress::Blob { bytes, .. } => {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            bar.inc(bytes);
            bar.set_message(format!("{n}/{}", total.load(Ordering::Relaxed)));
        }
        Progress::Manifests { .. } => {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
    };
    let report = migrate(&from, &to, args.jobs, &progress)
        .await
        .map_err(|e| Failure::operational(format!("migrate: {}", e.message)))?;
    bar.finish_and_clear();
    println!(
        "copied {} of {} blobs ({}), {} links, {} manifests, {} tags, {} repository settings, {} users, {} robots, \
         {} access keys, {} pull-through rules; the target holds everything the source does",
        report.blobs_copied,
        report.blobs,
        crate::present::human_size(report.bytes_copied as i64),
        report.links,
        report.manifests,
        report.tags,
        report.settings,
        report.users,
        report.robots,
        report.access_keys,
        report.pull_through_rules
    );
    Ok(())
}
