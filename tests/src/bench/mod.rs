//! The benchmark harness (`cargo run --release -p e2e --bin bench`): the
//! same workloads against our registry, the CNCF reference and any other
//! URL, one workload at a time across all targets, and a table of figures,
//! ratios and the machine's limits. See the README's "Benchmarks".

pub mod baseline;
pub mod client;
pub mod data;
pub mod load;
pub mod ops;
pub mod report;
pub mod servers;
mod verdicts;
pub mod work_auth;
mod work_blobs;
mod work_ecr;
pub mod work_gc;
mod work_layers;
mod work_listing;
pub mod work_logging;
pub mod work_pullthrough;
pub mod work_s3;
mod work_small;
mod work_ui;

use anyhow::{bail, Context as _, Result};
use client::Target;
use report::Report;
use servers::Server;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// Workload sizes and durations.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub blob: u64,
    pub chunk: u64,
    pub huge: u64,
    pub tags_small: u64,
    pub tags_large: u64,
    pub repos_small: u64,
    pub repos_large: u64,
    /// Duration of each rate measurement.
    pub run: Duration,
    /// Measured repetitions of the big pull.
    pub pulls: usize,
    /// Measured pushes of the big blob in each mode (a new blob each time;
    /// the median is reported, the VM being noisy).
    pub push_rounds: u64,
    pub read_conns: usize,
    pub write_conns: usize,
    pub range_conns: usize,
    /// Images of the garbage-collection workload (five blobs each).
    pub gc_manifests: u64,
    /// Bytes of the image the pull-through workload pulls.
    pub pullthrough_image: u64,
    /// Images `DescribeImages` walks in the ECR workload.
    pub ecr_images: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            blob: 1024 * MIB,
            chunk: 64 * MIB,
            huge: 4096 * MIB,
            tags_small: 1_000,
            tags_large: 100_000,
            repos_small: 1_000,
            repos_large: 10_000,
            run: Duration::from_secs(5),
            pulls: 3,
            push_rounds: 3,
            read_conns: 32,
            write_conns: 8,
            range_conns: 8,
            gc_manifests: 20_000,
            pullthrough_image: 100_000_000,
            ecr_images: 10_000,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            blob: 64 * MIB,
            chunk: 16 * MIB,
            huge: 256 * MIB,
            tags_small: 200,
            tags_large: 2_000,
            repos_small: 100,
            repos_large: 1_000,
            run: Duration::from_millis(1000),
            pulls: 1,
            push_rounds: 1,
            gc_manifests: 1_000,
            pullthrough_image: 20_000_000,
            ecr_images: 1_000,
            ..Sizes::full()
        }
    }
}

/// Workloads, in the order they run; `--only` takes these names.
pub const WORKLOADS: &[&str] = &[
    "push",
    "pull",
    "range",
    "reads",
    "logging",
    "auth",
    "small",
    "tags",
    "catalog",
    "ui",
    "layers",
    "ecr",
    "huge",
    "s3",
    "gc",
    "metrics",
    "pullthrough",
    "events",
];

pub struct Options {
    pub sizes: Sizes,
    pub reference_bin: Option<String>,
    pub ours_bin: Option<PathBuf>,
    pub urls: Vec<(String, String)>,
    pub only: Option<Vec<String>>,
    pub sha_seconds: u32,
    pub keep: bool,
}

/// One target and what the workloads left on it.
pub struct Subject {
    pub target: Target,
    pub server: Option<Server>,
    pub big: Option<String>,
    pub image: Option<ops::SmallImage>,
}

impl Subject {
    fn who(&self) -> &str {
        &self.target.name
    }

    /// Server CPU seconds so far (None for external URLs).
    pub fn cpu(&self) -> Option<f64> {
        self.server
            .as_ref()
            .and_then(|s| s.stats().ok())
            .map(|s| s.cpu_secs)
    }
}

pub struct Bench {
    pub sizes: Sizes,
    pub report: Report,
    pub subjects: Vec<Subject>,
    pub work: PathBuf,
    /// Our binary, for workloads that start more instances of it.
    pub ours_bin: Option<PathBuf>,
    digests: HashMap<(u64, u64), String>,
}

/// Seeds of the big blobs (any fixed values).
pub const SEED_MONO: u64 = 0x6d6f_6e6f;
pub const SEED_CHUNKED: u64 = 0x6368_756e;
pub const SEED_HUGE: u64 = 0x6875_6765;

impl Bench {
    /// Digest of `len` PRNG bytes, computed once per run and outside timing.
    pub fn digest(&mut self, seed: u64, len: u64) -> String {
        self.digests
            .entry((seed, len))
            .or_insert_with(|| data::digest(seed, len))
            .clone()
    }
}

