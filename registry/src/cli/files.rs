//! `registry files NAME:TAG`: what an image's layers put on disk, from a
//! running registry's `/api/v1` (no pull): the stacked file system or one
//! layer's files (`--layer N`, `-1` the last) like `ls -l`, or what the
//! layers wasted (`--waste`) like `dive --ci`, failing under
//! `--lowest-efficiency` or over `--highest-wasted-bytes` so CI can gate
//! on it. A layer the registry has not indexed yet is indexed first, with
//! a progress line on stderr. Names come from the layers (anyone's bytes):
//! control characters are printed as escapes.

use crate::cli::remote::{self, Remote};
use crate::failure::Failure;
use crate::present::{human_size, printable};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::fmt::Write as _;

#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Image reference: NAME:TAG or NAME@DIGEST.
    pub reference: String,
    /// Platform of a multi-platform image, e.g. linux/arm64 [default: linux/amd64 if present, else the first].
    #[arg(long)]
    pub platform: Option<String>,
    /// One layer's files (0 the base layer, -1 the last), its deletions too.
    #[arg(long, allow_hyphen_values = true)]
    pub layer: Option<i64>,
    /// The directory to list.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Directory levels to list below --path.
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Show what the layers wasted (files later layers overwrote or
    /// deleted) and files whose names suggest secrets, instead of files.
    #[arg(long)]
    pub waste: bool,
    /// With --waste: exit 1 if the efficiency (1 - wasted/total) is below this, e.g. 0.95.
    #[arg(long)]
    pub lowest_efficiency: Option<f64>,
    /// With --waste: exit 1 if more bytes than this are wasted.
    #[arg(long)]
    pub highest_wasted_bytes: Option<u64>,
    #[command(flatten)]
    pub remote: Remote,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn run(args: FilesArgs) -> Result<(), Failure> {
    if (args.lowest_efficiency.is_some() || args.highest_wasted_bytes.is_some()) && !args.waste {
        return Err(Failure::usage(
            "--lowest-efficiency and --highest-wasted-bytes go with --waste",
        ));
    }
    if args.waste && args.layer.is_some() {
        return Err(Failure::usage(
            "--waste is about the whole image: leave out --layer",
        ));
    }
    if !args.reference.contains(':') && !args.reference.contains('@') {
        return Err(Failure::usage(format!(
            "{}: name the image as NAME:TAG or NAME@DIGEST",
            args.reference
        )));
    }
    let creds = remote::credentials(&args.remote)?;
    let creds = creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let platform = args
        .platform
        .as_deref()
        .map(|p| format!("&platform={}", enc(p)))
        .unwrap_or_default();
    let image = &args.reference;
    let listing = format!("path={}&depth={}", enc(&args.path), args.depth);
    let path = if args.waste {
        format!("/api/v1/images/{image}/waste?{platform}")
    } else if let Some(n) = args.layer {
        let digest = layer_digest(&args, creds, &platform, n).await?;
        let name = crate::present::split_reference(image).0;
        format!("/api/v1/repositories/{name}/layers/{digest}/files?{listing}")
    } else {
        format!("/api/v1/images/{image}/files?{listing}{platform}")
    };
    if args.waste {
        let report = fetch(&args, creds, &path).await?;
        print!("{}", waste_report(&report));
        return gate(&report, &args);
    }
    // Every page of the listing.
    let mut last: Option<String> = None;
    let mut out = String::new();
    loop {
        let page_path = match &last {
            Some(l) => format!("{path}&n=1000&last={}", enc(l)),
            None => format!("{path}&n=1000"),
        };
        let page = fetch(&args, creds, &page_path).await?;
        for row in page["rows"].as_array().into_iter().flatten() {
            out.push_str(&ls_line(row));
        }
        match page["next"].as_str() {
            Some(n) => last = Some(n.to_owned()),
            None => break,
        }
    }
    print!("{out}");
    Ok(())
}

/// The digest of layer `n` of the image (`-1` the last).
async fn layer_digest(
    args: &FilesArgs,
    creds: Option<(&str, &str)>,
    platform: &str,
    n: i64,
) -> Result<String, Failure> {
    // The stacked listing of nothing names the layers without indexing
    // them: `depth` 1 of a path no layer has would still index; ask the
    // image description instead.
    let detail = fetch(
        args,
        creds,
        &format!("/api/v1/images/{}?{platform}", args.reference),
    )
    .await?;
    let image = detail["images"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|i| i["platform"] == "linux/amd64" || args.platform.is_some())
                .or(a.first())
        })
        .ok_or_else(|| Failure::operational(format!("{}: no image manifest", args.reference)))?;
    let layers = image["layers"].as_array().cloned().unwrap_or_default();
    let len = layers.len() as i64;
    let i = if n < 0 { len + n } else { n };
    if !(0..len).contains(&i) {
        return Err(Failure::usage(format!(
            "--layer {n}: {} has {len} layers (0 to {}, or -1 for the last)",
            args.reference,
            len - 1
        )));
    }
    Ok(layers[i as usize]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// GET `path`, waiting out an indexing with a progress line.
async fn fetch(
    args: &FilesArgs,
    creds: Option<(&str, &str)>,
    path: &str,
) -> Result<Value, Failure> {
    let bar = ProgressBar::hidden();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_style(
        ProgressStyle::with_template("indexing {msg} [{bar:30}] {bytes}/{total_bytes}")
            .expect("a valid template"),
    );
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut announced = false;
    loop {
        let (status, body) = remote::send(
            &args.remote.url,
            reqwest::Method::GET,
            &format!("{path}{sep}wait=2"),
            None,
            creds,
        )
        .await?;
        if status == reqwest::StatusCode::ACCEPTED {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            let (read, size) = (
                v["read"].as_u64().unwrap_or(0),
                v["size"].as_u64().unwrap_or(0),
            );
            bar.set_length(size);
            bar.set_position(read);
            bar.set_message(format!("{} entries", v["entries"].as_u64().unwrap_or(0)));
            if bar.is_hidden() && !announced {
                eprintln!(
                    "indexing the layers of {} ({} to read)",
                    args.reference,
                    human_size(size as i64)
                );
                announced = true;
            }
            continue;
        }
        bar.finish_and_clear();
        if !status.is_success() {
            let (code, message) = remote::reason(status, &body);
            return Err(match code.as_deref() {
                Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN") => {
                    Failure::operational(format!("{}: {message}", args.reference))
                }
                _ if status == reqwest::StatusCode::UNAUTHORIZED => Failure::usage(format!(
                    "{}: the registry wants credentials (--username, REGISTRY_PASSWORD)",
                    args.reference
                )),
                _ if status.is_client_error()
                    && status != reqwest::StatusCode::UNPROCESSABLE_ENTITY =>
                {
                    Failure::usage(format!("{}: {message}", args.reference))
                }
                _ => Failure::operational(format!("{}: {message}", args.reference)),
            });
        }
        return serde_json::from_str(&body).map_err(|e| {
            Failure::operational(format!(
                "the registry at {} answered something that is not JSON ({e})",
                args.remote.url
            ))
        });
    }
}

