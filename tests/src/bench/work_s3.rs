//! S3 + PostgreSQL: our registry on an S3 server (s3s-fs, which checks
//! signatures like AWS) and a private PostgreSQL, one node and two behind
//! nginx, against the S3 server's own raw speed for the same bytes through
//! `object_store` (what the node uses), measured in the same run.

use super::client::{Conn, ReqBody, Target};
use super::data::{self, PrngBody};
use super::load::{run_requests, Limit, RequestSpec};
use super::ops::{self, OCI_MANIFEST};
use super::report::Better;
use super::servers::{free_port, reset_peak, Server};
use super::work_blobs::size_label;
use super::work_small::{ensure_image, READS};
use super::{Bench, SEED_HUGE, SEED_MONO};
use anyhow::{bail, Context as _, Result};
use futures::StreamExt;
use hyper::Method;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RAW_PUT: &str = "S3 server raw PUT (object_store multipart, 8 MiB parts, 2 in flight)";
pub const RAW_GET: &str = "S3 server raw GET (object_store)";
pub const NODE_PUSH: &str = "push through one node on S3 + PostgreSQL (POST + 1 PUT)";
pub const NODE_PULL: &str = "streamed pull through one node on S3 (redirects off)";
pub const LB_PUSH: &str = "push through nginx + two nodes on S3 + PostgreSQL";
pub const LB_PULL: &str = "streamed pull through nginx + two nodes on S3";
pub const REDIRECT_CPU: &str = "redirected blob GET (307 to a presigned URL), node CPU per request";
pub const MANIFEST_PG: &str = "manifest GET by tag on PostgreSQL, one node";
pub const MANIFEST_SQLITE: &str = "manifest GET by tag on SQLite (in turn with PostgreSQL)";
pub const MANIFEST_LB: &str = "manifest GET by tag through nginx + two nodes on PostgreSQL";
pub const NODE_RSS: &str = "node peak RSS on S3, push + streamed pull of";

