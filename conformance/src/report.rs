//! Check outcomes and the console report.
//!
//! Output format is part of the tool's contract: one line per check
//! (`PASS`/`FAIL`/`WARN`/`DIFF`/`N/A`, the level, the check id, its title),
//! the cited spec sentence under it, details under anything that did not
//! pass, then a summary of the MUST failures, the SHOULD/MAY differences and
//! our own extras, and a closing line that starts `N passed, N failed` (MUST
//! checks only) with the warnings counted after it.
//!
//! A MUST check is not applicable only for an optional feature the run was
//! told the registry leaves out (`--without`): anything else that keeps a
//! MUST check from applying fails it, so a registry that quietly stops
//! offering deletes or the referrers API fails the run.

use std::cell::RefCell;

use crate::exchange::Exchange;
use crate::spec::{Level, Rule};

/// The spec's optional features: a registry may leave each out (the spec
/// sentence that allows it is in the README), and then the MUST checks of
/// what it would do do not apply. A run names those it was told are off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Feature {
    /// "Registries MAY implement deletion or they MAY disable it." Every
    /// kind of deletion: the deletion checks are not run at all.
    Delete,
    /// "A registry MAY implement tag deletion, while others MAY allow
    /// deletion only by manifest."
    TagDelete,
    /// "If manifest deletion is disabled, the registry MUST respond with
    /// either a `400 Bad Request` or a `405 Method Not Allowed`."
    ManifestDelete,
    /// "If blob deletion is disabled, the registry MUST respond with either
    /// a `400 Bad Request` or a `405 Method Not Allowed`."
    BlobDelete,
    /// The referrers API ("Registries SHOULD also support ... Content
    /// Discovery"; a client receiving 404 falls back to the tag schema).
    Referrers,
    /// "Registries MAY support pushing blobs using a single POST request."
    SinglePost,
    /// Cross-repository mounting ("if a registry does not support
    /// cross-repository mounting ... it SHOULD return a 202").
    Mount,
    /// "A `Link` header MAY be included in the response when additional tags
    /// are available."
    TagsLink,
    /// "A registry SHOULD enforce some limit on the maximum manifest size."
    ManifestLimit,
    /// "A registry MAY reject a manifest ... with descriptors ... that
    /// reference a manifest or blob that does not exist."
    UnknownRefRefusal,
}

impl Feature {
    /// Whether `declared` (what the run was told is off) covers this one.
    fn declared_in(self, declared: &[Feature]) -> bool {
        let deletion = matches!(
            self,
            Feature::TagDelete | Feature::ManifestDelete | Feature::BlobDelete
        );
        declared.contains(&self) || (deletion && declared.contains(&Feature::Delete))
    }

    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The registry did not do what the rule asks.
    Failed,
    /// Something this check needs failed first.
    Prerequisite,
    /// The rule does not apply to this registry (an optional feature it
    /// chose not to offer, e.g. deletes disabled; see [`Failure::feature`]).
    NotApplicable,
}

/// Why a check did not pass: what was expected (or, for SHOULD/MAY/extra
/// checks, what the registry chose instead), plus the HTTP exchange that
/// showed it, when there was one.
#[derive(Clone, Debug)]
pub struct Failure {
    pub message: String,
    pub exchange: Option<Box<Exchange>>,
    pub kind: Kind,
    /// For [`Kind::NotApplicable`]: the optional feature whose absence
    /// made it so. A MUST check is N/A only when the run declared it off.
    pub feature: Option<Feature>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exchange: None,
            kind: Kind::Failed,
            feature: None,
        }
    }

    pub fn at(exchange: &Exchange, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exchange: Some(Box::new(exchange.clone())),
            kind: Kind::Failed,
            feature: None,
        }
    }

    /// A failure caused by an earlier step this check depends on.
    pub fn prerequisite(what: &str) -> Self {
        Failure {
            kind: Kind::Prerequisite,
            ..Failure::new(format!("prerequisite failed: {what}"))
        }
    }

    /// A SHOULD/MAY/extra rule does not apply: `why` says which choice of
    /// the registry made it so. (For a MUST rule, see [`Failure::not_offered`].)
    pub fn not_applicable(why: impl Into<String>) -> Self {
        Failure {
            kind: Kind::NotApplicable,
            ..Failure::new(why)
        }
    }

    /// The rule does not apply because the registry does not offer
    /// `feature` (`why`: what showed it). For a MUST rule that stands only
    /// if the run declared the feature off; otherwise it is a failure.
    pub fn not_offered(feature: Feature, why: impl Into<String>) -> Self {
        Failure {
            feature: Some(feature),
            ..Failure::not_applicable(why)
        }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// A MUST check failed (or could not be verified): the run fails.
    Fail,
    /// A SHOULD/MAY check: the registry made another permitted choice.
    Warn,
    /// An extra the registry does not offer.
    Differ,
    NotApplicable,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Differ => "DIFF",
            Status::NotApplicable => "N/A ",
        }
    }

    fn of(level: Level, failure: Option<&Failure>, declared: &[Feature]) -> Status {
        let Some(f) = failure else {
            return Status::Pass;
        };
        match (level, f.kind) {
            // A MUST check is N/A only for a feature the run was told is off.
            (Level::Must, Kind::NotApplicable) => match f.feature {
                Some(feature) if feature.declared_in(declared) => Status::NotApplicable,
                _ => Status::Fail,
            },
            (_, Kind::NotApplicable) => Status::NotApplicable,
            (Level::Must, _) => Status::Fail,
            // A SHOULD/MAY/extra whose own prerequisite failed says nothing
            // about the registry's choice; the prerequisite is reported.
            (_, Kind::Prerequisite) => Status::NotApplicable,
            (Level::Should | Level::May, Kind::Failed) => Status::Warn,
            (Level::Extra, Kind::Failed) => Status::Differ,
        }
    }
}