/// `drwxr-xr-x  0:0  12.3kB  name -> target`, like `ls -l`.
fn ls_line(row: &Value) -> String {
    let kind = row["kind"].as_str().unwrap_or("");
    let mode = row["mode"].as_u64().unwrap_or(0) as u32;
    let path = printable(row["path"].as_str().unwrap_or(""));
    let size = match kind {
        "dir" => row["total_bytes"]
            .as_u64()
            .map(|b| human_size(b as i64))
            .unwrap_or_default(),
        "file" => human_size(row["size"].as_u64().unwrap_or(0) as i64),
        _ => String::new(),
    };
    let mut line = match kind {
        "whiteout" => format!("{:<10} {:>11} {:>8}  {path}", "deleted", "", ""),
        "opaque" => format!("{:<10} {:>11} {:>8}  {path}/*", "emptied", "", ""),
        _ => format!(
            "{}{} {:>11} {:>8}  {path}{}",
            letter(kind),
            rwx(mode),
            format!(
                "{}:{}",
                row["uid"].as_u64().unwrap_or(0),
                row["gid"].as_u64().unwrap_or(0)
            ),
            size,
            if kind == "dir" { "/" } else { "" },
        ),
    };
    if let Some(target) = row["link"].as_str() {
        let _ = write!(line, " -> {}", printable(target));
    }
    if let Some(layer) = row["layer"].as_u64() {
        let _ = write!(line, "  (layer {layer})");
    }
    if let Some(why) = row["secret"].as_str() {
        let _ = write!(line, "  [secret? {why}]");
    }
    if let Some(note) = row["note"].as_str() {
        let _ = write!(line, "  [{}]", printable(note));
    }
    line.push('\n');
    line
}

fn letter(kind: &str) -> char {
    match kind {
        "dir" => 'd',
        "symlink" => 'l',
        "hardlink" => 'h',
        "char" => 'c',
        "block" => 'b',
        "fifo" => 'p',
        _ => '-',
    }
}

