//! Closed-loop load: N workers, each with its own connection, repeat an
//! operation until a deadline (or an operation count) is reached; every
//! operation's latency is recorded.

use super::client::{Conn, ReqBody, Target};
use anyhow::{bail, Result};
use hyper::{HeaderMap, Method};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a load run stops.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub duration: Duration,
    /// Stop after this many operations even if time remains.
    pub max_ops: Option<u64>,
}

impl Limit {
    pub fn time(duration: Duration) -> Limit {
        Limit {
            duration,
            max_ops: None,
        }
    }

    pub fn ops(max_ops: u64, duration: Duration) -> Limit {
        Limit {
            duration,
            max_ops: Some(max_ops),
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub ops: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Latencies in microseconds, sorted.
    pub lat_us: Vec<u64>,
}

impl Sample {
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    /// Latency quantile `q` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * q).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }

    pub fn p50_ms(&self) -> f64 {
        self.quantile_ms(0.50)
    }

    pub fn p99_ms(&self) -> f64 {
        self.quantile_ms(0.99)
    }
}

/// Run `op(conn, i)` on `conns` connections until `limit`. `op` gets the
/// connection by value and hands it back with the bytes it moved, so any
/// async code can use it (`i` numbers operations across all workers).
pub async fn run_ops<F, Fut>(target: &Target, conns: usize, limit: Limit, op: F) -> Result<Sample>
where
    F: Fn(Conn, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Conn, u64)>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open(target).await?);
    }
    let start = Instant::now();
    let deadline = start + limit.duration;
    let mut workers = Vec::with_capacity(conns);
    for conn in opened {
        let (op, next) = (op.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Some(conn);
            let mut lat = Vec::new();
            let mut bytes = 0u64;
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if limit.max_ops.is_some_and(|m| i >= m) {
                    break;
                }
                let t = Instant::now();
                let (c, n) = op(conn.take().expect("connection"), i).await?;
                lat.push(t.elapsed().as_micros() as u64);
                bytes += n;
                conn = Some(c);
            }
            anyhow::Ok((lat, bytes, Instant::now()))
        }));
    }
    let mut sample = Sample::default();
    let mut end = start;
    for w in workers {
        let (lat, bytes, done) = w.await??;
        sample.ops += lat.len() as u64;
        sample.lat_us.extend(lat);
        sample.bytes += bytes;
        end = end.max(done);
    }
    sample.elapsed = end - start;
    sample.lat_us.sort_unstable();
    if sample.ops == 0 {
        bail!("no operation completed");
    }
    Ok(sample)
}

/// A request to repeat: method, path (may depend on the operation number)
/// and extra headers.
pub struct RequestSpec {
    pub method: Method,
    pub path: Box<dyn Fn(u64) -> String + Send + Sync>,
    pub headers: HeaderMap,
    /// Statuses counted as success; anything else fails the run.
    pub ok: Vec<u16>,
}

impl RequestSpec {
    pub fn new(method: Method, path: impl Into<String>) -> RequestSpec {
        let path = path.into();
        RequestSpec {
            method,
            path: Box::new(move |_| path.clone()),
            headers: HeaderMap::new(),
            ok: vec![200],
        }
    }

    pub fn varying(method: Method, path: impl Fn(u64) -> String + Send + Sync + 'static) -> Self {
        RequestSpec {
            method,
            path: Box::new(path),
            headers: HeaderMap::new(),
            ok: vec![200],
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .insert(name, value.parse().expect("valid header value"));
        self
    }

    pub fn ok(self, ok: &[u16]) -> Self {
        RequestSpec {
            ok: ok.to_vec(),
            ..self
        }
    }
}

/// The generic workload: send `spec` at `conns` connections until `limit`,
/// reading every body. This is the hook for any further read-only workload
/// (e.g. a web page: `RequestSpec::new(Method::GET, "/ui/images/repo:tag")`).
pub async fn run_requests(
    target: &Target,
    conns: usize,
    limit: Limit,
    spec: RequestSpec,
) -> Result<Sample> {
    let spec = Arc::new(spec);
    run_ops(target, conns, limit, move |mut conn, i| {
        let spec = spec.clone();
        async move {
            let mut req = conn.request(spec.method.clone(), &(spec.path)(i), ReqBody::Empty);
            for (k, v) in &spec.headers {
                req.headers_mut().insert(k.clone(), v.clone());
            }
            let d = conn.call(req, false).await?;
            if !spec.ok.contains(&d.status.as_u16()) {
                bail!(
                    "{} {}: status {} ({})",
                    spec.method,
                    (spec.path)(i),
                    d.status,
                    String::from_utf8_lossy(&d.body[..d.body.len().min(300)])
                );
            }
            Ok((conn, d.len))
        }
    })
    .await
}

/// Latency of one request repeated on a single connection until `limit`.
pub async fn latency(target: &Target, limit: Limit, spec: RequestSpec) -> Result<Sample> {
    run_requests(target, 1, limit, spec).await
}