struct Entry {
    id: String,
    level: Level,
    status: Status,
    summary: String,
}

/// Totals for the closing line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub warnings: usize,
    /// SHOULD/MAY checks the registry meets.
    pub optional_met: usize,
    pub extras_met: usize,
    pub extras_differ: usize,
    pub not_applicable: usize,
}

#[derive(Default)]
pub struct Reporter {
    entries: RefCell<Vec<Entry>>,
    /// The optional features the run was told the registry leaves out.
    declared: Vec<Feature>,
}

impl Reporter {
    pub fn new(declared: Vec<Feature>) -> Self {
        Reporter {
            entries: RefCell::default(),
            declared,
        }
    }

    /// Prints one check's outcome and remembers it for the summary.
    pub fn record(&self, id: &str, title: &str, rule: &Rule, failure: Option<&Failure>) {
        let status = Status::of(rule.level, failure, &self.declared);
        // A MUST check that did not apply without the run being told why.
        let undeclared =
            failure.filter(|f| f.kind == Kind::NotApplicable && status == Status::Fail);
        let failure = undeclared
            .map(|f| {
                let off = match f.feature {
                    Some(feature) => format!(
                        "; the run did not declare {} off (--without {})",
                        feature.name(),
                        feature.name()
                    ),
                    None => String::new(),
                };
                Failure {
                    message: format!(
                        "a MUST check that did not apply: {}{off}\n(a MUST check is N/A only \
                         for an optional feature the run was told the registry leaves out)",
                        f.message
                    ),
                    ..f.clone()
                }
            })
            .or_else(|| failure.cloned());
        let failure = failure.as_ref();
        println!("{} {:<6} {id}: {title}", status.label(), rule.level);
        println!(
            "      spec ({}, {}): \"{}\"",
            rule.level, rule.section, rule.text
        );
        let mut summary = String::new();
        if let Some(f) = failure {
            summary = f.message.lines().next().unwrap_or("").to_owned();
            print!("{}", details(status, f));
        }
        self.entries.borrow_mut().push(Entry {
            id: id.to_owned(),
            level: rule.level,
            status,
            summary,
        });
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in self.entries.borrow().iter() {
            match (e.level, e.status) {
                (_, Status::NotApplicable) => t.not_applicable += 1,
                (Level::Extra, Status::Pass) => t.extras_met += 1,
                (Level::Must, Status::Pass) => t.passed += 1,
                // A SHOULD/MAY check that holds is not a MUST pass.
                (_, Status::Pass) => t.optional_met += 1,
                (_, Status::Fail) => t.failed += 1,
                (_, Status::Warn) => t.warnings += 1,
                (_, Status::Differ) => t.extras_differ += 1,
            }
        }
        t
    }

    /// The three separate lists, then the closing line.
    pub fn print_summary(&self) {
        let entries = self.entries.borrow();
        let section = |title: &str, pick: &dyn Fn(&Entry) -> bool| {
            let picked: Vec<&Entry> = entries.iter().filter(|e| pick(e)).collect();
            println!("\n== {title}: {} ==", picked.len());
            for e in picked {
                println!(
                    "  {} {:<6} {}: {}",
                    e.status.label(),
                    e.level,
                    e.id,
                    e.summary
                );
            }
        };
        section("MUST failures (the run fails)", &|e| {
            e.status == Status::Fail
        });
        section(
            "SHOULD/MAY differences (warnings: the registry's permitted choice)",
            &|e| e.status == Status::Warn,
        );
        section(
            "our own extras that differ (not required by the spec)",
            &|e| e.status == Status::Differ,
        );
        let declared: Vec<String> = self.declared.iter().map(|f| f.name()).collect();
        section(
            &format!(
                "not applicable (features declared off: {})",
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            ),
            &|e| e.status == Status::NotApplicable,
        );
        println!();
        println!("{}", closing_line(&self.totals()));
    }
}

pub fn closing_line(t: &Totals) -> String {
    format!(
        "{} passed, {} failed; {} warnings (SHOULD/MAY; {} met); extras: {} met, {} differ; {} not applicable",
        t.passed,
        t.failed,
        t.warnings,
        t.optional_met,
        t.extras_met,
        t.extras_differ,
        t.not_applicable
    )
}

