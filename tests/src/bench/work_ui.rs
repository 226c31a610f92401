//! The layer-history view under load: an image with 100 layers (and a
//! history of 120 steps, 20 of them empty), its HTML page and its JSON,
//! fetched one request at a time on one connection for p50/p99 latency.
//! Registries without the view (the reference) are skipped.

use super::client::{Conn, ReqBody};
use super::data;
use super::load::{latency, Limit, RequestSpec};
use super::ops::{self, OCI_MANIFEST};
use super::report::Better;
use super::Bench;
use anyhow::Result;
use hyper::Method;

const REPO: &str = "bench/history";
const LAYERS: usize = 100;

/// Config, layers and manifest of an image whose history matches its
/// layers the way `docker build` writes it.
fn image() -> (Vec<(String, bytes::Bytes)>, bytes::Bytes) {
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut history = Vec::new();
    for i in 0..LAYERS {
        let b = data::bytes(0x7569 ^ ((i as u64 + 1) << 40), 0, 512 + i * 64);
        let d = data::digest_of(&b);
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": b.len(),
        }));
        blobs.push((d, b));
        history.push(serde_json::json!({
            "created": "2026-01-01T00:00:00Z",
            "created_by": format!("/bin/sh -c apt-get install -y package-{i} && rm -rf /var/lib/apt/lists/*"),
        }));
        if i % 5 == 0 {
            history.push(serde_json::json!({
                "created": "2026-01-01T00:00:00Z",
                "created_by": format!("/bin/sh -c #(nop)  ENV STEP_{i}=<value-{i}>"),
                "empty_layer": true,
            }));
        }
    }
    let config = bytes::Bytes::from(
        serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Labels": { "a": "<b>" } },
            "rootfs": { "type": "layers", "diff_ids": [] },
            "history": history,
        })
        .to_string(),
    );
    let config_digest = data::digest_of(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config.len() },
        "layers": layers,
    })
    .to_string();
    blobs.push((config_digest, config));
    (blobs, bytes::Bytes::from(manifest))
}

pub async fn ui(b: &mut Bench, i: usize) -> Result<()> {
    let target = b.subjects[i].target.clone();
    let mut conn = Conn::open(&target).await?;
    if conn.simple(Method::GET, "/ui/repos").await?.status.as_u16() != 200 {
        eprintln!("  {}: no layer-history view, skipped", target.name);
        return Ok(());
    }
    let (blobs, manifest) = image();
    for (digest, bytes) in blobs {
        ops::push_blob(&mut conn, REPO, &digest, ReqBody::bytes(bytes)).await?;
    }
    ops::put_manifest(&mut conn, REPO, "v1", &manifest).await?;
    let cases = [
        (
            "image page (HTML), 100 layers",
            format!("/ui/images/{REPO}:v1"),
        ),
        (
            "image detail (JSON API), 100 layers",
            format!("/api/v1/images/{REPO}:v1"),
        ),
    ];
    for (name, path) in cases {
        let spec = || RequestSpec::new(Method::GET, path.clone());
        latency(&target, Limit::time(b.sizes.run / 5), spec()).await?;
        let s = latency(&target, Limit::time(b.sizes.run), spec()).await?;
        for (q, v) in [("p50", s.p50_ms()), ("p99", s.p99_ms())] {
            b.report.set(
                &format!("{name}, {q}"),
                "ms",
                Better::Lower,
                &target.name,
                v,
            );
        }
    }
    Ok(())
}
