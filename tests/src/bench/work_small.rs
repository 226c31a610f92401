//! Small-request workloads: manifest and blob reads at many connections,
//! and concurrent pushes of small blobs and small images.

use super::client::{Conn, ReqBody};
use super::data;
use super::load::{run_ops, run_requests, Limit, RequestSpec};
use super::ops::{self, SmallImage, OCI_MANIFEST};
use super::report::Better;
use super::Bench;
use anyhow::Result;
use hyper::Method;
use std::sync::atomic::{AtomicU64, Ordering};

pub const READS: &str = "bench/reads";
const SMALL: usize = 4096;

/// The image the read workloads fetch (also the mount source of the
/// catalog workload), pushed once per target.
pub async fn ensure_image(b: &mut Bench, i: usize) -> Result<()> {
    if b.subjects[i].image.is_some() {
        return Ok(());
    }
    let img = SmallImage::new(1, 2, SMALL);
    let mut conn = Conn::open(&b.subjects[i].target).await?;
    img.push(&mut conn, READS, "v1").await?;
    b.subjects[i].image = Some(img);
    Ok(())
}

pub async fn reads(b: &mut Bench, i: usize) -> Result<()> {
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let layer = img.blobs[1].0.clone();
    let digest = img.digest.clone();
    let target = b.subjects[i].target.clone();
    let conns = b.sizes.read_conns;
    let cases = [
        (
            "manifest GET by tag",
            Method::GET,
            format!("/v2/{READS}/manifests/v1"),
        ),
        (
            "manifest HEAD by digest",
            Method::HEAD,
            format!("/v2/{READS}/manifests/{digest}"),
        ),
        (
            "blob HEAD",
            Method::HEAD,
            format!("/v2/{READS}/blobs/{layer}"),
        ),
    ];
    for (name, method, path) in cases {
        let spec = || RequestSpec::new(method.clone(), path.clone()).header("accept", OCI_MANIFEST);
        run_requests(&target, conns, Limit::time(b.sizes.run / 5), spec()).await?;
        let s = run_requests(&target, conns, Limit::time(b.sizes.run), spec()).await?;
        let label = format!("{name}, {conns} connections");
        b.report
            .set(&label, "req/s", Better::Higher, &target.name, s.per_sec());
        b.report.set(
            &format!("{name}, p99 latency"),
            "ms",
            Better::Lower,
            &target.name,
            s.p99_ms(),
        );
    }
    Ok(())
}

/// Seeds never repeat within a run, so every pushed blob is new.
static NEXT_SEED: AtomicU64 = AtomicU64::new(1 << 32);

pub async fn small_pushes(b: &mut Bench, i: usize) -> Result<()> {
    let target = b.subjects[i].target.clone();
    let conns = b.sizes.write_conns;
    let limit = Limit::time(b.sizes.run);
    let blobs = run_ops(&target, conns, limit, |mut conn: Conn, _n| async move {
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        let body = data::bytes(seed, 0, SMALL);
        let digest = data::digest_of(&body);
        ops::push_blob(&mut conn, "bench/small", &digest, ReqBody::bytes(body)).await?;
        Ok((conn, SMALL as u64))
    })
    .await?;
    let label = format!("push unique 4 KiB blobs (POST + PUT), {conns} clients");
    b.report.set(
        &label,
        "blobs/s",
        Better::Higher,
        &target.name,
        blobs.per_sec(),
    );
    let images = run_ops(&target, conns, limit, |mut conn: Conn, n| async move {
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        let img = SmallImage::new(seed, 2, SMALL);
        img.push(&mut conn, "bench/images", &format!("i{n}"))
            .await?;
        Ok((conn, 0))
    })
    .await?;
    let label = format!("push two-layer 4 KiB images with a tag, {conns} clients");
    b.report.set(
        &label,
        "images/s",
        Better::Higher,
        &target.name,
        images.per_sec(),
    );
    Ok(())
}