/// Indented details under a check line: the full exchange for a failure,
/// the request and status line for a difference, then the message.
fn details(status: Status, f: &Failure) -> String {
    let mut s = String::new();
    if let Some(ex) = &f.exchange {
        if status == Status::Fail {
            s.push_str(&ex.dump("      "));
        } else if status != Status::NotApplicable {
            s.push_str(&format!(
                "      request:  {} {}\n      response: {}\n",
                ex.method, ex.url, ex.status
            ));
        }
    }
    let label = match status {
        Status::Fail => "expected: ",
        Status::Warn => "registry's choice: ",
        Status::Differ => "differs: ",
        Status::NotApplicable => "not applicable: ",
        Status::Pass => "",
    };
    let pad = " ".repeat(label.len());
    for (i, line) in f.message.lines().enumerate() {
        let l = if i == 0 { label } else { pad.as_str() };
        s.push_str(&format!("      {l}{line}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    #[test]
    fn levels_map_to_statuses() {
        let failed = Failure::new("x");
        let na = Failure::not_applicable("off");
        let pre = Failure::prerequisite("push");
        let off = Failure::not_offered(Feature::TagDelete, "405");
        let none: &[Feature] = &[];
        let delete_off = &[Feature::Delete];
        let tag_delete_off = &[Feature::TagDelete];
        let blob_delete_off = &[Feature::BlobDelete];
        assert_eq!(Status::of(Level::Must, None, none), Status::Pass);
        assert_eq!(Status::of(Level::Must, Some(&failed), none), Status::Fail);
        assert_eq!(Status::of(Level::Must, Some(&pre), none), Status::Fail);
        // A MUST check is N/A only for a feature the run declared off.
        assert_eq!(Status::of(Level::Must, Some(&na), none), Status::Fail);
        assert_eq!(Status::of(Level::Must, Some(&na), delete_off), Status::Fail);
        assert_eq!(Status::of(Level::Must, Some(&off), none), Status::Fail);
        assert_eq!(
            Status::of(Level::Must, Some(&off), &[Feature::Referrers]),
            Status::Fail
        );
        assert_eq!(
            Status::of(Level::Must, Some(&off), delete_off),
            Status::NotApplicable
        );
        assert_eq!(
            Status::of(Level::Must, Some(&off), tag_delete_off),
            Status::NotApplicable
        );
        assert_eq!(
            Status::of(Level::Must, Some(&off), blob_delete_off),
            Status::Fail
        );
        assert_eq!(
            Status::of(Level::Should, Some(&na), none),
            Status::NotApplicable
        );
        assert_eq!(Status::of(Level::Should, Some(&failed), none), Status::Warn);
        assert_eq!(Status::of(Level::May, Some(&failed), none), Status::Warn);
        assert_eq!(
            Status::of(Level::May, Some(&pre), none),
            Status::NotApplicable
        );
        assert_eq!(
            Status::of(Level::Extra, Some(&failed), none),
            Status::Differ
        );
    }

    #[test]
    fn an_undeclared_na_on_a_must_check_fails_the_run() {
        let off = Failure::not_offered(Feature::Referrers, "the referrers API answered 404");
        let r = Reporter::default();
        r.record("m", "m", &spec::REFERRERS_200, Some(&off));
        r.record(
            "s",
            "s",
            &spec::SINGLE_POST_202,
            Some(&Failure::not_applicable("201")),
        );
        let t = r.totals();
        assert_eq!((t.failed, t.not_applicable), (1, 1), "{t:?}");
        let r = Reporter::new(vec![Feature::Referrers]);
        r.record("m", "m", &spec::REFERRERS_200, Some(&off));
        let t = r.totals();
        assert_eq!((t.failed, t.not_applicable), (0, 1), "{t:?}");
    }

    #[test]
    fn totals_count_must_checks_apart_from_warnings_and_extras() {
        let r = Reporter::default();
        r.record("a", "a", &spec::BASE, None);
        r.record("b", "b", &spec::BASE, Some(&Failure::new("no")));
        r.record("c", "c", &spec::SINGLE_POST_MAY, Some(&Failure::new("202")));
        r.record("d", "d", &spec::SINGLE_POST_MAY, None);
        r.record("e", "e", &spec::X_ETAG, None);
        r.record("f", "f", &spec::X_ETAG, Some(&Failure::new("none")));
        r.record(
            "g",
            "g",
            &spec::SINGLE_POST_202,
            Some(&Failure::not_applicable("-")),
        );
        let t = r.totals();
        assert_eq!(
            t,
            Totals {
                passed: 1,
                failed: 1,
                warnings: 1,
                optional_met: 1,
                extras_met: 1,
                extras_differ: 1,
                not_applicable: 1,
            }
        );
        assert!(closing_line(&t).starts_with("1 passed, 1 failed; 1 warnings"));
    }
}
