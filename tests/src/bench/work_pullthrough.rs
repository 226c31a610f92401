//! Fleet pulls through a pull-through cache: an upstream (a second
//! instance of ours) holds a 100 MB image; a cache node with a `[[cache]]`
//! rule for it is pulled by 200 clients at once, first uncached (one
//! upstream fetch, streamed to all) and then cached. Also what webhook
//! delivery costs manifest GETs while pushes make events.

use super::client::{Conn, ReqBody, Target};
use super::data::{self, PrngBody};
use super::load::{run_requests, Limit, RequestSpec};
use super::ops::{self, OCI_MANIFEST};
use super::report::Better;
use super::servers::Server;
use super::work_small::ensure_image;
use super::Bench;
use anyhow::{bail, Context as _, Result};
use hyper::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const UNCACHED: &str = "pull-through: 200 clients pull a 100 MB image at once, not cached";
pub const CACHED: &str = "pull-through: 200 clients pull the 100 MB image at once, cached";
pub const UPSTREAM_BYTES: &str =
    "pull-through: upstream blob bytes sent / image size (uncached round)";
pub const CACHED_RPS: &str =
    "pull-through cached round: requests/s (manifest + 3 blobs per client)";
pub const CACHED_P99: &str = "pull-through cached round: p99 request latency";
pub const CACHED_CPU: &str = "pull-through cached round: server CPU per GiB served";
pub const MANIFEST_RPS: &str = "pull-through: manifest GET of a cached tag, 200 connections";
pub const MANIFEST_P99: &str = "pull-through: manifest GET of a cached tag, 200 connections, p99";
pub const EVENTS_ON: &str = "manifest GET by tag during pushes, webhook delivery on";
pub const EVENTS_OFF: &str = "manifest GET by tag during pushes, no webhooks";

const CLIENTS: usize = 200;
const SEED: u64 = 0x7075_6c6c;

/// The image: a config and two layers of half the size each.
struct Image {
    /// (digest, length) of config and layers.
    blobs: Vec<(String, u64)>,
    manifest: bytes::Bytes,
    size: u64,
}

async fn push_image(b: &mut Bench, up: &Target, size: u64) -> Result<Image> {
    let half = size / 2;
    let config = bytes::Bytes::from(
        serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
            .to_string(),
    );
    let mut blobs = vec![(data::digest_of(&config), config.len() as u64)];
    let mut conn = Conn::open(up).await?;
    ops::push_blob(
        &mut conn,
        "app",
        &blobs[0].0,
        ReqBody::bytes(config.clone()),
    )
    .await?;
    for n in 0..2u64 {
        let digest = b.digest(SEED + n, half);
        let body = ReqBody::Prng(PrngBody::new(SEED + n, 0, half));
        ops::push_blob(&mut conn, "app", &digest, body).await?;
        blobs.push((digest, half));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0].0, "size": blobs[0].1},
        "layers": blobs[1..].iter().map(|(d, n)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let manifest = bytes::Bytes::from(manifest);
    ops::put_manifest(&mut conn, "app", "1", &manifest).await?;
    let size = blobs.iter().map(|(_, n)| n).sum::<u64>() + manifest.len() as u64;
    Ok(Image {
        blobs,
        manifest,
        size,
    })
}

/// What one round of `CLIENTS` pulls took.
struct Round {
    elapsed: Duration,
    requests: u64,
    bytes: u64,
    /// Request latencies, microseconds, sorted.
    lat_us: Vec<u64>,
}

