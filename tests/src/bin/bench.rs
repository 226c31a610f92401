//! `bench`: throughput, latency and memory of the registry against the CNCF
//! reference on this machine. See the README's "Benchmarks" section.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use e2e::bench::{self, Options, Sizes};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Benchmark our registry (and the CNCF reference) on loopback")]
struct Args {
    /// Also start and measure the CNCF reference registry.
    #[arg(long)]
    reference: bool,
    /// The reference binary (Debian's docker-registry).
    #[arg(long, default_value = "docker-registry")]
    reference_bin: String,
    /// Our registry binary (default: target/release/registry, built first).
    #[arg(long)]
    registry_bin: Option<PathBuf>,
    /// Do not start our registry (only --reference and --url targets).
    #[arg(long)]
    no_ours: bool,
    /// Extra target NAME=http://127.0.0.1:PORT (no CPU/RSS figures).
    #[arg(long = "url", value_name = "NAME=URL")]
    urls: Vec<String>,
    /// Small sizes and short runs: a smoke test in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Run only these workloads (comma-separated): push, pull, range,
    /// reads, logging, auth, small, tags, catalog, ui, layers, ecr, huge, s3 (S3 +
    /// PostgreSQL: needs s3s-fs and Debian's postgresql, run as root), gc,
    /// metrics, pullthrough, events.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Size of the big blob, MiB.
    #[arg(long)]
    blob_mib: Option<u64>,
    /// Size of each PATCH of the chunked push, MiB.
    #[arg(long)]
    chunk_mib: Option<u64>,
    /// Size of the blob of the memory test, MiB.
    #[arg(long)]
    huge_mib: Option<u64>,
    /// Tags in the small and the large repository.
    #[arg(long, num_args = 2, value_names = ["SMALL", "LARGE"])]
    tags: Option<Vec<u64>>,
    /// Repositories in the small and the large catalog.
    #[arg(long, num_args = 2, value_names = ["SMALL", "LARGE"])]
    repos: Option<Vec<u64>>,
    /// Seconds of each rate measurement.
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of `openssl speed`.
    #[arg(long, default_value_t = 3)]
    sha_seconds: u32,
    /// Keep the temporary data directories.
    #[arg(long)]
    keep: bool,
    /// Exit non-zero if any target's verdict is "no" (for CI smoke runs,
    /// e.g. `--quick --check`).
    #[arg(long)]
    check: bool,
}

fn build_ours() -> Result<PathBuf> {
    let root = e2e::workspace_root();
    eprintln!("building the registry (release) ...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "registry"])
        .current_dir(&root)
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p registry failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("release/registry"))
}

fn main() -> Result<std::process::ExitCode> {
    let a = Args::parse();
    let mut sizes = if a.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(m) = a.blob_mib {
        sizes.blob = m << 20;
    }
    if let Some(m) = a.chunk_mib {
        sizes.chunk = m << 20;
    }
    if let Some(m) = a.huge_mib {
        sizes.huge = m << 20;
    }
    if let Some(t) = &a.tags {
        (sizes.tags_small, sizes.tags_large) = (t[0], t[1]);
    }
    if let Some(r) = &a.repos {
        (sizes.repos_small, sizes.repos_large) = (r[0], r[1]);
    }
    if let Some(s) = a.seconds {
        sizes.run = Duration::from_secs_f64(s);
    }
    if let Some(only) = &a.only {
        for w in only {
            if !bench::WORKLOADS.contains(&w.as_str()) {
                bail!(
                    "unknown workload {w:?}; known: {}",
                    bench::WORKLOADS.join(", ")
                );
            }
        }
    }
    let ours_bin = match (a.no_ours, a.registry_bin) {
        (true, _) => None,
        (false, Some(p)) => Some(p),
        (false, None) => Some(build_ours()?),
    };
    let mut urls = Vec::new();
    for u in &a.urls {
        let (name, url) = u.split_once('=').context("--url wants NAME=URL")?;
        urls.push((name.to_string(), url.to_string()));
    }
    let opts = Options {
        sizes,
        reference_bin: a.reference.then_some(a.reference_bin),
        ours_bin,
        urls,
        only: a.only,
        sha_seconds: if a.quick { 1 } else { a.sha_seconds },
        keep: a.keep,
    };
    let verdicts = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench::run(opts))?;
    let missed: Vec<_> = verdicts.iter().filter(|v| v.met == Some(false)).collect();
    if a.check && !missed.is_empty() {
        eprintln!("--check: {} target(s) not met:", missed.len());
        for v in missed {
            eprintln!("  {}: {}", v.target, v.measured);
        }
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