/// `rwxr-xr-x` with setuid, setgid and sticky bits as `ls` shows them.
fn rwx(mode: u32) -> String {
    let mut s: Vec<char> = "rwxrwxrwx"
        .chars()
        .enumerate()
        .map(|(i, c)| if mode & (0o400 >> i) != 0 { c } else { '-' })
        .collect();
    for (bit, at, on, off) in [
        (0o4000, 2, 's', 'S'),
        (0o2000, 5, 's', 'S'),
        (0o1000, 8, 't', 'T'),
    ] {
        if mode & bit != 0 {
            s[at] = if s[at] == '-' { off } else { on };
        }
    }
    s.into_iter().collect()
}

/// The waste report, like `dive --ci`'s.
fn waste_report(r: &Value) -> String {
    let mut out = String::new();
    let total = r["total_bytes"].as_u64().unwrap_or(0);
    let wasted = r["wasted_bytes"].as_u64().unwrap_or(0);
    let eff = r["efficiency"].as_f64().unwrap_or(1.0);
    let _ = writeln!(
        out,
        "image:        {} ({})",
        r["image"]["reference"]
            .as_str()
            .map(printable)
            .unwrap_or_default(),
        r["image"]["platform"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "efficiency:   {:.4} %", eff * 100.0);
    let _ = writeln!(
        out,
        "wasted bytes: {wasted} ({})",
        human_size(wasted as i64)
    );
    let _ = writeln!(
        out,
        "file bytes:   {total} ({}) in all layers",
        human_size(total as i64)
    );
    let files = r["files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        let _ = writeln!(
            out,
            "\n{:>8}  {:>10}  {:<8}  PATH",
            "VERSIONS", "WASTED", "LAYERS"
        );
        for f in &files {
            let layers: Vec<String> = f["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| l.to_string())
                .collect();
            let _ = writeln!(
                out,
                "{:>8}  {:>10}  {:<8}  {}",
                f["versions"].as_u64().unwrap_or(0),
                human_size(f["wasted_bytes"].as_u64().unwrap_or(0) as i64),
                layers.join(","),
                printable(f["path"].as_str().unwrap_or(""))
            );
        }
    }
    let secrets = r["secrets"].as_array().cloned().unwrap_or_default();
    if !secrets.is_empty() {
        let _ = writeln!(out, "\nfiles whose names suggest secrets:");
        for s in &secrets {
            let _ = writeln!(
                out,
                "  layer {}  {}  {}{}",
                s["layer"].as_u64().unwrap_or(0),
                printable(s["path"].as_str().unwrap_or("")),
                s["reason"].as_str().unwrap_or(""),
                if s["deleted"].as_bool() == Some(true) {
                    " (deleted by a later layer: still in this layer's blob)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

/// The CI gates of `--waste`.
fn gate(r: &Value, args: &FilesArgs) -> Result<(), Failure> {
    let eff = r["efficiency"].as_f64().unwrap_or(1.0);
    let wasted = r["wasted_bytes"].as_u64().unwrap_or(0);
    if let Some(min) = args.lowest_efficiency {
        if eff < min {
            return Err(Failure::operational(format!(
                "FAIL: efficiency {eff:.4} is below --lowest-efficiency {min}"
            )));
        }
    }
    if let Some(max) = args.highest_wasted_bytes {
        if wasted > max {
            return Err(Failure::operational(format!(
                "FAIL: {wasted} bytes wasted, over --highest-wasted-bytes {max}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lines_escape_names_and_show_modes() {
        let row = serde_json::json!({
            "path": "/etc/\u{1b}]0;pwned\u{7}x", "kind": "file", "size": 1200, "mode": 0o4755,
            "uid": 0, "gid": 0, "mtime": 0, "secret": "a private key"
        });
        let line = ls_line(&row);
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{7}'),
            "{line:?}"
        );
        assert!(line.starts_with("-rwsr-xr-x"), "{line}");
        assert!(line.contains("\\u{1b}]0;pwned\\u{7}x"), "{line}");
        assert!(line.contains("[secret? a private key]"), "{line}");
        let del = serde_json::json!({"path": "/usr/lib", "kind": "whiteout", "size": 0, "mode": 0, "uid": 0, "gid": 0, "mtime": 0});
        assert!(ls_line(&del).starts_with("deleted"), "{}", ls_line(&del));
    }

    #[test]
    fn sticky_and_setgid_without_execute_are_capitals() {
        assert_eq!(rwx(0o1644), "rw-r--r-T");
        assert_eq!(rwx(0o2700), "rwx--S---");
        assert_eq!(rwx(0o755), "rwxr-xr-x");
    }
}
