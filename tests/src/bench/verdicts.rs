//! The targets, checked against the report.

use super::report::{fmt_num, fmt_ratio, Report, Verdict};
use super::work_auth::{GET_OFF, GET_ON, HEAD_OFF, HEAD_ON, TOKEN_P50};
use super::work_blobs::PULL_IN_TURN;
use super::work_logging::{LOG_OFF, LOG_ON, NGINX_LOG_ON};
use super::work_s3::{
    MANIFEST_PG, MANIFEST_SQLITE, NODE_PULL, NODE_PUSH, NODE_RSS, RAW_GET, RAW_PUT, REDIRECT_CPU,
};

fn rows<'a>(r: &'a Report, has: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
    r.rows
        .iter()
        .filter(move |row| has.iter().all(|h| row.label.contains(h)))
        .map(|row| row.label.as_str())
}

fn ratio_at_least(r: &Report, out: &mut Vec<Verdict>, has: &[&str], min: f64) {
    for label in rows(r, has) {
        let Some(x) = r.ratio(label) else { continue };
        out.push(Verdict {
            target: format!("{label}: ≥ {min}× reference"),
            measured: fmt_ratio(x),
            met: Some(x >= min),
        });
    }
}

/// `ours` of the row starting with `prefix`.
fn ours_of(r: &Report, prefix: &str) -> Option<f64> {
    let row = r.rows.iter().find(|row| row.label.starts_with(prefix))?;
    r.get(&row.label, "ours")
}

/// `ours` of the row starting with `prefix`, and the row's label.
fn labelled<'a>(r: &'a Report, prefix: &str) -> Option<(&'a str, f64)> {
    let row = r.rows.iter().find(|row| row.label.starts_with(prefix))?;
    Some((row.label.as_str(), r.get(&row.label, "ours")?))
}

fn s3(r: &Report, v: &mut Vec<Verdict>) {
    let share = |v: &mut Vec<Verdict>, what: &str, ours: &str, base: &str, min: f64| {
        if let (Some((_, a)), Some((_, b))) = (labelled(r, ours), labelled(r, base)) {
            v.push(Verdict {
                target: format!("{what}: ≥ {:.0} % of {base}", min * 100.0),
                measured: format!("{:.0} % ({} of {})", a / b * 100.0, fmt_num(a), fmt_num(b)),
                met: Some(a >= min * b),
            });
        }
    };
    share(v, NODE_PUSH, NODE_PUSH, RAW_PUT, 0.8);
    share(v, NODE_PULL, NODE_PULL, RAW_GET, 0.8);
    share(v, MANIFEST_PG, MANIFEST_PG, MANIFEST_SQLITE, 0.5);
    if let Some((_, ms)) = labelled(r, REDIRECT_CPU) {
        v.push(Verdict {
            target: format!("{REDIRECT_CPU}: under 1 ms"),
            measured: format!("{} ms", fmt_num(ms)),
            met: Some(ms < 1.0),
        });
    }
    if let Some((label, mib)) = labelled(r, NODE_RSS) {
        v.push(Verdict {
            target: format!("{label}: ≤ 64 MiB"),
            measured: format!("{} MiB", fmt_num(mib)),
            met: Some(mib <= 64.0),
        });
    }
}

fn metrics(r: &Report, v: &mut Vec<Verdict>) {
    if let (Some(on), Some(off)) = (
        ours_of(r, super::work_logging::METRICS_ON),
        ours_of(r, super::work_logging::METRICS_OFF),
    ) {
        v.push(Verdict {
            target: "manifest GET by tag with metrics on: within 3 % of metrics off".into(),
            measured: format!(
                "{:.1} % ({} of {} req/s)",
                on / off * 100.0,
                fmt_num(on),
                fmt_num(off)
            ),
            met: Some(on >= 0.97 * off),
        });
    }
}

