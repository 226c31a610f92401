//! Check outcomes and the console report.
//!
//! Output format is part of the tool's contract: one `PASS`/`FAIL` line per
//! check, failure details indented underneath, and a final `N passed, N failed`
//! line that CI log scrapers recognise.

use std::cell::Cell;

use crate::exchange::Exchange;

/// Why a check failed: what was expected, plus the HTTP exchange that
/// disproved it (when there was one) so the report is self-explanatory.
#[derive(Clone, Debug)]
pub struct Failure {
    pub message: String,
    pub exchange: Option<Box<Exchange>>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exchange: None,
        }
    }

    pub fn at(exchange: &Exchange, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exchange: Some(Box::new(exchange.clone())),
        }
    }

    /// A failure caused by an earlier step this check depends on.
    pub fn prerequisite(what: &str) -> Self {
        Failure::new(format!("prerequisite failed: {what}"))
    }
}

pub type CheckResult = Result<(), Failure>;

/// Turns a boolean condition into a check failure.
pub fn ensure(cond: bool, message: impl FnOnce() -> String) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(message()))
    }
}

#[derive(Default)]
pub struct Reporter {
    passed: Cell<usize>,
    failed: Cell<usize>,
}

impl Reporter {
    pub fn pass(&self, title: &str) {
        self.passed.set(self.passed.get() + 1);
        println!("PASS {title}");
    }

    pub fn fail(&self, title: &str, failure: &Failure) {
        self.failed.set(self.failed.get() + 1);
        println!("FAIL {title}");
        if let Some(ex) = &failure.exchange {
            print!("{}", ex.dump("    "));
        }
        for (i, line) in failure.message.lines().enumerate() {
            let label = if i == 0 { "expected: " } else { "          " };
            println!("    {label}{line}");
        }
    }

    pub fn passed(&self) -> usize {
        self.passed.get()
    }

    pub fn failed(&self) -> usize {
        self.failed.get()
    }
}
