//! `conformance`: checks a running registry against the OCI distribution
//! spec v1.1 (plus Docker Registry v2 API behaviour) from the outside.

mod api;
mod auth;
mod checks;
mod client;
mod exchange;
mod expect;
mod oci;
mod raw;
mod report;
mod spec;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::auth::Credentials;
use crate::checks::Ctx;
use crate::client::Client;
use crate::report::Feature;

#[derive(Parser, Debug)]
#[command(about = "Check a container registry against the OCI distribution spec")]
struct Args {
    /// Base URL of the registry, e.g. http://127.0.0.1:5000
    #[arg(long, env = "CONFORMANCE_URL")]
    url: String,
    /// Username for Basic auth or the token service
    #[arg(long, env = "CONFORMANCE_USERNAME", requires = "password")]
    username: Option<String>,
    /// Password for Basic auth or the token service
    #[arg(long, env = "CONFORMANCE_PASSWORD", requires = "username")]
    password: Option<String>,
    /// Repositories are created under <prefix>/run-<id>/
    #[arg(long, default_value = "conformance")]
    repo_prefix: String,
    /// Skip the content-management (DELETE) checks (= --without delete)
    #[arg(long)]
    no_delete: bool,
    /// An optional feature the registry leaves out (repeatable, or
    /// comma-separated): its MUST checks are then not applicable. Without
    /// it, a MUST check that does not apply fails.
    #[arg(long, value_enum, value_delimiter = ',')]
    without: Vec<Feature>,
    /// Only report checks whose id or title contains this substring
    #[arg(long)]
    filter: Option<String>,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// A run id unique enough for repeated runs against one registry:
/// seconds since the epoch plus a few hex digits from nanos and the pid.
fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut rng =
        oci::Rng::new(u64::from(now.subsec_nanos()) ^ (u64::from(std::process::id()) << 32));
    format!("run-{}-{}", now.as_secs(), rng.hex(6))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let creds = match (args.username, args.password) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        _ => None,
    };
    let client = match Client::new(&args.url, creds, Duration::from_secs(args.timeout)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conformance: invalid --url {:?}: {e:#}", args.url);
            return ExitCode::from(2);
        }
    };
    let prefix = args.repo_prefix.trim_matches('/');
    let root = format!("{prefix}/{}", run_id());
    println!("# registry: {}  repositories: {root}/*", args.url);

    let mut without = args.without;
    if args.no_delete && !without.contains(&Feature::Delete) {
        without.push(Feature::Delete);
    }
    if !without.is_empty() {
        let names: Vec<String> = without.iter().map(|f| f.name()).collect();
        println!("# declared off: {}", names.join(", "));
    }
    let ctx = Ctx::new(client, root, without, args.filter);
    checks::run_all(&ctx);

    ctx.report.print_summary();
    if ctx.report.totals().failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
