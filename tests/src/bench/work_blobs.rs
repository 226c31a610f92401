//! Big-blob workloads: monolithic and chunked pushes, pulls, 1 MiB range
//! reads, the 4 GiB memory test, and the static-file baselines.

use super::baseline::{self, Nginx};
use super::client::{Conn, ReqBody, Target};
use super::data::{self, PrngBody};
use super::load::{run_ops, run_requests, Limit, RequestSpec};
use super::ops;
use super::report::Better;
use super::servers::reset_peak;
use super::{Bench, SEED_CHUNKED, SEED_HUGE, SEED_MONO};
use anyhow::{Context as _, Result};
use hyper::header::RANGE;
use hyper::Method;
use std::time::{Duration, Instant};

const REPO: &str = "bench/big";
const GIB: f64 = (1u64 << 30) as f64;
const LONG: Duration = Duration::from_secs(3600);

/// "1 GiB", "64 MiB".
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

fn blob_path(digest: &str) -> String {
    format!("/v2/{REPO}/blobs/{digest}")
}

/// One timed push of a PRNG blob, monolithic or in `chunk`-sized
/// `PATCH`es; (MB/s, server CPU s per GiB if known).
async fn timed_push(
    b: &Bench,
    i: usize,
    seed: u64,
    len: u64,
    digest: &str,
    chunk: Option<u64>,
) -> Result<(f64, f64)> {
    let s = &b.subjects[i];
    let mut conn = Conn::open(&s.target).await?;
    let cpu0 = s.cpu();
    let t = Instant::now();
    match chunk {
        Some(chunk) => {
            ops::push_blob_chunked(&mut conn, REPO, seed, len, chunk, digest).await?;
        }
        None => {
            let body = ReqBody::Prng(PrngBody::new(seed, 0, len));
            ops::push_blob(&mut conn, REPO, digest, body).await?;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_per_gib(cpu0, s.cpu(), len);
    Ok((len as f64 / 1e6 / secs, cpu))
}

fn cpu_per_gib(before: Option<f64>, after: Option<f64>, bytes: u64) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) => (b - a) / (bytes as f64 / GIB),
        _ => f64::NAN,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn push(b: &mut Bench, i: usize) -> Result<()> {
    let size = size_label(b.sizes.blob);
    let modes = [
        (false, SEED_MONO, "monolithic (POST + 1 PUT)", "monolithic"),
        (true, SEED_CHUNKED, "chunked", "chunked"),
    ];
    for (chunked, seed, label, short) in modes {
        let (mut rates, mut cpus) = (Vec::new(), Vec::new());
        // Each round pushes a blob the server has not seen (seeds differ).
        for round in 0..b.sizes.push_rounds {
            let (seed, len) = (seed + round, b.sizes.blob);
            let digest = b.digest(seed, len);
            let chunk = chunked.then_some(b.sizes.chunk);
            let (mbs, cpu) = timed_push(b, i, seed, len, &digest, chunk).await?;
            rates.push(mbs);
            cpus.push(cpu);
        }
        let label = if chunked {
            format!("{label} ({} PATCHes)", size_label(b.sizes.chunk))
        } else {
            label.to_owned()
        };
        let who = b.subjects[i].target.name.clone();
        let r = &mut b.report;
        r.set(
            &format!("push {size} blob, {label}"),
            "MB/s",
            Better::Higher,
            &who,
            median(rates),
        );
        r.set(
            &format!("server CPU per GiB pushed ({short})"),
            "s/GiB",
            Better::Lower,
            &who,
            median(cpus),
        );
    }
    b.subjects[i].big = Some(b.digest(SEED_MONO, b.sizes.blob));
    Ok(())
}

/// The big blob's digest, pushing it (untimed) if `push` did not run.
async fn ensure_big(b: &mut Bench, i: usize) -> Result<String> {
    if let Some(d) = &b.subjects[i].big {
        return Ok(d.clone());
    }
    let d = b.digest(SEED_MONO, b.sizes.blob);
    let mut conn = Conn::open(&b.subjects[i].target).await?;
    let body = ReqBody::Prng(PrngBody::new(SEED_MONO, 0, b.sizes.blob));
    ops::push_blob(&mut conn, REPO, &d, body).await?;
    b.subjects[i].big = Some(d.clone());
    Ok(d)
}

/// Median MB/s of `n` whole GETs of `path` (after one unmeasured GET that
/// warms the page cache).
async fn pull_rate(target: &Target, path: &str, n: usize) -> Result<f64> {
    pull_once(target, path).await?;
    let mut rates = Vec::new();
    for _ in 0..n {
        rates.push(pull_once(target, path).await?);
    }
    Ok(median(rates))
}

/// MB/s of one whole GET of `path`.
async fn pull_once(target: &Target, path: &str) -> Result<f64> {
    let get = RequestSpec::new(Method::GET, path);
    Ok(run_requests(target, 1, Limit::ops(1, LONG), get)
        .await?
        .mb_per_sec())
}

/// Label of our pull measured in turn with the static servers.
pub const PULL_IN_TURN: &str = "our registry, same file, pulled in turn with the servers above";

pub async fn pull(b: &mut Bench, i: usize) -> Result<()> {
    let d = ensure_big(b, i).await?;
    let s = &b.subjects[i];
    let cpu0 = s.cpu();
    let mbs = pull_rate(&s.target, &blob_path(&d), b.sizes.pulls).await?;
    let pulled = b.sizes.blob * (b.sizes.pulls as u64 + 1);
    let cpu = cpu_per_gib(cpu0, s.cpu(), pulled);
    let who = s.target.name.clone();
    let size = size_label(b.sizes.blob);
    let r = &mut b.report;
    r.set(
        &format!("pull {size} blob (page cache warm)"),
        "MB/s",
        Better::Higher,
        &who,
        mbs,
    );
    r.set(
        "server CPU per GiB pulled",
        "s/GiB",
        Better::Lower,
        &who,
        cpu,
    );
    Ok(())
}

/// Plain file read, our sendfile server and nginx, all on our registry's
/// copy of the big blob.
pub async fn static_baselines(b: &mut Bench) -> Result<()> {
    let Some(ours) = b
        .subjects
        .iter()
        .find(|s| s.target.name == "ours" && s.server.is_some())
    else {
        return Ok(());
    };
    let d = ours.big.clone().context("big blob pushed")?;
    let hex = d.trim_start_matches("sha256:");
    let file = ours
        .server
        .as_ref()
        .expect("checked")
        .data_dir
        .join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
    let size = size_label(b.sizes.blob);
    let n = b.sizes.pulls;
    let file2 = file.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<f64> {
        baseline::file_read(&file2)?; // warm
        baseline::file_read(&file2)
    })
    .await??;
    b.report.limit(
        &format!("plain read of the {size} blob file (1 MiB reads)"),
        read,
        "MB/s",
    );
    // The VM's speed drifts within a run: each round pulls from every
    // server back to back, and each gets the median of its rounds.
    let mut servers: Vec<(String, Target, String)> = Vec::new();
    let static_server = baseline::static_server(file.clone())?;
    servers.push((
        format!("static file server, same {size} file over loopback HTTP (sendfile)"),
        static_server,
        "/blob".into(),
    ));
    let nginx = Nginx::start(&file, &b.work.join("nginx"))?;
    if let Some(nginx) = &nginx {
        servers.push((
            format!("nginx, same {size} file over loopback HTTP (sendfile)"),
            nginx.target.clone(),
            nginx.url_path.clone(),
        ));
    }
    servers.push((PULL_IN_TURN.into(), ours.target.clone(), blob_path(&d)));
    let mut rates = vec![Vec::new(); servers.len()];
    for (_, target, path) in &servers {
        pull_once(target, path).await?; // warm
    }
    for _ in 0..n + 2 {
        for (i, (_, target, path)) in servers.iter().enumerate() {
            rates[i].push(pull_once(target, path).await?);
        }
    }
    for ((label, _, _), r) in servers.iter().zip(rates) {
        b.report.limit(label, median(r), "MB/s");
    }
    drop(nginx);
    Ok(())
}

