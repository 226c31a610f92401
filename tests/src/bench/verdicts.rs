//! The targets, checked against the report. A workload that ran
//! but left no row for a target gets a "no" for it (a measurement that
//! silently produced nothing is no pass); targets of workloads that did
//! not run are left out, and ratios to the reference are judged only when
//! the reference ran.

use super::report::{fmt_num, fmt_ratio, Report, Verdict};
use super::work_auth::{GET_OFF, GET_ON, HEAD_OFF, HEAD_ON, TOKEN_P50};
use super::work_blobs::PULL_IN_TURN;
use super::work_logging::{LOG_OFF, LOG_ON, NGINX_LOG_ON};
use super::work_s3::{
    MANIFEST_PG, MANIFEST_SQLITE, NODE_PULL, NODE_PUSH, NODE_RSS, RAW_GET, RAW_PUT, REDIRECT_CPU,
};

/// What ran, the report, and the verdicts so far.
pub struct Judge<'a> {
    r: &'a Report,
    ran: &'a [&'a str],
    reference: bool,
    out: Vec<Verdict>,
}

impl<'a> Judge<'a> {
    /// `ran`: the workloads that ran; `reference`: whether the CNCF
    /// reference was one of the targets.
    pub fn new(r: &'a Report, ran: &'a [&'a str], reference: bool) -> Judge<'a> {
        Judge {
            r,
            ran,
            reference,
            out: Vec::new(),
        }
    }

    fn ran(&self, workload: &str) -> bool {
        self.ran.contains(&workload)
    }

    fn push(&mut self, target: String, measured: String, met: bool) {
        self.out.push(Verdict {
            target,
            measured,
            met: Some(met),
        });
    }

    /// A target whose figure the workload did not produce: a "no".
    fn no_row(&mut self, target: String, what: &str) {
        self.out.push(Verdict {
            target,
            measured: format!("no figure: no row {what}"),
            met: Some(false),
        });
    }

    /// Labels of the rows whose label contains all of `has`.
    fn rows(&self, has: &[&str]) -> Vec<&'a str> {
        let r: &'a Report = self.r;
        r.rows
            .iter()
            .filter(|row| has.iter().all(|h| row.label.contains(h)))
            .map(|row| row.label.as_str())
            .collect()
    }

    /// `ours` of the row starting with `prefix`, with its label; a "no"
    /// for `target` if there is none.
    fn ours(&mut self, prefix: &str, target: &str) -> Option<(&'a str, f64)> {
        let r: &'a Report = self.r;
        let found = r
            .rows
            .iter()
            .find(|row| row.label.starts_with(prefix))
            .and_then(|row| Some((row.label.as_str(), r.get(&row.label, "ours")?)));
        if found.is_none() {
            self.no_row(target.to_owned(), &format!("{prefix:?} for ours"));
        }
        found
    }

    /// Every row with all of `has` at least `min` times the reference
    /// (better); a "no" if there is no such row, or a row lacks a figure.
    fn ratio_at_least(&mut self, has: &[&str], min: f64) {
        if !self.reference {
            return;
        }
        let labels: Vec<&str> = self
            .rows(has)
            .into_iter()
            .filter(|l| !l.contains("collection"))
            .collect();
        if labels.is_empty() {
            self.no_row(
                format!("{has:?}: ≥ {min}× reference"),
                &format!("with {has:?}"),
            );
        }
        for label in labels {
            let target = format!("{label}: ≥ {min}× reference");
            match self.r.ratio(label) {
                Some(x) => self.push(target, fmt_ratio(x), x >= min),
                None => self.no_row(target, "figure for both ours and the reference"),
            }
        }
    }

    pub fn verdicts(mut self) -> Vec<Verdict> {
        if self.ran("logging") {
            logging(&mut self);
        }
        if self.ran("s3") {
            s3(&mut self);
        }
        if self.ran("gc") {
            gc(&mut self);
        }
        if self.ran("metrics") {
            metrics(&mut self);
        }
        if self.ran("pullthrough") {
            pullthrough(&mut self);
        }
        if self.ran("events") {
            events(&mut self);
        }
        if self.ran("auth") {
            auth(&mut self);
        }
        if self.ran("push") {
            push(&mut self);
        }
        if self.ran("pull") {
            pull(&mut self);
        }
        if self.ran("range") {
            self.ratio_at_least(&["Range GETs"], 5.0);
        }
        if self.ran("reads") {
            for name in [
                "manifest GET by tag,",
                "manifest HEAD by digest,",
                "blob HEAD,",
            ] {
                self.ratio_at_least(&[name, "connections"], 20.0);
            }
        }
        if self.ran("small") {
            self.ratio_at_least(&["push unique 4 KiB blobs"], 5.0);
            self.ratio_at_least(&["push two-layer"], 5.0);
        }
        for (workload, what) in [("tags", "tags/list page"), ("catalog", "_catalog page")] {
            if self.ran(workload) {
                same_latency(&mut self, what);
            }
        }
        if self.ran("huge") {
            huge(&mut self);
        }
        if self.ran("layers") {
            layers(&mut self);
        }
        if !self.reference {
            self.out.push(Verdict {
                target: "the targets against the reference".into(),
                measured: "not judged: no --reference".into(),
                met: None,
            });
        }
        self.out
    }
}

/// A layer's files asked for again come from the kept index: under 10 ms.
fn layers(j: &mut Judge) {
    use super::work_layers::{BIG_SECOND, MANY_ROOT_SECOND, MANY_SECOND};
    for label in [BIG_SECOND, MANY_SECOND, MANY_ROOT_SECOND] {
        let target = format!("{label}: under 10 ms");
        if let Some((_, ms)) = j.ours(label, &target) {
            j.push(target, format!("{} ms", fmt_num(ms)), ms < 10.0);
        }
    }
}

/// `ours` of `a` at least `min` of `ours` of `b`.
fn share(j: &mut Judge, what: &str, a: &str, b: &str, min: f64) {
    let target = format!("{what}: ≥ {:.0} % of {b}", min * 100.0);
    if let (Some((_, x)), Some((_, y))) = (j.ours(a, &target), j.ours(b, &target)) {
        j.push(
            target,
            format!("{:.0} % ({} of {})", x / y * 100.0, fmt_num(x), fmt_num(y)),
            x >= min * y,
        );
    }
}

fn s3(j: &mut Judge) {
    share(j, NODE_PUSH, NODE_PUSH, RAW_PUT, 0.8);
    share(j, NODE_PULL, NODE_PULL, RAW_GET, 0.8);
    share(j, MANIFEST_PG, MANIFEST_PG, MANIFEST_SQLITE, 0.5);
    let target = format!("{REDIRECT_CPU}: under 1 ms");
    if let Some((_, ms)) = j.ours(REDIRECT_CPU, &target) {
        j.push(target, format!("{} ms", fmt_num(ms)), ms < 1.0);
    }
    if let Some((label, mib)) = j.ours(NODE_RSS, &format!("{NODE_RSS}: ≤ 64 MiB")) {
        j.push(
            format!("{label}: ≤ 64 MiB"),
            format!("{} MiB", fmt_num(mib)),
            mib <= 64.0,
        );
    }
}

/// `ours` of `on` within `pct` % below `off` (both req/s).
fn within(j: &mut Judge, target: &str, on: &str, off: &str, pct: f64) {
    if let (Some((_, on)), Some((_, off))) = (j.ours(on, target), j.ours(off, target)) {
        j.push(
            target.to_owned(),
            format!(
                "{:.1} % ({} of {} req/s)",
                on / off * 100.0,
                fmt_num(on),
                fmt_num(off)
            ),
            on >= (1.0 - pct / 100.0) * off,
        );
    }
}

fn metrics(j: &mut Judge) {
    within(
        j,
        "manifest GET by tag with metrics on: within 3 % of metrics off",
        super::work_logging::METRICS_ON,
        super::work_logging::METRICS_OFF,
        3.0,
    );
}

fn pullthrough(j: &mut Judge) {
    use super::work_pullthrough::{CACHED, UNCACHED, UPSTREAM_BYTES};
    let target = "200 concurrent pulls of an uncached image: within 1.5× of the same pull cached";
    if let (Some((_, cold)), Some((_, warm))) = (j.ours(UNCACHED, target), j.ours(CACHED, target)) {
        j.push(
            target.into(),
            format!(
                "{:.2}× ({} s against {} s)",
                cold / warm,
                fmt_num(cold),
                fmt_num(warm)
            ),
            cold <= 1.5 * warm,
        );
    }
    let target = "upstream bytes fetched = the image's blob bytes (one fetch)";
    if let Some((_, x)) = j.ours(UPSTREAM_BYTES, target) {
        j.push(target.into(), format!("{x:.3}×"), (x - 1.0).abs() < 1e-9);
    }
}

fn events(j: &mut Judge) {
    use super::work_pullthrough::{EVENTS_OFF, EVENTS_ON};
    within(
        j,
        "manifest GET with webhook delivery on: within 3 % of no webhooks",
        EVENTS_ON,
        EVENTS_OFF,
        3.0,
    );
}

fn gc(j: &mut Judge) {
    use super::work_gc::{GC_DURING, GC_RUN, PUSH_BEFORE, PUSH_DURING};
    let target = format!("{GC_RUN} …: under 10 s");
    if let Some((label, secs)) = j.ours(GC_RUN, &target) {
        j.push(
            format!("{label}: under 10 s"),
            format!("{} s", fmt_num(secs)),
            secs < 10.0,
        );
    }
    // The collection the pushes ran during did the work it was given (its
    // garbage was due and went), so "during" means something.
    let target = "the collection during the pushes removed the images untagged for it";
    if let Some((_, share)) = j.ours(GC_DURING, target) {
        j.push(
            target.into(),
            format!("{:.0} % of them", share * 100.0),
            (share - 1.0).abs() < 1e-9,
        );
    }
    let target = "pushes during a collection: ≥ 80 % of their throughput";
    if let (Some((_, before)), Some((_, during))) =
        (j.ours(PUSH_BEFORE, target), j.ours(PUSH_DURING, target))
    {
        j.push(
            target.into(),
            format!(
                "{:.0} % ({} of {} images/s)",
                during / before * 100.0,
                fmt_num(during),
                fmt_num(before)
            ),
            during >= 0.8 * before,
        );
    }
}

fn logging(j: &mut Judge) {
    within(
        j,
        "manifest GET by tag with the access log on: ≥ 0.9 of log off",
        LOG_ON,
        LOG_OFF,
        10.0,
    );
    within(
        j,
        "manifest GET by tag with the access log on: ≥ 0.85 of nginx with its access log on",
        LOG_ON,
        NGINX_LOG_ON,
        15.0,
    );
}

fn auth(j: &mut Judge) {
    for (what, on, off) in [
        ("manifest GET by tag", GET_ON, GET_OFF),
        ("blob HEAD", HEAD_ON, HEAD_OFF),
    ] {
        within(
            j,
            &format!("{what} with auth on: within 10% of auth off"),
            on,
            off,
            10.0,
        );
    }
    let target = "GET /token: under 1 ms p50";
    if let Some((_, p50)) = j.ours(TOKEN_P50, target) {
        j.push(target.into(), format!("{} ms", fmt_num(p50)), p50 < 1.0);
    }
}

fn push(j: &mut Judge) {
    let sha =
        j.r.limits
            .iter()
            .find(|(l, _, _)| l.contains("openssl"))
            .map(|(_, x, _)| *x);
    for has in [&["push ", "monolithic (POST"][..], &["push ", "chunked ("]] {
        j.ratio_at_least(has, 5.0);
        let labels = j.rows(has);
        if labels.is_empty() {
            j.no_row(
                format!("{has:?}: ≥ 70% of one-core sha256"),
                &format!("with {has:?}"),
            );
        }
        for label in labels {
            let target = format!("{label}: ≥ 70% of one-core sha256");
            match (j.r.get(label, "ours"), sha) {
                (Some(ours), Some(sha)) => j.push(
                    target,
                    format!(
                        "{:.0}% ({} of {} MB/s)",
                        100.0 * ours / sha,
                        fmt_num(ours),
                        fmt_num(sha)
                    ),
                    ours >= 0.7 * sha,
                ),
                _ => j.no_row(target, "figure for ours, or no sha256 limit"),
            }
        }
    }
    let labels = j.rows(&["server CPU per GiB pushed"]);
    if labels.is_empty() {
        j.no_row(
            "server CPU per GiB pushed: ≤ 1 s".into(),
            "\"server CPU per GiB pushed\"",
        );
    }
    for label in labels {
        let target = format!("{label}: ≤ 1 s");
        match j.r.get(label, "ours") {
            Some(x) => j.push(target, format!("{} s", fmt_num(x)), x <= 1.0),
            None => j.no_row(target, "figure for ours"),
        }
    }
}

fn pull(j: &mut Judge) {
    j.ratio_at_least(&["pull ", "(page cache warm)"], 1.0);
    let stat =
        j.r.limits
            .iter()
            .filter(|(l, _, _)| l.contains("over loopback HTTP"))
            .map(|(_, x, _)| *x)
            .fold(f64::NAN, f64::max);
    // Judged on our pulls measured in turn with the static servers.
    let in_turn =
        j.r.limits
            .iter()
            .find(|(l, _, _)| l == PULL_IN_TURN)
            .map(|(_, x, _)| *x);
    let labels = j.rows(&["pull ", "(page cache warm)"]);
    if labels.is_empty() {
        j.no_row(
            "pull (page cache warm): within 10% of the best static file server".into(),
            "\"pull … (page cache warm)\"",
        );
    }
    for label in labels {
        let target = format!("{label}: within 10% of the best static file server");
        match in_turn.or_else(|| j.r.get(label, "ours")) {
            Some(ours) if stat.is_finite() => j.push(
                target,
                format!(
                    "{:.0}% ({} of {} MB/s)",
                    100.0 * ours / stat,
                    fmt_num(ours),
                    fmt_num(stat)
                ),
                ours >= 0.9 * stat,
            ),
            _ => j.no_row(target, "figure for ours, or no static file server figure"),
        }
    }
}

/// A listing page as fast at the large total as at the small one: within
/// 1.5× (a page of 100 must not cost more as the total grows).
fn same_latency(j: &mut Judge, what: &str) {
    let target = format!("{what}: same latency at the small and the large total (≤ 1.5×)");
    let found: Vec<f64> = j
        .rows(&[what])
        .into_iter()
        .filter_map(|l| j.r.get(l, "ours"))
        .collect();
    match found[..] {
        [small, large] => j.push(
            target,
            format!(
                "{} ms vs {} ms ({})",
                fmt_num(small),
                fmt_num(large),
                fmt_ratio(large / small)
            ),
            large <= small * 1.5,
        ),
        _ => j.no_row(target, &format!("pair {what:?} (found {})", found.len())),
    }
}

fn huge(j: &mut Judge) {
    let rss: Vec<f64> = j
        .rows(&["server peak RSS"])
        .into_iter()
        .filter_map(|l| j.r.get(l, "ours"))
        .collect();
    let target = "server peak RSS while pushing and pulling the huge blob: ≤ 64 MiB";
    match rss.iter().copied().reduce(f64::max) {
        Some(max) => j.push(target.into(), format!("{} MiB", fmt_num(max)), max <= 64.0),
        None => j.no_row(target.into(), "\"server peak RSS\" for ours"),
    }
    // Steady state: the last two rounds (the first warms pools up).
    let target = "no RSS growth across repeated huge push + pull (last two rounds)";
    match rss[..] {
        [.., a, b] => j.push(
            target.into(),
            format!("{} → {} MiB", fmt_num(a), fmt_num(b)),
            b <= a * 1.05 + 1.0,
        ),
        _ => j.no_row(target.into(), "for two rounds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Better;

    #[test]
    fn a_workload_that_left_no_row_gets_a_no() {
        let r = Report::default();
        let v = Judge::new(&r, &["tags", "gc"], false).verdicts();
        let missing: Vec<_> = v.iter().filter(|v| v.met == Some(false)).collect();
        assert!(
            missing.iter().any(|v| v.target.contains("tags/list page")),
            "{v:?}"
        );
        assert!(
            missing
                .iter()
                .any(|v| v.target.contains("during a collection")),
            "{v:?}"
        );
        // What did not run is not judged.
        assert!(!v.iter().any(|v| v.target.contains("_catalog")), "{v:?}");
    }

    #[test]
    fn same_latency_means_within_one_and_a_half_times() {
        for (small, large, met) in [(0.3, 0.4, true), (0.3, 1.2, false), (10.0, 14.0, true)] {
            let mut r = Report::default();
            for (n, ms) in [(1000, small), (100000, large)] {
                let label = format!("tags/list page (n=100, last=) in {n} tags, p50");
                r.set(&label, "ms", Better::Lower, "ours", ms);
            }
            let v = Judge::new(&r, &["tags"], true).verdicts();
            assert_eq!(v[0].met, Some(met), "{small} ms vs {large} ms: {v:?}");
        }
    }
}