/// Runs the workloads, prints the report, and returns the verdicts.
pub async fn run(opts: Options) -> Result<Vec<report::Verdict>> {
    // Under $TMPDIR: the disk the servers store on is the caller's choice.
    let tmp = tempfile::Builder::new()
        .prefix("registry-bench-")
        .tempdir()?;
    let work = tmp.path().to_path_buf();
    let mut subjects = Vec::new();
    if let Some(bin) = &opts.ours_bin {
        let s = Server::start_ours(bin, &work.join("ours"))?;
        eprintln!("ours: {} (pid {})", s.target.addr, s.pid());
        subjects.push(subject(s.target.clone(), Some(s)));
    }
    if let Some(bin) = &opts.reference_bin {
        let s = Server::start_reference(bin, &work.join("reference"))?;
        eprintln!("reference: {} (pid {})", s.target.addr, s.pid());
        subjects.push(subject(s.target.clone(), Some(s)));
    }
    for (name, url) in &opts.urls {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("--url {name}={url}: want http://IP:PORT"))?;
        subjects.push(subject(
            Target {
                name: name.clone(),
                addr,
            },
            None,
        ));
    }
    if subjects.is_empty() {
        bail!("nothing to benchmark");
    }
    let mut bench = Bench {
        sizes: opts.sizes.clone(),
        report: Report::default(),
        subjects,
        work: work.clone(),
        ours_bin: opts.ours_bin.clone(),
        digests: HashMap::new(),
    };
    let started = Instant::now();
    eprintln!("measuring single-core sha256 ...");
    let sha = baseline::openssl_sha256(opts.sha_seconds)?;
    bench.report.limit(
        "sha256, one core (openssl speed -evp sha256, 16 KiB)",
        sha,
        "MB/s",
    );
    let rs = baseline::rust_sha256(Duration::from_secs(opts.sha_seconds.into()));
    bench
        .report
        .limit("sha256, one core (Rust sha2 crate, 1 MiB)", rs, "MB/s");
    let selected = |w: &str| opts.only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    for w in WORKLOADS.iter().copied().filter(|w| selected(w)) {
        for i in 0..bench.subjects.len() {
            let who = bench.subjects[i].who().to_string();
            eprintln!("[{:>6.1}s] {w} on {who}", started.elapsed().as_secs_f64());
            let r = match w {
                "push" => work_blobs::push(&mut bench, i).await,
                "pull" => work_blobs::pull(&mut bench, i).await,
                "range" => work_blobs::range(&mut bench, i).await,
                "huge" => work_blobs::huge(&mut bench, i).await,
                "reads" => work_small::reads(&mut bench, i).await,
                "logging" => work_logging::logging(&mut bench, i).await,
                "auth" => work_auth::auth(&mut bench, i).await,
                "small" => work_small::small_pushes(&mut bench, i).await,
                "tags" => work_listing::tags(&mut bench, i).await,
                "catalog" => work_listing::catalog(&mut bench, i).await,
                "ui" => work_ui::ui(&mut bench, i).await,
                "layers" => work_layers::layers(&mut bench, i).await,
                "ecr" => work_ecr::ecr(&mut bench, i).await,
                "s3" => work_s3::s3(&mut bench, i).await,
                "gc" => work_gc::gc(&mut bench, i).await,
                "metrics" => work_logging::metrics(&mut bench, i).await,
                "pullthrough" => work_pullthrough::pullthrough(&mut bench, i).await,
                "events" => work_pullthrough::events(&mut bench, i).await,
                _ => unreachable!(),
            };
            r.with_context(|| format!("workload {w} on {who}"))?;
        }
        if w == "pull" {
            work_blobs::static_baselines(&mut bench).await?;
        }
    }
    let names: Vec<String> = bench.subjects.iter().map(|s| s.who().to_string()).collect();
    println!("\n{}", machine());
    println!("\n{}", bench.report.render(&names));
    let ran: Vec<&str> = WORKLOADS.iter().copied().filter(|w| selected(w)).collect();
    let reference = names.iter().any(|n| n == "reference");
    // Our targets are about our registry: without it there is nothing to judge.
    let verdicts = if names.iter().any(|n| n == "ours") {
        verdicts::Judge::new(&bench.report, &ran, reference).verdicts()
    } else {
        Vec::new()
    };
    println!("{}", report::render_verdicts(&verdicts));
    eprintln!("total {:.0}s", started.elapsed().as_secs_f64());
    drop(bench);
    if opts.keep {
        eprintln!("kept {}", tmp.keep().display());
    }
    Ok(verdicts)
}

fn subject(target: Target, server: Option<Server>) -> Subject {
    Subject {
        target,
        server,
        big: None,
        image: None,
    }
}

/// `nproc` and the CPU model, for the README.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(String::new(), |k| format!(", {} GiB RAM", k >> 20));
    format!("machine: nproc {cpus}, {model}{mem}")
}
