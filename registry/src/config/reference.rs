//! The configuration reference (`docs/operating/configuration.md`) checked
//! against the configuration itself, so the two cannot drift: every key the
//! parser accepts is documented, and every key the reference's table names
//! is accepted. The parser says which keys it accepts in its error for an
//! unknown one (`deny_unknown_fields`), so no list is kept by hand.

use super::Config;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Every table of the configuration, as TOML opens it (a key that must come
/// first, such as an enum's tag, included).
const TABLES: [&str; 14] = [
    "[token]",
    "[token.external]",
    "[access]",
    "[[access.rules]]",
    "[login_limit]",
    "[storage]\nkind = \"s3\"",
    "[metadata]",
    "[gc]",
    "[[quotas]]",
    "[[notifications]]",
    "[[cache]]",
    "[pull_through]",
    "[layers]",
    "[ecr]",
];

/// The keys `header`'s table accepts, from the parser's own error.
fn accepted(header: &str) -> Option<BTreeSet<String>> {
    let text = format!("{header}\n__probe__ = 1\n");
    let err = toml::from_str::<Config>(&text).err()?.to_string();
    let (_, expected) = err.split_once("unknown field `__probe__`, expected")?;
    let line = expected.lines().next().unwrap_or_default();
    Some(
        line.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// The names a table header (`[gc]`, `[[access.rules]]`, `[gc] grace_secs`)
/// documents: each part of its dotted path.
fn table_names(text: &str, out: &mut BTreeSet<String>) {
    let t = text.trim();
    if !t.starts_with('[') {
        return;
    }
    let path = t.trim_start_matches('[');
    let path = path.split(']').next().unwrap_or_default();
    for name in path.split('.') {
        out.insert(name.trim().to_owned());
    }
}

/// Every `word` in backticks, and every `key =` and `[table]` of a TOML
/// example, in the documentation.
fn documented() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![docs()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a page");
            for (i, part) in text.split('`').enumerate() {
                if i % 2 == 1 {
                    out.insert(part.trim().to_owned());
                    table_names(part, &mut out);
                    // `[table] key` and `key = value` name the key too.
                    if let Some((_, key)) = part.rsplit_once(']') {
                        out.insert(key.trim().to_owned());
                    }
                    if let Some((key, _)) = part.split_once('=') {
                        out.insert(key.trim().to_owned());
                    }
                }
            }
            for line in text.lines() {
                table_names(line, &mut out);
                let line = line.trim_start_matches('#').trim();
                if let Some((key, _)) = line.split_once(" = ") {
                    out.insert(key.trim().to_owned());
                }
            }
        }
    }
    out
}

/// The first column of the reference's table: `key`, `[table] key`,
/// `[table]`, `[[table]]`, several in one cell.
fn reference_keys() -> Vec<String> {
    let text = std::fs::read_to_string(docs().join("operating/configuration.md"))
        .expect("docs/operating/configuration.md");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 {
                out.push(part.to_owned());
            }
        }
    }
    out
}

#[test]
fn every_key_the_parser_accepts_is_documented() {
    let documented = documented();
    let mut missing = Vec::new();
    // A top-level key (or table) has a row of the reference's own table.
    let mut rows = BTreeSet::new();
    for key in reference_keys() {
        table_names(&key, &mut rows);
        rows.insert(key);
    }
    let top = accepted("").expect("the top level refuses an unknown key");
    for key in &top {
        if !rows.contains(key) {
            missing.push(key.clone());
        }
    }
    for table in TABLES {
        let keys = accepted(table).unwrap_or_else(|| panic!("{table} refuses an unknown key"));
        for key in keys {
            if !documented.contains(&key) {
                missing.push(format!("{} {key}", table.lines().next().unwrap()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "configuration keys missing from docs/ (a top-level key: from the table of \
         docs/operating/configuration.md): {missing:?}"
    );
}

#[test]
fn every_key_the_reference_names_is_accepted() {
    let top = accepted("").expect("the top level refuses an unknown key");
    let tables: BTreeSet<String> = TABLES
        .iter()
        .map(|t| {
            t.lines()
                .next()
                .unwrap()
                .trim_matches(['[', ']'])
                .to_owned()
        })
        .collect();
    let mut unknown = Vec::new();
    let keys = reference_keys();
    assert!(keys.len() > 30, "the reference's table was not found");
    for key in keys {
        let known = match key.rsplit_once(']') {
            // `[table] key`
            Some((table, sub)) if !sub.trim().is_empty() => {
                let table = table.trim_matches(['[', ']']);
                let header = TABLES
                    .iter()
                    .find(|t| t.lines().next().unwrap().trim_matches(['[', ']']) == table);
                header
                    .and_then(|h| accepted(h))
                    .is_some_and(|k| k.contains(sub.trim()))
            }
            // `[table]`, `[[table]]`
            Some(_) => tables.contains(key.trim_matches(['[', ']'])),
            // A key of the top level, or a flag/variable written there.
            None => top.contains(&key) || key.starts_with("--") || key == "—",
        };
        if !known {
            unknown.push(key);
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/operating/configuration.md names keys the parser refuses: {unknown:?}"
    );
}
