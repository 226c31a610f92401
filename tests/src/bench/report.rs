//! The results table: one row per figure, one column per target, the ratio
//! of ours to the reference, and the machine's limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    pub values: BTreeMap<String, f64>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Machine limits: (label, value, unit).
    pub limits: Vec<(String, f64, &'static str)>,
}

/// A target's verdict, for the closing list.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

impl Report {
    pub fn set(&mut self, label: &str, unit: &'static str, better: Better, who: &str, v: f64) {
        let row = match self.rows.iter().position(|r| r.label == label) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    label: label.to_string(),
                    unit,
                    better,
                    values: BTreeMap::new(),
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.values.insert(who.to_string(), v);
    }

    pub fn limit(&mut self, label: &str, v: f64, unit: &'static str) {
        self.limits.retain(|(l, _, _)| l != label);
        self.limits.push((label.to_string(), v, unit));
    }

    pub fn get(&self, label: &str, who: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.label == label)
            .and_then(|r| r.values.get(who).copied())
    }

    pub fn get_limit(&self, label: &str) -> Option<f64> {
        self.limits
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, v, _)| *v)
    }

    /// How many times better `ours` is than `reference` on a row.
    pub fn ratio(&self, label: &str) -> Option<f64> {
        let row = self.rows.iter().find(|r| r.label == label)?;
        let (a, b) = (row.values.get("ours")?, row.values.get("reference")?);
        Some(match row.better {
            Better::Higher => a / b,
            Better::Lower => b / a,
        })
    }

    /// Markdown tables: figures per target with the ratio, then limits.
    pub fn render(&self, targets: &[String]) -> String {
        let mut out = String::new();
        let ratio = targets.iter().any(|t| t == "ours") && targets.iter().any(|t| t == "reference");
        let _ = write!(out, "| workload | unit |");
        for t in targets {
            let _ = write!(out, " {t} |");
        }
        if ratio {
            out.push_str(" ours vs reference |");
        }
        out.push('\n');
        out.push_str("|---|---|");
        for _ in targets {
            out.push_str("---:|");
        }
        if ratio {
            out.push_str("---:|");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {} | {} |", row.label, row.unit);
            for t in targets {
                match row.values.get(t) {
                    Some(v) => {
                        let _ = write!(out, " {} |", fmt_num(*v));
                    }
                    None => out.push_str(" — |"),
                }
            }
            if ratio {
                match self.ratio(&row.label) {
                    Some(r) if r.is_finite() => {
                        let _ = write!(out, " {} |", fmt_ratio(r));
                    }
                    _ => out.push_str(" — |"),
                }
            }
            out.push('\n');
        }
        if !self.limits.is_empty() {
            out.push_str("\n| limit of this machine | value | unit |\n|---|---:|---|\n");
            for (l, v, u) in &self.limits {
                let _ = writeln!(out, "| {l} | {} | {u} |", fmt_num(*v));
            }
        }
        out
    }
}

/// "12.5×" (better) or "0.80×" (worse).
pub fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn render_verdicts(v: &[Verdict]) -> String {
    let mut out = String::from("| target | measured | met |\n|---|---|---|\n");
    for v in v {
        let met = match v.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", v.target, v.measured);
    }
    out
}
