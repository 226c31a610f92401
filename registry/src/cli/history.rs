//! `registry history REPO:TAG`: the `docker history` table for an image in
//! a running registry, read from its `/api/v1` (no pull, no layer bytes).

use crate::cli::remote;
use crate::failure::Failure;
use crate::present::{ago, ellipsis, human_size, printable, short_digest};
use clap::Args;
use storage::inspect::{ImageDetail, PlatformImage};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image reference: REPO:TAG, REPO@DIGEST, or REPO (meaning :latest).
    pub reference: String,
    /// Registry base URL.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// Platform of a multi-platform image, e.g. linux/arm64 [default: linux/amd64 if present, else the first].
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not truncate the CREATED BY column.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `docker history` truncates CREATED BY at 45 characters.
const TRUNC_CREATED_BY: usize = 45;

pub async fn run(args: HistoryArgs) -> Result<(), Failure> {
    let reference = &args.reference;
    let (status, body) = remote::get(&args.url, &format!("/api/v1/images/{reference}")).await?;
    if !status.is_success() {
        let (code, message) = remote::reason(status, &body);
        return Err(match code.as_deref() {
            Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN") => {
                Failure::operational(format!("{reference}: no such image"))
            }
            Some("NAME_INVALID" | "TAG_INVALID" | "DIGEST_INVALID") => Failure::usage(format!(
                "{reference}: not an image reference ({message}); use REPO:TAG or REPO@DIGEST"
            )),
            _ => Failure::operational(format!("{reference}: {message}")),
        });
    }
    let detail: ImageDetail = serde_json::from_str(&body).map_err(|e| {
        Failure::operational(format!(
            "{reference}: the registry at {} answered something that is not an image description ({e})",
            args.url
        ))
    })?;
    let image = pick_platform(&detail, args.platform.as_deref())?;
    print!("{}", table(image, args.no_trunc));
    Ok(())
}

fn pick_platform<'a>(
    d: &'a ImageDetail,
    wanted: Option<&str>,
) -> Result<&'a PlatformImage, Failure> {
    let matches =
        |i: &&PlatformImage, p: &str| i.platform == p || i.platform.starts_with(&format!("{p}/"));
    let found = match wanted {
        Some(p) => d.images.iter().find(|i| matches(i, p)),
        None => d
            .images
            .iter()
            .find(|i| matches(i, "linux/amd64"))
            .or(d.images.first()),
    };
    found.ok_or_else(|| {
        let have: Vec<&str> = d.images.iter().map(|i| i.platform.as_str()).collect();
        Failure::usage(format!(
            "no image for platform {} (available: {}); choose one with --platform",
            wanted.unwrap_or("linux/amd64"),
            have.join(", ")
        ))
    })
}

/// The table, newest step first, columns as `docker history`.
pub fn table(image: &PlatformImage, no_trunc: bool) -> String {
    let mut rows = vec![[
        "LAYER".to_owned(),
        "CREATED".to_owned(),
        "CREATED BY".to_owned(),
        "SIZE".to_owned(),
        "COMMENT".to_owned(),
    ]];
    for h in image.history.iter().rev() {
        let layer = h.layer.and_then(|i| image.layers.get(i));
        // Anyone's config: no control character reaches the terminal.
        let created_by = printable(h.created_by.as_deref().unwrap_or_default()).into_owned();
        rows.push([
            layer
                .map(|l| short_digest(&l.digest))
                .unwrap_or_else(|| "<missing>".to_owned()),
            ago(h.created.as_deref()),
            if no_trunc {
                created_by
            } else {
                ellipsis(&created_by, TRUNC_CREATED_BY)
            },
            human_size(layer.map(|l| l.size).unwrap_or(0)),
            printable(h.comment.as_deref().unwrap_or_default()).into_owned(),
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    if let Some(m) = &image.mismatch {
        out.push_str(&format!("warning: {}\n", printable(m)));
    }
    out
}