/// Every client connects, then all pull the manifest and each blob (bytes
/// counted and discarded; lengths checked) from one instant.
async fn pull_round(target: &Target, repo: &str, image: &Image) -> Result<Round> {
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let blobs = Arc::new(image.blobs.clone());
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (start, blobs, target, repo) = (
            start.clone(),
            blobs.clone(),
            target.clone(),
            repo.to_owned(),
        );
        let manifest_len = image.manifest.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&target).await?;
            start.wait().await;
            let mut lat = Vec::new();
            let mut bytes = 0;
            let t = Instant::now();
            let req = conn.request(
                Method::GET,
                &format!("/v2/{repo}/manifests/1"),
                ReqBody::Empty,
            );
            let mut req = req;
            req.headers_mut()
                .insert("accept", OCI_MANIFEST.parse().expect("header"));
            let m = conn.call(req, false).await?.expect("manifest", &[200])?;
            if m.len != manifest_len {
                bail!("manifest of {} bytes, not {manifest_len}", m.len);
            }
            lat.push(t.elapsed().as_micros() as u64);
            bytes += m.len;
            for (digest, len) in blobs.iter() {
                let t = Instant::now();
                let done = conn
                    .simple(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
                    .await?
                    .expect("blob", &[200])?;
                if done.len != *len {
                    bail!("blob {digest}: {} bytes, not {len}", done.len);
                }
                lat.push(t.elapsed().as_micros() as u64);
                bytes += done.len;
            }
            Ok::<_, anyhow::Error>((lat, bytes))
        }));
    }
    start.wait().await;
    let t = Instant::now();
    let mut round = Round {
        elapsed: Duration::ZERO,
        requests: 0,
        bytes: 0,
        lat_us: Vec::new(),
    };
    for task in tasks {
        let (lat, bytes) = task.await??;
        round.requests += lat.len() as u64;
        round.lat_us.extend(lat);
        round.bytes += bytes;
    }
    round.elapsed = t.elapsed();
    round.lat_us.sort_unstable();
    Ok(round)
}

/// Bytes the server sent on the blob route so far (its `/metrics`).
async fn blob_bytes_sent(target: &Target) -> Result<f64> {
    let mut conn = Conn::open(target).await?;
    let text = conn.get_kept("/metrics").await?.expect("metrics", &[200])?;
    let text = String::from_utf8_lossy(&text.body).into_owned();
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("registry_http_sent_bytes_total")
                && l.contains("route=\"/v2/{name}/blobs/{digest}\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

pub async fn pullthrough(b: &mut Bench, i: usize) -> Result<()> {
    let subject = &b.subjects[i];
    if subject.target.name != "ours" || subject.server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    let upstream = Server::start_ours_with(&bin, &b.work.join("pt-upstream"), "upstream", &[])?;
    let image = push_image(b, &upstream.target, b.sizes.pullthrough_image).await?;
    let rule = format!(
        "[[cache]]\nprefix = \"up\"\nupstream = \"http://{}\"\n",
        upstream.target.addr
    );
    let cache = Server::start_ours_with(
        &bin,
        &b.work.join("pt-cache"),
        "cache",
        &[("REGISTRY_CONFIG_TOML", &rule)],
    )?;
    let mb = image.size as f64 / 1e6;
    eprintln!("pull-through: image {mb:.0} MB, {CLIENTS} clients");
    let sent_before = blob_bytes_sent(&upstream.target).await?;
    let cold = pull_round(&cache.target, "up/app", &image).await?;
    let fetched = blob_bytes_sent(&upstream.target).await? - sent_before;
    let blob_bytes: u64 = image.blobs.iter().map(|(_, n)| n).sum();
    let cpu0 = cache.stats()?.cpu_secs;
    let warm = pull_round(&cache.target, "up/app", &image).await?;
    let cpu = cache.stats()?.cpu_secs - cpu0;
    let label = |l: &str| format!("{l} ({mb:.0} MB)");
    b.report.set(
        &label(UNCACHED),
        "s",
        Better::Lower,
        "ours",
        cold.elapsed.as_secs_f64(),
    );
    b.report.set(
        &label(CACHED),
        "s",
        Better::Lower,
        "ours",
        warm.elapsed.as_secs_f64(),
    );
    b.report.set(
        UPSTREAM_BYTES,
        "×",
        Better::Lower,
        "ours",
        fetched / blob_bytes as f64,
    );
    b.report.set(
        CACHED_RPS,
        "req/s",
        Better::Higher,
        "ours",
        warm.requests as f64 / warm.elapsed.as_secs_f64(),
    );
    let p99 = warm.lat_us[((warm.lat_us.len() - 1) as f64 * 0.99).round() as usize];
    b.report
        .set(CACHED_P99, "ms", Better::Lower, "ours", p99 as f64 / 1000.0);
    b.report.set(
        CACHED_CPU,
        "CPU s/GiB",
        Better::Lower,
        "ours",
        cpu / (warm.bytes as f64 / (1u64 << 30) as f64),
    );
    let spec =
        RequestSpec::new(Method::GET, "/v2/up/app/manifests/1").header("accept", OCI_MANIFEST);
    let s = run_requests(&cache.target, CLIENTS, Limit::time(b.sizes.run), spec).await?;
    b.report
        .set(MANIFEST_RPS, "req/s", Better::Higher, "ours", s.per_sec());
    b.report
        .set(MANIFEST_P99, "ms", Better::Lower, "ours", s.p99_ms());
    eprintln!(
        "pull-through: uncached {:.2} s, cached {:.2} s, upstream sent {:.0} of {} blob bytes",
        cold.elapsed.as_secs_f64(),
        warm.elapsed.as_secs_f64(),
        fetched,
        blob_bytes
    );
    Ok(())
}

/// A webhook receiver answering every request 204, on a free port; the
/// number of deliveries it got.
async fn receiver() -> Result<(std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let reply = b"HTTP/1.1 204 No Content\r\n\r\n";
                    if reader.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, got))
}