pub async fn range(b: &mut Bench, i: usize) -> Result<()> {
    let d = ensure_big(b, i).await?;
    let path = blob_path(&d);
    let chunks = (b.sizes.blob >> 20).max(1);
    let conns = b.sizes.range_conns;
    let target = b.subjects[i].target.clone();
    let op = move |mut conn: Conn, n: u64| {
        let path = path.clone();
        async move {
            let k = data::word_at(n) % chunks;
            let (start, end) = (k << 20, ((k + 1) << 20) - 1);
            let mut req = conn.request(Method::GET, &path, ReqBody::Empty);
            req.headers_mut()
                .insert(RANGE, format!("bytes={start}-{end}").parse()?);
            let done = conn.call(req, false).await?.expect("range GET", &[206])?;
            anyhow::ensure!(done.len == 1 << 20, "range GET returned {} bytes", done.len);
            Ok((conn, done.len))
        }
    };
    let op = std::sync::Arc::new(op);
    let warm = op.clone();
    run_ops(&target, conns, Limit::time(b.sizes.run / 5), move |c, n| {
        warm(c, n)
    })
    .await?;
    let s = run_ops(&target, conns, Limit::time(b.sizes.run), move |c, n| {
        op(c, n)
    })
    .await?;
    let label = format!("1 MiB Range GETs, {conns} connections");
    b.report
        .set(&label, "req/s", Better::Higher, &target.name, s.per_sec());
    Ok(())
}

/// Peak RSS while a huge blob is pushed then pulled, three times (the first
/// round warms buffer pools up; rounds two and three show whether anything
/// grows), and CPU per GiB of that push.
pub async fn huge(b: &mut Bench, i: usize) -> Result<()> {
    let len = b.sizes.huge;
    let d = b.digest(SEED_HUGE, len);
    let size = size_label(len);
    let who = b.subjects[i].target.name.clone();
    let pid = b.subjects[i].server.as_ref().map(|s| s.pid());
    for round in 1..=3 {
        if let Some(pid) = pid {
            reset_peak(pid)?;
        }
        let (mbs, cpu) = timed_push(b, i, SEED_HUGE, len, &d, None).await?;
        let s = &b.subjects[i];
        let pull = run_requests(
            &s.target,
            1,
            Limit::ops(1, LONG),
            RequestSpec::new(Method::GET, blob_path(&d)),
        )
        .await?;
        let hwm = s
            .server
            .as_ref()
            .and_then(|srv| srv.stats().ok())
            .map(|st| st.hwm_kib as f64 / 1024.0);
        let r = &mut b.report;
        if round == 1 {
            r.set(
                &format!("push {size} blob, monolithic"),
                "MB/s",
                Better::Higher,
                &who,
                mbs,
            );
            r.set(
                &format!("server CPU per GiB pushed ({size})"),
                "s/GiB",
                Better::Lower,
                &who,
                cpu,
            );
            r.set(
                &format!("pull {size} blob"),
                "MB/s",
                Better::Higher,
                &who,
                pull.mb_per_sec(),
            );
        }
        if let Some(h) = hwm {
            r.set(
                &format!("server peak RSS, push + pull of {size} (run {round})"),
                "MiB",
                Better::Lower,
                &who,
                h,
            );
        }
    }
    Ok(())
}