fn pullthrough(r: &Report, v: &mut Vec<Verdict>) {
    use super::work_pullthrough::{CACHED, EVENTS_OFF, EVENTS_ON, UNCACHED, UPSTREAM_BYTES};
    if let (Some((_, cold)), Some((_, warm))) = (labelled(r, UNCACHED), labelled(r, CACHED)) {
        v.push(Verdict {
            target:
                "200 concurrent pulls of an uncached image: within 1.5× of the same pull cached"
                    .into(),
            measured: format!(
                "{:.2}× ({} s against {} s)",
                cold / warm,
                fmt_num(cold),
                fmt_num(warm)
            ),
            met: Some(cold <= 1.5 * warm),
        });
    }
    if let Some((_, x)) = labelled(r, UPSTREAM_BYTES) {
        v.push(Verdict {
            target: "upstream bytes fetched = the image's blob bytes (one fetch)".into(),
            measured: format!("{x:.3}×"),
            met: Some((x - 1.0).abs() < 1e-9),
        });
    }
    if let (Some(on), Some(off)) = (ours_of(r, EVENTS_ON), ours_of(r, EVENTS_OFF)) {
        v.push(Verdict {
            target: "manifest GET with webhook delivery on: within 3 % of no webhooks".into(),
            measured: format!(
                "{:.1} % ({} of {} req/s)",
                on / off * 100.0,
                fmt_num(on),
                fmt_num(off)
            ),
            met: Some(on >= 0.97 * off),
        });
    }
}

fn gc(r: &Report, v: &mut Vec<Verdict>) {
    if let Some((label, secs)) = labelled(r, super::work_gc::GC_RUN) {
        v.push(Verdict {
            target: format!("{label}: under 10 s"),
            measured: format!("{} s", fmt_num(secs)),
            met: Some(secs < 10.0),
        });
    }
    if let (Some(before), Some(during)) = (
        ours_of(r, super::work_gc::PUSH_BEFORE),
        ours_of(r, super::work_gc::PUSH_DURING),
    ) {
        v.push(Verdict {
            target: "pushes during a collection: ≥ 80 % of their throughput".into(),
            measured: format!(
                "{:.0} % ({} of {} images/s)",
                during / before * 100.0,
                fmt_num(during),
                fmt_num(before)
            ),
            met: Some(during >= 0.8 * before),
        });
    }
}

fn logging(r: &Report, v: &mut Vec<Verdict>) {
    let (Some(on), Some(off), Some(nginx)) = (
        ours_of(r, LOG_ON),
        ours_of(r, LOG_OFF),
        ours_of(r, NGINX_LOG_ON),
    ) else {
        return;
    };
    v.push(Verdict {
        target: "manifest GET by tag with the access log on: ≥ 0.9 of log off".into(),
        measured: format!(
            "{} ({} vs {} req/s)",
            fmt_ratio(on / off),
            fmt_num(on),
            fmt_num(off)
        ),
        met: Some(on >= 0.9 * off),
    });
    v.push(Verdict {
        target:
            "manifest GET by tag with the access log on: ≥ 0.85 of nginx with its access log on"
                .into(),
        measured: format!(
            "{} ({} vs {} req/s)",
            fmt_ratio(on / nginx),
            fmt_num(on),
            fmt_num(nginx)
        ),
        met: Some(on >= 0.85 * nginx),
    });
}

fn auth(r: &Report, v: &mut Vec<Verdict>) {
    for (what, on, off) in [
        ("manifest GET by tag", GET_ON, GET_OFF),
        ("blob HEAD", HEAD_ON, HEAD_OFF),
    ] {
        let (Some(on), Some(off)) = (ours_of(r, on), ours_of(r, off)) else {
            continue;
        };
        v.push(Verdict {
            target: format!("{what} with auth on: within 10% of auth off"),
            measured: format!(
                "{} ({} vs {} req/s)",
                fmt_ratio(on / off),
                fmt_num(on),
                fmt_num(off)
            ),
            met: Some(on >= 0.9 * off),
        });
    }
    if let Some(p50) = ours_of(r, TOKEN_P50) {
        v.push(Verdict {
            target: "GET /token: under 1 ms p50".into(),
            measured: format!("{} ms", fmt_num(p50)),
            met: Some(p50 < 1.0),
        });
    }
}

