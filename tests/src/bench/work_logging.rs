//! What the access log costs: manifest GET by tag at many connections on
//! our registry with its access log on (to a file) and off, and nginx
//! serving a file of the manifest's size with its access log on, measured
//! in turn (the VM drifts within a run; medians of three rounds).

use super::baseline::Nginx;
use super::client::{Conn, Target};
use super::load::{run_requests, Limit, RequestSpec};
use super::ops::OCI_MANIFEST;
use super::report::Better;
use super::servers::Server;
use super::work_small::{ensure_image, READS};
use super::Bench;
use anyhow::{Context as _, Result};
use hyper::Method;

pub const LOG_ON: &str = "manifest GET by tag, access log on (to a file)";
pub const LOG_OFF: &str = "manifest GET by tag, access log off (RUST_LOG=warn)";
pub const NGINX_LOG_ON: &str = "nginx, a file of the manifest's size, access log on";
pub const METRICS_ON: &str = "manifest GET by tag, metrics on (the default)";
pub const METRICS_OFF: &str = "manifest GET by tag, metrics off (REGISTRY_METRICS=false)";

const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn logging(b: &mut Bench, i: usize) -> Result<()> {
    let subject = &b.subjects[i];
    if subject.target.name != "ours" || subject.server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let manifest = img.manifest.clone();
    let logged = b.subjects[i].target.clone();
    // A second instance of ours, with only warnings logged.
    let quiet = Server::start_ours_with(
        &bin,
        &b.work.join("ours-quiet"),
        "ours (log off)",
        &[("RUST_LOG", "warn")],
    )?;
    let mut conn = Conn::open(&quiet.target).await?;
    img.push(&mut conn, READS, "v1").await?;
    let dir = b.work.join("manifest-file");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("manifest.json");
    std::fs::write(&file, &manifest)?;
    let nginx = Nginx::start_with(&file, &b.work.join("nginx-logged"), true)?
        .context("nginx is needed for the access-log comparison (Debian's nginx-light)")?;
    let path = format!("/v2/{READS}/manifests/v1");
    let cases: [(&str, &Target, String); 3] = [
        (LOG_ON, &logged, path.clone()),
        (LOG_OFF, &quiet.target, path),
        (NGINX_LOG_ON, &nginx.target, nginx.url_path.clone()),
    ];
    let conns = b.sizes.read_conns;
    let mut rates = vec![Vec::new(); cases.len()];
    for (_, target, path) in &cases {
        let spec = RequestSpec::new(Method::GET, path.clone()).header("accept", OCI_MANIFEST);
        run_requests(target, conns, Limit::time(b.sizes.run / 5), spec).await?;
    }
    for _ in 0..ROUNDS {
        for (n, (_, target, path)) in cases.iter().enumerate() {
            let spec = RequestSpec::new(Method::GET, path.clone()).header("accept", OCI_MANIFEST);
            let s = run_requests(target, conns, Limit::time(b.sizes.run), spec).await?;
            rates[n].push(s.per_sec());
        }
    }
    for ((label, _, _), r) in cases.iter().zip(rates) {
        b.report.set(
            &format!("{label}, {conns} connections (median of {ROUNDS}, in turn)"),
            "req/s",
            Better::Higher,
            "ours",
            median(r),
        );
    }
    let log_bytes = std::fs::metadata(&b.subjects[i].server.as_ref().expect("ours").log_path)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("access log of ours so far: {log_bytes} bytes");
    drop(nginx);
    drop(quiet);
    Ok(())
}

/// What recording metrics costs: manifest GET by tag on ours (metrics on,
/// the default) and on a second instance with metrics off, in turn.
pub async fn metrics(b: &mut Bench, i: usize) -> Result<()> {
    let subject = &b.subjects[i];
    if subject.target.name != "ours" || subject.server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let on = b.subjects[i].target.clone();
    let bare = Server::start_ours_with(
        &bin,
        &b.work.join("ours-no-metrics"),
        "ours (metrics off)",
        &[("REGISTRY_METRICS", "false")],
    )?;
    let mut conn = Conn::open(&bare.target).await?;
    img.push(&mut conn, READS, "v1").await?;
    let path = format!("/v2/{READS}/manifests/v1");
    let cases: [(&str, &Target); 2] = [(METRICS_ON, &on), (METRICS_OFF, &bare.target)];
    let conns = b.sizes.read_conns;
    let mut rates = vec![Vec::new(); cases.len()];
    for (_, target) in &cases {
        let spec = RequestSpec::new(Method::GET, path.clone()).header("accept", OCI_MANIFEST);
        run_requests(target, conns, Limit::time(b.sizes.run / 5), spec).await?;
    }
    for _ in 0..ROUNDS {
        for (n, (_, target)) in cases.iter().enumerate() {
            let spec = RequestSpec::new(Method::GET, path.clone()).header("accept", OCI_MANIFEST);
            let s = run_requests(target, conns, Limit::time(b.sizes.run), spec).await?;
            rates[n].push(s.per_sec());
        }
    }
    for ((label, _), r) in cases.iter().zip(rates) {
        b.report.set(
            &format!("{label}, {conns} connections (median of {ROUNDS}, in turn)"),
            "req/s",
            Better::Higher,
            "ours",
            median(r),
        );
    }
    drop(bare);
    Ok(())
}
