//! The check runner: naming, filtering, outcome bookkeeping, and the groups.
//!
//! Order independence: a check that changes content works in a repository of
//! its own; content several checks read (the main image, the tags and
//! referrers repositories) is pushed once, lazily, and never changed, so any
//! subset of checks (`--filter`) runs in any order with the same outcome.

mod base;
mod blobs;
mod catalog;
mod chunks;
mod errors;
mod fixtures;
mod management;
mod manifests;
mod pull;
mod referrers;
mod tags;

use std::cell::OnceCell;

use crate::client::{Client, Request};
use crate::exchange::Exchange;
use crate::oci;
use crate::report::{CheckResult, Failure, Feature, Kind, Reporter};
use crate::spec::Rule;

pub use fixtures::Fixtures;

/// Everything a check needs: the client, naming for this run's
/// repositories, options, lazily pushed shared content, and the reporter.
pub struct Ctx {
    pub client: Client,
    /// `<prefix>/run-<id>`; every repository of this run lives below it.
    pub root: String,
    /// The deletion checks are skipped (`--no-delete`, `--without delete`).
    pub no_delete: bool,
    pub filter: Option<String>,
    pub report: Reporter,
    fixtures: Fixtures,
}

impl Ctx {
    /// `without`: the optional features the run was told are off.
    pub fn new(
        client: Client,
        root: String,
        without: Vec<Feature>,
        filter: Option<String>,
    ) -> Self {
        Ctx {
            client,
            root,
            no_delete: without.contains(&Feature::Delete),
            filter,
            report: Reporter::new(without),
            fixtures: Fixtures::default(),
        }
    }

    /// A repository of this run, e.g. `conformance/run-x/app`.
    pub fn repo(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.root)
    }

    fn selected(&self, id: &str, title: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| id.contains(f) || title.contains(f))
    }

    /// Runs and reports one independent check (skipped if filtered out).
    pub fn check(&self, id: &str, title: &str, rule: &Rule, f: impl FnOnce() -> CheckResult) {
        if self.selected(id, title) {
            self.client.take_last();
            let result = f();
            self.record(id, title, rule, &result);
        }
    }

    /// A check whose result later checks depend on. It always runs (even
    /// when filtered out, silently) so the dependents get their input; a
    /// failure becomes "prerequisite failed" for them, and "not applicable"
    /// stays "not applicable".
    pub fn step<T>(
        &self,
        id: &str,
        title: &str,
        rule: &Rule,
        f: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.client.take_last();
        let result = f();
        if self.selected(id, title) {
            self.record(id, title, rule, &result);
        }
        result.map_err(|e| {
            if e.kind == Kind::NotApplicable {
                return e;
            }
            let first = e.message.lines().next().unwrap_or("").to_owned();
            Failure::prerequisite(&format!("'{id}' did not pass ({first})"))
        })
    }

    fn record<T>(&self, id: &str, title: &str, rule: &Rule, result: &Result<T, Failure>) {
        match result {
            Ok(_) => self.report.record(id, title, rule, None),
            Err(f) => {
                let mut f = f.clone();
                // Show the last request made when the failure wasn't tied
                // to a specific one.
                if f.exchange.is_none() && f.kind == Kind::Failed {
                    f.exchange = self.client.take_last().map(Box::new);
                }
                self.report.record(id, title, rule, Some(&f));
            }
        }
    }
}

/// Unwraps a step result for a dependent check.
pub fn need<T>(r: &Result<T, Failure>) -> Result<&T, Failure> {
    r.as_ref().map_err(Clone::clone)
}

/// Marks a failure in set-up work (not the behaviour under test) as a
/// prerequisite failure, keeping the exchange for the report.
pub fn prep<T>(what: &str, r: Result<T, Failure>) -> Result<T, Failure> {
    r.map_err(|mut f| {
        if f.kind != Kind::NotApplicable {
            f.message = format!("prerequisite failed: {what}: {}", f.message);
            f.kind = Kind::Prerequisite;
        }
        f
    })
}

/// Memoises a fixture; failures are cloned to every dependent.
fn memo<'a, T>(
    cell: &'a OnceCell<Result<T, Failure>>,
    what: &str,
    init: impl FnOnce() -> Result<T, Failure>,
) -> Result<&'a T, Failure> {
    cell.get_or_init(|| prep(what, init()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs every group. Each is independent of the others (see the module
/// docs); within a group, steps feed the checks after them.
pub fn run_all(ctx: &Ctx) {
    base::run(ctx);
    blobs::run(ctx);
    chunks::run(ctx);
    manifests::run(ctx);
    pull::run(ctx);
    tags::run(ctx);
    catalog::run(ctx);
    referrers::run(ctx);
    errors::run(ctx);
    if !ctx.no_delete {
        management::run(ctx);
    }
    // Last: it judges every 4xx answer the run received.
    errors::error_bodies(ctx);
}

/// GETs a blob and insists on 200 and the exact bytes.
pub fn verify_blob(c: &Client, repo: &str, data: &[u8], digest: &str) -> CheckResult {
    c.get_blob(repo, digest)?
        .expect_status(&[200])?
        .expect_body_eq(data)
        .map(|_| ())
}

/// Follows a 201's `Location` (a pullable blob URL) and insists it serves
/// exactly `data`.
pub fn follow_blob_location(c: &Client, created: &Exchange, data: &[u8]) -> CheckResult {
    let url = c.location(created)?;
    let ex = c.get(url)?;
    ex.expect_status(&[200])
        .map_err(|f| with_note(f, "Location of the 201 to be a pullable blob URL"))?
        .expect_body_eq(data)
        .map(|_| ())
}

/// Follows a manifest PUT's `Location` (a pullable manifest URL) and
/// insists it serves exactly `bytes`.
pub fn follow_manifest_location(c: &Client, created: &Exchange, bytes: &[u8]) -> CheckResult {
    let url = c.location(created)?;
    let ex = c.send(Request::new("GET", url).header("Accept", oci::ACCEPT_MANIFESTS))?;
    ex.expect_status(&[200])
        .map_err(|f| with_note(f, "Location of the 201 to be a pullable manifest URL"))?
        .expect_body_eq(bytes)
        .map(|_| ())
}

fn with_note(mut f: Failure, note: &str) -> Failure {
    f.message = format!("{note}: {}", f.message);
    f
}

/// A `Docker-Content-Digest`, when present, must name the body it came
/// with (the MUST half; its presence is a separate SHOULD).
pub fn dcd_if_present_matches(ex: &Exchange, data: &[u8]) -> CheckResult {
    match ex.header("docker-content-digest") {
        None => Ok(()),
        Some(d) if oci::digest_matches(d, data) => Ok(()),
        Some(d) => Err(ex.fail(format!(
            "Docker-Content-Digest {d:?} to be the digest of the {} bytes served ({})",
            data.len(),
            oci::sha256(data)
        ))),
    }
}