pub fn verdicts(r: &Report) -> Vec<Verdict> {
    let mut v = Vec::new();
    logging(r, &mut v);
    s3(r, &mut v);
    gc(r, &mut v);
    metrics(r, &mut v);
    pullthrough(r, &mut v);
    auth(r, &mut v);
    let sha = r
        .limits
        .iter()
        .find(|(l, _, _)| l.contains("openssl"))
        .map(|(_, x, _)| *x);
    for has in [&["push ", "monolithic (POST"][..], &["push ", "chunked ("]] {
        ratio_at_least(r, &mut v, has, 5.0);
        for label in rows(r, has) {
            if let (Some(ours), Some(sha)) = (r.get(label, "ours"), sha) {
                v.push(Verdict {
                    target: format!("{label}: ≥ 70% of one-core sha256"),
                    measured: format!(
                        "{:.0}% ({} of {} MB/s)",
                        100.0 * ours / sha,
                        fmt_num(ours),
                        fmt_num(sha)
                    ),
                    met: Some(ours >= 0.7 * sha),
                });
            }
        }
    }
    for label in rows(r, &["server CPU per GiB pushed"]) {
        if let Some(x) = r.get(label, "ours") {
            v.push(Verdict {
                target: format!("{label}: ≤ 1 s"),
                measured: format!("{} s", fmt_num(x)),
                met: Some(x <= 1.0),
            });
        }
    }
    ratio_at_least(r, &mut v, &["pull ", "(page cache warm)"], 1.0);
    let stat = r
        .limits
        .iter()
        .filter(|(l, _, _)| l.contains("over loopback HTTP"))
        .map(|(_, x, _)| *x)
        .fold(f64::NAN, f64::max);
    // Judged on our pulls measured in turn with the static servers.
    let in_turn = r
        .limits
        .iter()
        .find(|(l, _, _)| l == PULL_IN_TURN)
        .map(|(_, x, _)| *x);
    for label in rows(r, &["pull ", "(page cache warm)"]) {
        let ours = in_turn.or_else(|| r.get(label, "ours"));
        if let Some(ours) = ours.filter(|_| stat.is_finite()) {
            v.push(Verdict {
                target: format!("{label}: within 10% of the best static file server"),
                measured: format!(
                    "{:.0}% ({} of {} MB/s)",
                    100.0 * ours / stat,
                    fmt_num(ours),
                    fmt_num(stat)
                ),
                met: Some(ours >= 0.9 * stat),
            });
        }
    }
    ratio_at_least(r, &mut v, &["Range GETs"], 5.0);
    for name in [
        "manifest GET by tag,",
        "manifest HEAD by digest,",
        "blob HEAD,",
    ] {
        ratio_at_least(r, &mut v, &[name, "connections"], 20.0);
    }
    ratio_at_least(r, &mut v, &["push unique 4 KiB blobs"], 5.0);
    ratio_at_least(r, &mut v, &["push two-layer"], 5.0);
    for what in ["tags/list page", "_catalog page"] {
        let found: Vec<f64> = rows(r, &[what]).filter_map(|l| r.get(l, "ours")).collect();
        if let [small, large] = found[..] {
            v.push(Verdict {
                target: format!("{what}: same latency at the small and the large total"),
                measured: format!("{} ms vs {} ms", fmt_num(small), fmt_num(large)),
                met: Some(large <= (small * 1.5).max(small + 1.0)),
            });
        }
    }
    let rss: Vec<f64> = rows(r, &["server peak RSS"])
        .filter_map(|l| r.get(l, "ours"))
        .collect();
    if let Some(max) = rss.iter().copied().reduce(f64::max) {
        v.push(Verdict {
            target: "server peak RSS while pushing and pulling the huge blob: ≤ 64 MiB".into(),
            measured: format!("{} MiB", fmt_num(max)),
            met: Some(max <= 64.0),
        });
    }
    // Steady state: the last two rounds (the first warms pools up).
    if let [.., a, b] = rss[..] {
        v.push(Verdict {
            target: "no RSS growth across repeated huge push + pull (last two rounds)".into(),
            measured: format!("{} → {} MiB", fmt_num(a), fmt_num(b)),
            met: Some(b <= a * 1.05 + 1.0),
        });
    }
    v
}