const BUCKET: &str = "bench";
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
const REPO: &str = "bench/s3";
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// s3s-fs on a free port, serving `root` (bucket = a directory in it).
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start(root: &Path) -> Result<S3Server> {
        let bin = std::env::var("S3S_FS_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "{}/.cargo/bin/s3s-fs",
                    std::env::var("HOME").unwrap_or_default()
                )
            });
        if !Path::new(&bin).is_file() {
            bail!(
                "s3s-fs not found at {bin}: the S3 workload needs it (scripts/start-s3.sh installs it: \
                 cargo install s3s-fs@0.14.1 --features binary)"
            );
        }
        std::fs::create_dir_all(root.join(BUCKET))?;
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", KEY, "--secret-key", SECRET])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {bin}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("s3s-fs not answering on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(S3Server { child, port })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Result<AmazonS3> {
        Ok(AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(self.endpoint())
            .with_region("us-east-1")
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()?)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL (`scripts/start-postgres.sh`), stopped on drop.
struct Postgres {
    dir: PathBuf,
    url: String,
}

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres> {
        let script = crate::workspace_root().join("scripts/start-postgres.sh");
        let out = Command::new(&script).arg(dir).output()?;
        if !out.status.success() {
            bail!(
                "{}: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = std::fs::read_to_string(dir.join("postgres/port"))?
            .trim()
            .to_owned();
        let admin = format!("postgres://registry:registry-test@127.0.0.1:{port}/postgres");
        Ok(Postgres {
            dir: dir.to_owned(),
            url: crate::cluster::fresh_database(&admin),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(crate::workspace_root().join("scripts/stop-daemons.sh"))
            .arg(&self.dir)
            .output();
    }
}

/// Write `len` PRNG bytes as one object the way the node does (multipart,
/// 8 MiB parts, 2 in flight); MB/s.
async fn raw_put(s3: &AmazonS3, key: &str, seed: u64, len: u64) -> Result<f64> {
    let path = ObjectPath::from(key);
    let t = Instant::now();
    let upload = s3.put_multipart(&path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(1 << 20) as usize;
        w.wait_for_capacity(2).await?;
        w.put(data::bytes(seed, at, n));
        at += n as u64;
    }
    w.finish().await?;
    Ok(len as f64 / 1e6 / t.elapsed().as_secs_f64())
}

/// Read an object whole; MB/s.
async fn raw_get(s3: &AmazonS3, key: &str) -> Result<f64> {
    let t = Instant::now();
    let mut stream = s3.get(&ObjectPath::from(key)).await?.into_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        n += chunk?.len() as u64;
    }
    Ok(n as f64 / 1e6 / t.elapsed().as_secs_f64())
}

async fn push(target: &Target, seed: u64, len: u64, digest: &str) -> Result<f64> {
    let mut conn = Conn::open(target).await?;
    let t = Instant::now();
    ops::push_blob(
        &mut conn,
        REPO,
        digest,
        ReqBody::Prng(PrngBody::new(seed, 0, len)),
    )
    .await?;
    Ok(len as f64 / 1e6 / t.elapsed().as_secs_f64())
}

async fn pull(target: &Target, digest: &str) -> Result<f64> {
    let s = run_requests(
        target,
        1,
        Limit::ops(1, Duration::from_secs(3600)),
        RequestSpec::new(Method::GET, format!("/v2/{REPO}/blobs/{digest}")),
    )
    .await?;
    Ok(s.mb_per_sec())
}

fn node_config(dir: &Path, s3: &S3Server, db: &str, redirect: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("node-{redirect}.toml"));
    std::fs::write(
        &path,
        format!(
            "[storage]\nkind = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\npath_style = true\n\
             allow_http = true\nregion = \"us-east-1\"\nredirect = {redirect}\n\n[metadata]\nurl = \"{db}\"\n",
            s3.endpoint()
        ),
    )?;
    Ok(path)
}

fn start_node(b: &Bench, root: &Path, name: &str, config: &Path) -> Result<Server> {
    let bin = b.ours_bin.clone().context("our binary")?;
    let config = config.to_str().context("utf-8 path")?;
    Server::start_ours_with(
        &bin,
        root,
        name,
        &[
            ("REGISTRY_CONFIG", config),
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_REGION", "us-east-1"),
        ],
    )
}

fn cpu(s: &Server) -> f64 {
    s.stats().map(|st| st.cpu_secs).unwrap_or(f64::NAN)
}

pub async fn s3(b: &mut Bench, i: usize) -> Result<()> {
    if b.subjects[i].target.name != "ours" || b.subjects[i].server.is_none() {
        return Ok(());
    }
    let work = b.work.join("s3");
    let s3 = S3Server::start(&work.join("s3s-root"))?;
    let pg = Postgres::start(&work.join("pg"))?;
    let raw = s3.client()?;
    let len = b.sizes.blob;
    let size = size_label(len);
    let digest = b.digest(SEED_MONO, len);

    // One node streaming, one redirecting, same bucket and database.
    let streamed = node_config(&work, &s3, &pg.url, false)?;
    let redirected = node_config(&work, &s3, &pg.url, true)?;
    let node = start_node(b, &work.join("node-a"), "node (S3, streaming)", &streamed)?;
    let node_r = start_node(
        b,
        &work.join("node-r"),
        "node (S3, redirecting)",
        &redirected,
    )?;

    // Raw S3 and the node, in turn, a new object each round.
    let (mut put_raw, mut get_raw, mut put_node, mut get_node) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let key = format!("raw/{round}");
        put_raw.push(raw_put(&raw, &key, SEED_MONO, len).await?);
        get_raw.push(raw_get(&raw, &key).await?);
        raw.delete(&ObjectPath::from(key.as_str())).await?;
        if round > 0 {
            // Same content: the node deduplicates, so delete it first.
            let mut conn = Conn::open(&node.target).await?;
            conn.simple(Method::DELETE, &format!("/v2/{REPO}/blobs/{digest}"))
                .await?;
        }
        put_node.push(push(&node.target, SEED_MONO, len, &digest).await?);
        get_node.push(pull(&node.target, &digest).await?);
    }
    let r = &mut b.report;
    let put_label = |l: &str| format!("{l}, {size}");
    r.set(
        &put_label(RAW_PUT),
        "MB/s",
        Better::Higher,
        "ours",
        median(put_raw),
    );
    r.set(
        &put_label(RAW_GET),
        "MB/s",
        Better::Higher,
        "ours",
        median(get_raw),
    );
    r.set(
        &put_label(NODE_PUSH),
        "MB/s",
        Better::Higher,
        "ours",
        median(put_node),
    );
    r.set(
        &put_label(NODE_PULL),
        "MB/s",
        Better::Higher,
        "ours",
        median(get_node),
    );

    // Redirected pulls: what a 307 costs the node.
    let path = format!("/v2/{REPO}/blobs/{digest}");
    let spec = || RequestSpec::new(Method::GET, path.clone()).ok(&[307]);
    run_requests(&node_r.target, 8, Limit::time(b.sizes.run / 5), spec()).await?;
    let cpu0 = cpu(&node_r);
    let s = run_requests(&node_r.target, 8, Limit::time(b.sizes.run), spec()).await?;
    let per = (cpu(&node_r) - cpu0) * 1000.0 / s.ops as f64;
    b.report.set(REDIRECT_CPU, "ms", Better::Lower, "ours", per);
    b.report.set(
        "redirected blob GET, 8 connections",
        "req/s",
        Better::Higher,
        "ours",
        s.per_sec(),
    );

    // Manifest GET by tag: PostgreSQL and SQLite in turn.
    ensure_image(b, i).await?;
    let img = b.subjects[i].image.as_ref().expect("pushed");
    let mut conn = Conn::open(&node.target).await?;
    img.push(&mut conn, READS, "v1").await?;
    let sqlite = b.subjects[i].target.clone();
    let mpath = format!("/v2/{READS}/manifests/v1");
    let mspec = || RequestSpec::new(Method::GET, mpath.clone()).header("accept", OCI_MANIFEST);
    let conns = b.sizes.read_conns;
    let (mut on_pg, mut on_sqlite) = (vec![], vec![]);
    for t in [&node.target, &sqlite] {
        run_requests(t, conns, Limit::time(b.sizes.run / 5), mspec()).await?;
    }
    for _ in 0..ROUNDS {
        on_pg.push(
            run_requests(&node.target, conns, Limit::time(b.sizes.run), mspec())
                .await?
                .per_sec(),
        );
        on_sqlite.push(
            run_requests(&sqlite, conns, Limit::time(b.sizes.run), mspec())
                .await?
                .per_sec(),
        );
    }
    let label = |l: &str| format!("{l}, {conns} connections (median of {ROUNDS})");
    b.report.set(
        &label(MANIFEST_PG),
        "req/s",
        Better::Higher,
        "ours",
        median(on_pg),
    );
    b.report.set(
        &label(MANIFEST_SQLITE),
        "req/s",
        Better::Higher,
        "ours",
        median(on_sqlite),
    );

    // Two streaming nodes behind nginx.
    drop(node_r);
    let node_b = start_node(b, &work.join("node-b"), "node B (S3, streaming)", &streamed)?;
    let lb = crate::cluster::Nginx::start(
        &work.join("nginx"),
        &[node.target.addr.port(), node_b.target.addr.port()],
    );
    let lb_target = Target {
        name: "nginx + two nodes".into(),
        addr: format!("127.0.0.1:{}", lb.port).parse()?,
    };
    let mut conn = Conn::open(&node.target).await?;
    conn.simple(Method::DELETE, &format!("/v2/{REPO}/blobs/{digest}"))
        .await?;
    let lb_push = push(&lb_target, SEED_MONO, len, &digest).await?;
    let lb_pull = pull(&lb_target, &digest).await?;
    b.report
        .set(&put_label(LB_PUSH), "MB/s", Better::Higher, "ours", lb_push);
    b.report
        .set(&put_label(LB_PULL), "MB/s", Better::Higher, "ours", lb_pull);
    run_requests(&lb_target, conns, Limit::time(b.sizes.run / 5), mspec()).await?;
    let s = run_requests(&lb_target, conns, Limit::time(b.sizes.run), mspec()).await?;
    b.report.set(
        &format!("{MANIFEST_LB}, {conns} connections"),
        "req/s",
        Better::Higher,
        "ours",
        s.per_sec(),
    );
    drop(lb);
    drop(node_b);

    // Memory: the huge blob up and down through one streaming node.
    let huge = b.sizes.huge;
    let hd = b.digest(SEED_HUGE, huge);
    reset_peak(node.pid())?;
    push(&node.target, SEED_HUGE, huge, &hd).await?;
    pull(&node.target, &hd).await?;
    let hwm = node.stats()?.hwm_kib as f64 / 1024.0;
    b.report.set(
        &format!("{NODE_RSS} {}", size_label(huge)),
        "MiB",
        Better::Lower,
        "ours",
        hwm,
    );
    drop(node);
    drop(pg);
    drop(s3);
    Ok(())
}
