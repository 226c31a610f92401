//! The check runner: naming, filtering, pass/fail bookkeeping, and the order
//! in which the check groups run.

mod discovery;
mod errors;
mod fixtures;
mod management;
mod pull;
mod push;

use std::cell::OnceCell;

use crate::client::Client;
use crate::report::{CheckResult, Failure, Reporter};

pub use fixtures::Fixtures;

/// Everything a check needs: the client, naming for this run's
/// repositories, options, lazily pushed shared content, and the reporter.
pub struct Ctx {
    pub client: Client,
    /// `<prefix>/run-<id>`; every repository of this run lives below it.
    pub root: String,
    pub no_delete: bool,
    pub filter: Option<String>,
    pub report: Reporter,
    fixtures: Fixtures,
}

impl Ctx {
    pub fn new(client: Client, root: String, no_delete: bool, filter: Option<String>) -> Self {
        Ctx {
            client,
            root,
            no_delete,
            filter,
            report: Reporter::default(),
            fixtures: Fixtures::default(),
        }
    }

    /// A repository of this run, e.g. `conformance/run-x/app`.
    pub fn repo(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.root)
    }

    fn selected(&self, title: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| title.contains(f))
    }

    /// Runs and reports one independent check (skipped if filtered out).
    pub fn check(&self, name: &str, section: &str, f: impl FnOnce() -> CheckResult) {
        let title = format!("{name} [spec: {section}]");
        if self.selected(&title) {
            self.client.take_last();
            let result = f();
            self.record(&title, &result);
        }
    }

    /// A check whose result later checks depend on. It always runs (even
    /// when filtered out, silently) so the dependents get their input; a
    /// failure turns into a "prerequisite failed" error for them.
    pub fn step<T>(
        &self,
        name: &str,
        section: &str,
        f: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let title = format!("{name} [spec: {section}]");
        self.client.take_last();
        let result = f();
        if self.selected(&title) {
            self.record(&title, &result);
        }
        result.map_err(|e| {
            let first = e.message.lines().next().unwrap_or("").to_owned();
            Failure::prerequisite(&format!("'{name}' failed ({first})"))
        })
    }

    fn record<T>(&self, title: &str, result: &Result<T, Failure>) {
        match result {
            Ok(_) => self.report.pass(title),
            Err(f) => {
                let mut f = f.clone();
                // Show the last request made when the failure wasn't tied
                // to a specific one.
                if f.exchange.is_none() {
                    f.exchange = self.client.take_last().map(Box::new);
                }
                self.report.fail(title, &f);
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
        f.message = format!("prerequisite failed: {what}: {}", f.message);
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

/// Runs every group in dependency order: pushes first so pulls and
/// discovery have content, bad input next, deletes last.
pub fn run_all(ctx: &Ctx) {
    discovery::run_base(ctx);
    push::run(ctx);
    pull::run(ctx);
    discovery::run(ctx);
    errors::run(ctx);
    if !ctx.no_delete {
        management::run(ctx);
    }
}

/// GETs a blob and insists on 200 and the exact bytes.
pub fn verify_blob(c: &Client, repo: &str, data: &[u8], digest: &str) -> CheckResult {
    c.get_blob(repo, digest)?
        .expect_status(&[200])?
        .expect_body_eq(data)
        .map(|_| ())
}
