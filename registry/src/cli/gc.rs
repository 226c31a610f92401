//! `registry gc [--dry-run] [--grace 1h]`: collect garbage on a running
//! registry through its API (so it is the same on one node or many), with
//! a progress line while it runs and a summary at the end.

use crate::cli::remote::{self, credentials, Remote};
use crate::failure::Failure;
use crate::present::{human_size, short_digest};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// Report what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep what became unreferenced less than this long ago (`90s`, `15m`,
    /// `1h`) [default: the registry's `[gc] grace_secs`].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub grace: Option<Duration>,
    /// List every manifest and blob removed.
    #[arg(short, long)]
    pub verbose: bool,
}

pub async fn run(args: GcArgs) -> Result<(), Failure> {
    let creds = credentials(&args.remote)?;
    let base = args.remote.url.trim_end_matches('/').to_owned();
    let mut body = serde_json::json!({ "dry_run": args.dry_run });
    if let Some(g) = args.grace {
        body["grace_secs"] = g.as_secs().into();
    }
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1/gc"))
        .json(&body);
    if let Some((u, p)) = &creds {
        req = req.basic_auth(u, Some(p));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| remote::unreachable(&base, &e))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let (code, message) = remote::reason(status, &text);
        return Err(match code.as_deref() {
            Some("UNAUTHORIZED") => Failure::operational(
                "the registry wants credentials (--username, REGISTRY_PASSWORD)",
            ),
            Some("DENIED") => {
                Failure::operational("not allowed: garbage collection needs an administrator")
            }
            _ => Failure::operational(format!("garbage collection: {message}")),
        });
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut pending = Vec::new();
    let mut report = None;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| remote::unreachable(&base, &e))?
    {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).map_err(|e| {
                Failure::operational(format!("garbage collection: unreadable answer ({e})"))
            })?;
            if let Some(p) = v.get("progress") {
                bar.set_message(format!(
                    "reviewed {}, removed {} manifests, {} blobs ({})",
                    p["reviewed"],
                    p["manifests_removed"],
                    p["blobs_removed"],
                    human_size(p["bytes_freed"].as_i64().unwrap_or(0))
                ));
            } else if let Some(e) = v.get("error") {
                bar.finish_and_clear();
                return Err(Failure::operational(format!(
                    "garbage collection failed: {}",
                    e["message"].as_str().unwrap_or("unknown error")
                )));
            } else if let Some(r) = v.get("report") {
                report = Some(r.clone());
            }
        }
    }
    bar.finish_and_clear();
    let Some(r) = report else {
        return Err(Failure::operational(
            "garbage collection: the registry ended the answer without a report",
        ));
    };
    print!("{}", summary(&r, args.verbose));
    Ok(())
}

fn summary(r: &serde_json::Value, verbose: bool) -> String {
    let dry = r["dry_run"].as_bool() == Some(true);
    let verb = if dry { "would remove" } else { "removed" };
    let mut out = format!(
        "{}{verb} {} manifests, {} blob links, {} blobs: {} {} ({} reviewed in {:.2}s)\n",
        if dry { "dry run: " } else { "" },
        r["manifests_removed"],
        r["links_removed"],
        r["blobs_removed"],
        human_size(r["bytes_freed"].as_i64().unwrap_or(0)),
        if dry { "would be freed" } else { "freed" },
        r["reviewed"],
        r["seconds"].as_f64().unwrap_or(0.0),
    );
    if r["delete_failures"].as_u64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "{} blobs' bytes could not be deleted (see the registry's log; `registry check` lists them)\n",
            r["delete_failures"]
        ));
    }
    if verbose {
        for m in r["manifests"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  manifest {}@{}\n",
                m["repo"].as_str().unwrap_or(""),
                short_digest(m["digest"].as_str().unwrap_or(""))
            ));
        }
        for b in r["blobs"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  blob {} {}\n",
                short_digest(b["digest"].as_str().unwrap_or("")),
                human_size(b["size"].as_i64().unwrap_or(0))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_what_was_and_would_be_freed() {
        let r = serde_json::json!({"dry_run": true, "manifests_removed": 2, "links_removed": 3,
            "blobs_removed": 4, "bytes_freed": 2048, "reviewed": 10, "seconds": 0.5,
            "delete_failures": 0, "manifests": [], "blobs": []});
        let s = summary(&r, false);
        assert!(
            s.starts_with("dry run: would remove 2 manifests, 3 blob links, 4 blobs: "),
            "{s}"
        );
        assert!(s.contains("would be freed"), "{s}");
        let r = serde_json::json!({"dry_run": false, "manifests_removed": 0, "links_removed": 0,
            "blobs_removed": 1, "bytes_freed": 5, "reviewed": 1, "seconds": 0.1, "delete_failures": 1,
            "manifests": [], "blobs": [{"digest": "sha256:abcdef0123456789", "size": 5}]});
        let s = summary(&r, true);
        assert!(s.contains("removed 0 manifests"), "{s}");
        assert!(s.contains("could not be deleted"), "{s}");
        assert!(s.contains("blob "), "{s}");
    }
}
