//! Layer contents: how long the first request for a layer's files takes
//! (the registry indexes it: reads, decompresses, hashes every file) and
//! the server's peak RSS meanwhile, for a 1 GiB gzip layer and for a layer
//! of 100,000 small files; then the second request, from the kept index,
//! one at a time on one connection (the target: under 10 ms).
//! Registries without the view (the reference) are skipped.

use super::client::{Conn, ReqBody};
use super::data;
use super::load::{latency, Limit, RequestSpec};
use super::ops::{self, OCI_MANIFEST};
use super::report::Better;
use super::servers::reset_peak;
use super::Bench;
use anyhow::{bail, Result};
use hyper::Method;
use std::io::Write;
use std::time::{Duration, Instant};

const REPO: &str = "bench/layers";
pub const BIG_INDEX: &str = "index a 1 GiB gzip layer (first request until listed)";
pub const MANY_INDEX: &str = "index a 100,000-file gzip layer (first request until listed)";
pub const BIG_SECOND: &str = "files of the 1 GiB layer, second request, p50";
pub const MANY_SECOND: &str = "a directory of the 100,000-file layer, second request, p50";
pub const MANY_ROOT_SECOND: &str =
    "root of the 100,000-file layer (1,000 dirs), second request, p50";

/// A ustar header (name < 100 bytes).
fn header(name: &str, size: u64) -> [u8; 512] {
    crate::oci::tar_header(name, 0o644, size, b'0')
}

/// Contents that compress about 2:1, like a typical layer: each MiB half
/// pseudo-random, half text.
fn contents(seed: u64, len: usize) -> Vec<u8> {
    let mut v = data::bytes(seed, 0, len / 2).to_vec();
    let text = b"lib/python3/site-packages/module.py: def f(x): return x + 1\n";
    while v.len() < len {
        v.extend_from_slice(&text[..text.len().min(len - v.len())]);
    }
    v
}

/// A gzip'd tar (level 1, as `docker build` writes) of `files`.
fn layer(files: impl Iterator<Item = (String, Vec<u8>)>) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (name, body) in files {
        gz.write_all(&header(&name, body.len() as u64)).unwrap();
        gz.write_all(&body).unwrap();
        let pad = (512 - body.len() % 512) % 512;
        gz.write_all(&vec![0u8; pad]).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

async fn push_image(conn: &mut Conn, tag: &str, blob: Vec<u8>) -> Result<String> {
    let digest = data::digest_of(&blob);
    let size = blob.len();
    ops::push_blob(
        conn,
        REPO,
        &digest,
        ReqBody::bytes(bytes::Bytes::from(blob)),
    )
    .await?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [] },
    })
    .to_string();
    let config_digest = data::digest_of(config.as_bytes());
    ops::push_blob(
        conn,
        REPO,
        &config_digest,
        ReqBody::bytes(bytes::Bytes::from(config.clone())),
    )
    .await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": digest, "size": size }],
    })
    .to_string();
    ops::put_manifest(conn, REPO, tag, &bytes::Bytes::from(manifest)).await?;
    Ok(digest)
}

/// Seconds from the first request for `path` until it is answered 200.
async fn first_listing(conn: &mut Conn, path: &str) -> Result<f64> {
    let started = Instant::now();
    loop {
        let r = conn.simple(Method::GET, &format!("{path}&wait=30")).await?;
        match r.status.as_u16() {
            200 => return Ok(started.elapsed().as_secs_f64()),
            202 if started.elapsed() < Duration::from_secs(600) => continue,
            s => bail!("GET {path}: {s}"),
        }
    }
}

pub async fn layers(b: &mut Bench, i: usize) -> Result<()> {
    let target = b.subjects[i].target.clone();
    let mut conn = Conn::open(&target).await?;
    if conn
        .simple(Method::GET, "/api/v1/repositories")
        .await?
        .status
        .as_u16()
        != 200
    {
        eprintln!("  {}: no layer contents, skipped", target.name);
        return Ok(());
    }
    let pid = b.subjects[i].server.as_ref().map(|s| s.pid());
    let who = target.name.clone();
    // --quick: 64 MiB and 10,000 files.
    let (big_mib, many) = if b.sizes.huge < (1 << 30) {
        (64usize, 10_000usize)
    } else {
        (1024, 100_000)
    };
    let big = layer((0..big_mib / 64).map(|n| {
        (
            format!("data/chunk-{n:04}.bin"),
            contents(0x6c61 + n as u64, 64 << 20),
        )
    }));
    let many_blob = layer((0..many).map(|n| {
        (
            format!("usr/lib/d{:04}/f{n:06}.py", n / 100),
            format!("# file {n}\nprint({n})\n").into_bytes(),
        )
    }));
    eprintln!(
        "  layers: {big_mib} MiB of files in {} MiB of gzip; {many} files in {} KiB",
        big.len() >> 20,
        many_blob.len() >> 10
    );
    let big_digest = push_image(&mut conn, "big", big).await?;
    let many_digest = push_image(&mut conn, "many", many_blob).await?;
    let big_path = format!("/api/v1/repositories/{REPO}/layers/{big_digest}/files?path=/data");
    let many_dir =
        format!("/api/v1/repositories/{REPO}/layers/{many_digest}/files?path=/usr/lib/d0500");
    let many_root = format!("/api/v1/repositories/{REPO}/layers/{many_digest}/files?path=/usr/lib");
    for (label, rss_label, path) in [
        (
            BIG_INDEX,
            "server peak RSS indexing the 1 GiB layer",
            &big_path,
        ),
        (
            MANY_INDEX,
            "server peak RSS indexing the 100,000-file layer",
            &many_dir,
        ),
    ] {
        if let Some(pid) = pid {
            reset_peak(pid)?;
        }
        let secs = first_listing(&mut conn, path).await?;
        b.report.set(label, "s", Better::Lower, &who, secs);
        if let Some(st) = b.subjects[i].server.as_ref().and_then(|s| s.stats().ok()) {
            b.report.set(
                rss_label,
                "MiB",
                Better::Lower,
                &who,
                st.hwm_kib as f64 / 1024.0,
            );
        }
    }
    for (label, path) in [
        (BIG_SECOND, big_path),
        (MANY_SECOND, many_dir),
        (MANY_ROOT_SECOND, many_root),
    ] {
        let spec = || RequestSpec::new(Method::GET, path.clone());
        latency(&target, Limit::time(b.sizes.run / 5), spec()).await?;
        let s = latency(&target, Limit::time(b.sizes.run), spec()).await?;
        b.report.set(label, "ms", Better::Lower, &who, s.p50_ms());
    }
    Ok(())
}