/// Rounds of each case, in turn (this VM's rate drifts between runs).
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What webhook delivery costs: manifest GETs on two instances of ours
/// while a client pushes new tags to each (an event per push), one with a
/// `[[notifications]]` endpoint (a local receiver), one without; in turn.
pub async fn events(b: &mut Bench, i: usize) -> Result<()> {
    let subject = &b.subjects[i];
    if subject.target.name != "ours" || subject.server.is_none() {
        return Ok(());
    }
    let bin = b.ours_bin.clone().context("our binary")?;
    ensure_image(b, i).await?;
    let (hook, delivered) = receiver().await?;
    let config = format!("[[notifications]]\nname = \"bench\"\nurl = \"http://{hook}/events\"\n");
    let on = Server::start_ours_with(
        &bin,
        &b.work.join("ours-events"),
        "ours (webhooks)",
        &[("REGISTRY_CONFIG_TOML", &config)],
    )?;
    let off = Server::start_ours_with(
        &bin,
        &b.work.join("ours-no-events"),
        "ours (no webhooks)",
        &[],
    )?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    for s in [&on, &off] {
        let mut conn = Conn::open(&s.target).await?;
        img.push(&mut conn, super::work_small::READS, "v1").await?;
    }
    let path = format!("/v2/{}/manifests/v1", super::work_small::READS);
    let conns = b.sizes.read_conns;
    let cases: [(&str, &Target); 2] = [(EVENTS_ON, &on.target), (EVENTS_OFF, &off.target)];
    let mut rates = vec![Vec::new(); 2];
    let manifest = img.manifest.clone();
    for round in 0..=ROUNDS {
        for (n, (_, target)) in cases.iter().enumerate() {
            // Pushes of new tags (an event each) while the GETs run.
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (pusher_stop, pusher_target, m) =
                (stop.clone(), (*target).clone(), manifest.clone());
            let pusher = tokio::spawn(async move {
                let mut conn = Conn::open(&pusher_target).await?;
                let mut k = 0u64;
                while !pusher_stop.load(std::sync::atomic::Ordering::Relaxed) {
                    ops::put_manifest(
                        &mut conn,
                        super::work_small::READS,
                        &format!("t{round}-{k}"),
                        &m,
                    )
                    .await?;
                    k += 1;
                }
                Ok::<u64, anyhow::Error>(k)
            });
            let spec = RequestSpec::new(Method::GET, path.clone()).header("accept", OCI_MANIFEST);
            let limit = if round == 0 {
                b.sizes.run / 5
            } else {
                b.sizes.run
            };
            let s = run_requests(target, conns, Limit::time(limit), spec).await?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let pushes = pusher.await??;
            if round > 0 {
                rates[n].push(s.per_sec());
                eprintln!(
                    "events: {} {:.0} req/s with {pushes} pushes",
                    cases[n].0,
                    s.per_sec()
                );
            }
        }
    }
    let delivered = delivered.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("events: the receiver got {delivered} deliveries");
    if delivered == 0 {
        bail!("no webhook delivery reached the receiver: the comparison measured nothing");
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
    Ok(())
}
